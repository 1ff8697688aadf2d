import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { register } from 'prom-client';
import { createClient } from 'redis';
import { createSleeper } from '../../platform/runtime/sleeper.ts';
import { openTestPostgres } from '../../platform/sql/testing.ts';
import { redisErrors } from '../../platform/redis-errors.ts';
import { testRedisUrl } from '../../platform/redis.fixture.ts';
import { startTcpProxy, type TcpProxy } from '../../platform/tcp-proxy.fixture.ts';
import { createRedisLedger, createSqlLedger, type NotificationLedger } from './ledger.ts';
import { describeLedgerConformance } from './ledger.contract.ts';

describeLedgerConformance('Redis', async () => {
  const keyPrefix = `mutuo-test:${randomUUID()}:notification:`;
  return {
    openLedger: (options) => createRedisLedger(testRedisUrl, { ...options, keyPrefix, errors: redisErrors(false, 'notification-ledger') }),
    dispose: async () => {
      const admin = createClient({ url: testRedisUrl });
      await admin.connect();
      try {
        const keys: string[] = [];
        for await (const batch of admin.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 1000 })) keys.push(...batch);
        if (keys.length > 0) await admin.del(keys);
      } finally {
        await admin.close();
      }
    },
  };
});

describeLedgerConformance('SQL on PostgreSQL', async () => {
  const database = await openTestPostgres();
  return {
    openLedger: async (options) => createSqlLedger(database.client, options),
    dispose: () => database.dispose(),
  };
});

describe('the Redis ledger while Redis is away', () => {
  const keyPrefix = `mutuo-test:${randomUUID()}:notification:`;
  const lines: { level: number; msg: string; use?: string }[] = [];
  let outage: TcpProxy;
  let ledger: NotificationLedger;
  const counted = async () =>
    (await register.getSingleMetric('mutuo_redis_errors_total')?.get())?.values.find((value) => value.labels.use === 'notification-ledger')?.value ?? 0;

  before(async () => {
    outage = await startTcpProxy({ target: testRedisUrl });
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    ledger = await createRedisLedger(outage.url, { keyPrefix, errors: redisErrors(logger, 'notification-ledger') });
  });
  after(async () => {
    await ledger.close();
    await outage.close();
  });

  it('reports the outage once and counts every error; claims fail meanwhile, and are granted again once it is back', async () => {
    assert.equal(await ledger.claim(randomUUID(), 'email'), true);
    const before = await counted();
    await outage.cut('refuse');
    for (let i = 0; i < 10; i++) await assert.rejects(ledger.claim(randomUUID(), 'email'));
    const sleeper = createSleeper();
    // The client's reconnections fail too, and each is an error.
    for (let tries = 0; tries < 300 && (await counted()) === before; tries++) await sleeper.sleep(100);
    assert.ok((await counted()) > before);
    const warned = lines.filter((line) => line.level === 40 && line.use === 'notification-ledger');
    assert.equal(warned.length, 1, JSON.stringify(lines));
    assert.match(warned[0]!.msg, /^Redis \(notification-ledger\) fails: /);

    await outage.restore();
    for (let tries = 0; tries < 600 && !lines.some((line) => line.level === 30 && line.use === 'notification-ledger'); tries++) await sleeper.sleep(100);
    assert.match(lines.at(-1)!.msg, /^Redis \(notification-ledger\) is connected again$/);
    assert.equal(await ledger.claim(randomUUID(), 'email'), true);
  });
});
