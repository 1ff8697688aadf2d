import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { startPrivatePostgres, type PrivatePostgres } from './private-postgres.fixture.ts';

/** The private cluster fixture on the machine's own PostgreSQL binaries: what it promises a test, and that it leaves nothing behind. */
describe('a private PostgreSQL cluster', () => {
  let cluster: PrivatePostgres | undefined;
  after(async () => {
    await cluster?.stop();
  });

  it('starts with the settings asked for, on 127.0.0.1 only, and once stopped is gone with its folder', async () => {
    cluster = await startPrivatePostgres({ max_prepared_transactions: 5 });
    const client = new pg.Client({ connectionString: cluster.url });
    await client.connect();
    try {
      const [row] = (
        await client.query<{ prepared: string; listen: string; socket: string; user: string }>(
          `SELECT current_setting('max_prepared_transactions') AS prepared, current_setting('listen_addresses') AS listen,
                  current_setting('unix_socket_directories') AS socket, current_user AS user`,
        )
      ).rows;
      assert.deepEqual(row, { prepared: '5', listen: '127.0.0.1', socket: cluster.folder, user: 'postgres' });
      await client.query('BEGIN');
      await client.query('CREATE TABLE t (x integer)');
      await client.query(`PREPARE TRANSACTION 'fixture'`);
      assert.equal((await client.query(`SELECT gid FROM pg_prepared_xacts`)).rows[0]?.gid, 'fixture');
    } finally {
      await client.end();
    }
    // Stopped with a prepared transaction left in it, as a failed test leaves one.
    await cluster.stop();
    assert.equal(existsSync(cluster.folder), false, 'the folder is removed');
    const late = new pg.Client({ connectionString: cluster.url });
    await assert.rejects(late.connect(), /ECONNREFUSED/);
    await cluster.stop();
  });

  it('says why it could not start, with the server log', async () => {
    await assert.rejects(startPrivatePostgres({ max_prepared_transactions: 'many' }), (error: Error) => {
      assert.match(error.message, /pg_ctl start .* failed/);
      assert.match(error.message, /max_prepared_transactions/);
      return true;
    });
  });
});
