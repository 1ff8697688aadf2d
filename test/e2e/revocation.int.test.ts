import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { startMutuo, type MutuoProcess } from './processes.ts';
import { loadConfig } from '../../src/app/config.ts';
import { openTestPostgres, type TestDatabase } from '../../src/platform/sql/testing.ts';
import { injectedBearer } from '../../src/security/testing.ts';

/** How often each process reads the others' revocations, here: a fifth of the default. */
const refreshMs = '200';

/** Several query processes share PostgreSQL: a sign-out in one holds in every other. */
describe('a sign-out on PostgreSQL, across processes', () => {
  let database: TestDatabase;
  let dataDir: string;
  let here: Platform;
  let other: MutuoProcess;

  before(async () => {
    database = await openTestPostgres(4);
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-revocation-'));
    const env = { DATABASE_URL: database.connectionString!, AUTH_REVOCATION_REFRESH_MS: refreshMs, DATABASE_POOL_SIZE: '4' };
    here = await openPlatform(loadConfig({ ...env, MUTUO_DATA_DIR: dataDir, PORT: '0' }), false, { services: ['query'] });
    other = await startMutuo(['query'], { ...env, AMQP_URL: '', REDIS_URL: '', NODE_ENV: '' });
  });
  after(async () => {
    await other?.stop();
    await here?.close();
    await database.dispose();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is refused at once by the process that signed it out, and by another within its refresh', async () => {
    const token = await injectedBearer(here.server, 'olivia');
    const inOther = async () => (await fetch(`${other.address}/api/me`, { headers: token })).status;
    // The other process has verified the token before: its cache must not let it through afterwards.
    assert.equal(await inOther(), 200);
    assert.equal((await here.server.inject({ method: 'POST', url: '/auth/logout', headers: token })).statusCode, 204);
    assert.equal((await here.server.inject({ method: 'GET', url: '/api/me', headers: token })).statusCode, 401);
    let status = await inOther();
    for (let attempt = 0; status === 200 && attempt < 100; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = await inOther();
    }
    assert.equal(status, 401, 'the other process refuses the signed-out token');
    const stillIn = await injectedBearer(here.server, 'olivia');
    assert.equal((await fetch(`${other.address}/api/me`, { headers: stillIn })).status, 200, 'a new token of the same user holds');
  });
});
