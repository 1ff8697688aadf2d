import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { openTestPostgres } from '../../platform/sql/testing.ts';
import { createRedisLedger, createSqlLedger } from './ledger.ts';
import { describeLedgerConformance } from './ledger.contract.ts';

const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describeLedgerConformance('Redis', async () => {
  const keyPrefix = `mutuo-test:${randomUUID()}:notification:`;
  return {
    openLedger: (options) => createRedisLedger(testRedisUrl, { ...options, keyPrefix }),
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
