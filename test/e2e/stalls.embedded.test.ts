import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { injectedBearer } from '../../src/security/testing.ts';

/** On the embedded database, whose one connection no other transaction shares, the read horizon's watch is off and says so. */
describe('stalls named, on PGlite', () => {
  let dataDir: string;
  let platform: Platform;
  const lines: { level: number; msg: string }[] = [];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-stalls-'));
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', MUTUO_HORIZON_STALL_MS: '1' }), logger, { services: ['application'] });
  });
  after(async () => {
    await platform.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('says at start that the watch is off, answers ok, and reports the lag of the relay and of its consumers but no horizon', async () => {
    assert.ok(
      lines.some((line) => line.level === 30 && /^read horizon watch: off on PGlite/.test(line.msg)),
      lines.map((line) => line.msg).join('\n'),
    );
    const health = await platform.server.inject({ method: 'GET', url: '/health' });
    assert.deepEqual(health.json(), { status: 'ok', services: ['application'] });
    const metrics = (await platform.server.inject({ method: 'GET', url: '/metrics', headers: await injectedBearer(platform.server, 'prometheus') })).body;
    assert.match(metrics, /^mutuo_relay_behind_events\{relay="outbox"\} 0$/m);
    assert.match(metrics, /^mutuo_consumer_lag_seconds\{consumer="application"\} 0$/m);
    assert.doesNotMatch(metrics, /mutuo_read_horizon_held_seconds/);
  });
});
