import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { pino } from 'pino';
import { loadConfig } from '../../app/config.ts';
import { openPlatform, type Platform } from '../../app/platform.ts';
import { testRedisUrl } from '../../platform/redis.fixture.ts';
import { startTcpProxy, type TcpProxy } from '../../platform/tcp-proxy.fixture.ts';
import { createSleeper } from '../../platform/runtime/sleeper.ts';
import { injectedBearer, type DemoUserId } from '../../security/testing.ts';

const submission = JSON.parse(readFileSync(new URL('../../../test/fixtures/submission.json', import.meta.url), 'utf8')) as object;

type LogLine = { level: number; msg: string; use?: string };

/** The customer view's hot copy in Redis, while Redis is away and once it is back. */
describe('the customer view while its Redis is away', () => {
  let dataDir: string;
  let outage: TcpProxy;
  let platform: Platform;
  const lines: LogLine[] = [];
  const sleeper = createSleeper();

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-redis-outage-'));
    outage = await startTcpProxy({ target: testRedisUrl });
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    const config = loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0', REDIS_URL: outage.url });
    platform = await openPlatform(config, logger, { services: ['application', 'projector', 'query'] });
  });
  after(async () => {
    await platform?.close();
    await outage?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function call(method: InjectOptions['method'], url: string, payload?: object, user: DemoUserId = 'giulia') {
    const response = await platform.server.inject({ method, url, headers: await injectedBearer(platform.server, user), ...(payload ? { payload } : {}) });
    assert.ok(response.statusCode < 300, `${method} ${url}: ${response.statusCode} ${response.body}`);
    return response;
  }
  const viewOf = async (id: string, minPosition?: string) =>
    (await call('GET', `/api/applications/${id}${minPosition ? `?minPosition=${minPosition}` : ''}`)).json<{
      version: number;
      steps: { incomeApproved: boolean };
    }>();
  const errorsCounted = async () => {
    const metrics = (await call('GET', '/metrics', undefined, 'prometheus')).body;
    const sample = metrics.split('\n').find((line) => line.startsWith('mutuo_redis_errors_total{use="view-cache"} '));
    return sample ? Number(sample.split(' ')[1]) : 0;
  };
  const logged = (level: number) => lines.filter((line) => line.level === level && line.use === 'view-cache');

  it('answers from the database while Redis is away, tells it once and counts it, and serves no view older than the database once it is back', {
    timeout: 120_000,
  }, async () => {
    const submitted = (await call('POST', '/api/applications', submission)).json<{ applicationId: string; position: string }>();
    const id = submitted.applicationId;
    assert.equal((await viewOf(id, submitted.position)).version, 1);
    // Read without a position: the miss fills the hot copy, the next read is served from it.
    assert.equal((await viewOf(id)).version, 1);
    assert.equal((await viewOf(id)).version, 1);
    const before = await errorsCounted();
    assert.deepEqual(logged(40), []);

    await outage.cut('refuse');
    for (let i = 0; i < 10; i++) assert.equal((await viewOf(id)).version, 1, 'answered by the database');
    assert.ok((await errorsCounted()) >= before + 10, 'each failed read is counted');
    assert.equal(logged(40).length, 1, JSON.stringify(lines));
    assert.match(logged(40)[0]!.msg, /^Redis \(view-cache\) fails: /);

    // Changes while Redis is away: the projector cannot write them to the hot copy, which holds version 1, and goes on.
    const approved = (await call('POST', `/api/applications/${id}/income-approval`, { verifiedMonthlyNet: 3100 }, 'olivia')).json<{ position: string }>();
    assert.equal((await viewOf(id, approved.position)).version, 2);
    const locked = await call('POST', `/api/applications/${id}/rate-lock`, {}, 'olivia');
    const afterLock = await call('GET', `/api/applications/${id}?minPosition=${locked.json<{ position: string }>().position}`);
    assert.equal(afterLock.headers['x-read-model-behind'], undefined, 'the read model kept up');
    assert.equal(afterLock.json<{ version: number }>().version, 3);
    assert.equal((await viewOf(id)).version, 3);

    await outage.restore();
    for (let tries = 0; tries < 600 && logged(30).length === 0; tries++) await sleeper.sleep(100);
    assert.match(logged(30)[0]?.msg ?? 'not connected again', /^Redis \(view-cache\) is connected again$/);
    for (let i = 0; i < 3; i++) {
      const view = await viewOf(id);
      assert.deepEqual([view.version, view.steps.incomeApproved], [3, true], 'never the version 1 the hot copy held');
    }
    assert.equal(logged(40).length, 1, 'one warning for the whole outage');
  });
});
