import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { startMutuo, type MutuoProcess } from './processes.ts';
import { openTestPostgres, type TestDatabase } from '../../src/platform/sql/testing.ts';
import { devBearer } from '../../src/security/testing.ts';
import { testRedisUrl } from '../../src/platform/redis.fixture.ts';

const submission = await readFile(new URL('../fixtures/submission.json', import.meta.url), 'utf8');

/**
 * The read side as a bank would run it: the write side, two projector processes (one
 * writes, the other stands by) and two query processes, on PostgreSQL with the hot copy
 * in Redis.
 */
describe('the read side in processes of its own, on PostgreSQL and Redis', () => {
  let database: TestDatabase;
  let application: MutuoProcess;
  let first: MutuoProcess;
  let standby: MutuoProcess;
  let queries: MutuoProcess[] = [];
  const holders = async () =>
    (await database.client.query<{ holder: string }>('SELECT holder FROM mutuo_projections WHERE holder IS NOT NULL')).map((row) => row.holder);

  before(async () => {
    database = await openTestPostgres(4);
    const env = { DATABASE_URL: database.connectionString!, REDIS_URL: testRedisUrl, DATABASE_POOL_SIZE: '5', MUTUO_PROJECTION_LEASE_MS: '2000' };
    [application, first] = await Promise.all([startMutuo(['application'], env), startMutuo(['projector'], env)]);
    // The first projector takes the leases; the second, started after, stands by.
    for (let attempt = 0; (await holders()).length < 4; attempt++) {
      assert.ok(attempt < 100, 'the first projector took the leases');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    [standby, ...queries] = await Promise.all([startMutuo(['projector'], env), startMutuo(['query'], env), startMutuo(['query'], env)]);
  });
  after(async () => {
    await Promise.all([application, first, standby, ...queries].map((p) => p?.stop()));
    await database.dispose();
  });

  const submit = async () => {
    const headers = { ...(await devBearer(application.address, 'giulia')), 'content-type': 'application/json' };
    const response = await fetch(`${application.address}/api/applications`, { method: 'POST', headers, body: submission });
    assert.equal(response.status, 201);
    return (await response.json()) as { applicationId: string; position: number };
  };
  // A token of one process's development provider holds in every process of the database.
  const read = async (query: MutuoProcess, id: string, position: number) =>
    fetch(`${query.address}/api/applications/${id}`, { headers: { ...(await devBearer(application.address, 'giulia')), 'x-min-position': String(position) } });

  it('serves every query process a write it has just made, and takes no command', async () => {
    const { applicationId, position } = await submit();
    for (const query of queries) {
      const response = await read(query, applicationId, position);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-read-model-behind'), null);
      assert.equal(((await response.json()) as { status: string }).status, 'processing');
    }
    const headers = { ...(await devBearer(application.address, 'giulia')), 'content-type': 'application/json' };
    const command = await fetch(`${queries[0]!.address}/api/applications`, { method: 'POST', headers, body: submission });
    assert.equal(command.status, 404, 'a query process serves only reads');
  });

  it('keeps the read models up to date when the projector that writes them stops: the standby takes over', async () => {
    const before = new Set(await holders());
    await first.stop();
    const { applicationId, position } = await submit();
    const response = await read(queries[1]!, applicationId, position);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-read-model-behind'), null);
    // Each projection is taken over at the standby's next look (every 100 ms when idle), not all at once.
    let now = await holders();
    for (let attempt = 0; attempt < 50 && (now.length < 4 || now.some((holder) => before.has(holder))); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      now = await holders();
    }
    assert.equal(now.length, 4);
    assert.ok(
      now.every((holder) => !before.has(holder)),
      'every projection is written by the standby now',
    );
  });
});
