import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPostgresClient } from './postgres.ts';
import type { SqlClient } from './sql-client.ts';
import { testDatabaseUrl } from './testing.ts';
import { startTcpProxy, type TcpProxy } from '../tcp-proxy.fixture.ts';

/**
 * The pooled client while its way to PostgreSQL is cut: as a server gone (every connection
 * reset) and as a partition (nothing gets through). An error it left unheard would end this
 * test's process, and the test with it.
 */
describe('the PostgreSQL client while its server is unreachable', () => {
  let proxy: TcpProxy;
  let client: SqlClient;

  before(async () => {
    proxy = await startTcpProxy({ target: testDatabaseUrl });
    client = createPostgresClient({ connectionString: proxy.url, maxConnections: 4, connectTimeoutMs: 1_000 });
  });
  after(async () => {
    await proxy.cut('refuse');
    await client.close();
    await proxy.close();
  });

  /** Fills the pool: four connections, each left idle in it. */
  const fillPool = () => Promise.all(Array.from({ length: 4 }, () => client.query("SELECT pg_sleep(0.05), 'up' AS state")));

  it('hears the resets of its idle connections and of a transaction in hand, fails what was in flight, and serves again once the server is back', async () => {
    await fillPool();
    assert.equal(proxy.connections(), 4);
    let inTransaction!: () => void;
    const entered = new Promise<void>((resolve) => (inTransaction = resolve));
    const transaction = client.transaction(async (tx) => {
      await tx.query('SELECT 1');
      inTransaction();
      await tx.query('SELECT pg_sleep(30)');
    });
    const failed = assert.rejects(transaction, /ECONNRESET|Connection terminated/);
    await entered;

    await proxy.cut('refuse');
    await failed;
    await assert.rejects(client.query('SELECT 1'), /ECONNRESET|Connection terminated/);
    await assert.rejects(
      client.transaction(async (tx) => tx.query('SELECT 1')),
      /ECONNRESET|Connection terminated/,
    );

    await proxy.restore();
    // A connection whose reset the pool has not read yet fails the statement it is lent for,
    // and is dropped: at worst one failure for each connection the pool held.
    const failures: unknown[] = [];
    for (let attempt = 0; attempt <= 4; attempt++) {
      try {
        assert.deepEqual(await client.query('SELECT 1 AS one'), [{ one: 1 }]);
        break;
      } catch (error) {
        failures.push(error);
      }
    }
    assert.ok(failures.length <= 4, `served again: ${failures.map(String).join('; ')}`);
    assert.deepEqual(await client.transaction(async (tx) => tx.query('SELECT 2 AS two')), [{ two: 2 }]);
  });

  it('gives up opening a connection through a partition after its connect timeout, rather than waiting as long as the partition lasts', {
    timeout: 60_000,
  }, async () => {
    // A fresh client: its pool has no connection yet, so the statement has to open one.
    const fresh = createPostgresClient({ connectionString: proxy.url, maxConnections: 1, connectTimeoutMs: 500 });
    try {
      await proxy.cut('blackhole');
      await assert.rejects(fresh.query('SELECT 1'), /timeout/);
      await assert.rejects(fresh.query('SELECT 1'), /timeout/);
      await proxy.restore();
      assert.deepEqual(await fresh.query('SELECT 3 AS three'), [{ three: 3 }]);
    } finally {
      await proxy.restore();
      await fresh.close();
    }
  });

  it('finishes a statement held up by a partition once the partition ends, on the same connection', async () => {
    const single = createPostgresClient({ connectionString: proxy.url, maxConnections: 1 });
    try {
      const [before] = await single.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await proxy.cut('blackhole');
      let settled = false;
      const held = single.query<{ pid: number }>('SELECT pg_backend_pid() AS pid').finally(() => {
        settled = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(settled, false, 'nothing gets through a partition');
      await proxy.restore();
      assert.deepEqual(await held, [before]);
    } finally {
      await proxy.restore();
      await single.close();
    }
  });
});
