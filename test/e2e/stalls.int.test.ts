import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { statusCommand, statusReport, statusText } from '../../src/app/cli/status.ts';
import { UsageError } from '../../src/app/cli/dlq.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { openTestPostgres, testDatabaseUrl, type TestDatabase } from '../../src/platform/sql/testing.ts';
import { createPostgresClient } from '../../src/platform/sql/postgres.ts';
import type { SqlClient } from '../../src/platform/sql/sql-client.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../../src/platform/sql/private-postgres.fixture.ts';
import { describeHolder, horizonJudge, readHorizon, type HorizonHolder } from '../../src/platform/eventstore/horizon.ts';
import { MortgageApplicationSubmitted } from '../../src/features/application/events.ts';
import { defineConsumer } from '../../src/platform/messaging/consumer.ts';
import { waitUntil } from '../../src/platform/messaging/messaging.contract.ts';
import { injectedBearer } from '../../src/security/testing.ts';

const run = promisify(execFile);
const submission = JSON.parse(await readFile(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as object;

/** The threshold the platform here judges a stall by, and how often it looks. */
const stallMs = 300;
/**
 * How long a wait for the watch may take. The cluster is shared: a transaction of another
 * suite older than ours holds the horizon before ours does, and ours is named once it ends.
 */
const eventually = 120_000;

type LogLine = { level: number; msg: string; readHorizon?: { heldSeconds: number; heldSince: string; holder: HorizonHolder } };

/** /health of a platform, as a load balancer or an operator reads it. */
async function healthOf(platform: Platform) {
  const response = await platform.server.inject({ method: 'GET', url: '/health' });
  return { statusCode: response.statusCode, body: response.json<{ status: string; reasons?: { code: string; detail: string; since: string }[] }>() };
}

/** `mutuo status`, as an operator runs it: a process of its own, with the database alone. */
async function mutuoStatus(databaseUrl: string): Promise<string> {
  const { stdout } = await run('node_modules/.bin/tsx', ['src/app/cli/main.ts', 'status'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, MUTUO_HORIZON_STALL_MS: String(stallMs) },
  });
  return stdout;
}

/**
 * The read horizon's watch in a running platform on PostgreSQL: each kind of transaction
 * that holds it back is named exactly (by pid), /health says degraded, the log says so once
 * when it begins and once when it ends, the metrics and `mutuo status` show it, and the
 * relay's and a consumer's lag grow behind it and fall back to 0 after it.
 *
 * A prepared transaction is not run here: the test server has max_prepared_transactions = 0,
 * so PREPARE TRANSACTION is refused there. The suite after this one runs it on a cluster of its own.
 */
describe('stalls named, on PostgreSQL', () => {
  let database: TestDatabase;
  let platform: Platform;
  let admin: pg.Client;
  const lines: LogLine[] = [];
  const consumer = `stalls-${randomUUID().slice(0, 8)}`;
  const scratch = `mutuo_stalls_${randomUUID().replaceAll('-', '')}`;
  const scratchUrl = (() => {
    const url = new URL(testDatabaseUrl);
    url.pathname = `/${scratch}`;
    return url.toString();
  })();
  const sessions: pg.Client[] = [];

  /** A connection of its own (its pid is the backend's), ended after the suite whatever happens. */
  const session = async (connectionString: string) => {
    const client = new pg.Client({ connectionString });
    client.on('error', () => undefined);
    await client.connect();
    sessions.push(client);
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return { client, pid: rows[0]!.pid };
  };

  before(async () => {
    database = await openTestPostgres(4);
    admin = new pg.Client({ connectionString: testDatabaseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${scratch}`);
    await database.client.exec(`CREATE TABLE stalls_handled (event_id uuid PRIMARY KEY);
      CREATE TABLE stalls_rows (id integer PRIMARY KEY); INSERT INTO stalls_rows VALUES (1)`);
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    const env = { DATABASE_URL: database.connectionString, DATABASE_POOL_SIZE: '4', PORT: '0' };
    platform = await openPlatform(loadConfig({ ...env, MUTUO_HORIZON_STALL_MS: String(stallMs), MUTUO_HORIZON_CHECK_MS: '50' }), logger, {
      services: ['application'],
      consumers: [
        defineConsumer({
          name: consumer,
          events: [MortgageApplicationSubmitted],
          handle: async (event, { tx }) => {
            await tx.query('INSERT INTO stalls_handled (event_id) VALUES ($1)', [event.eventId]);
          },
        }),
      ],
    });
  });
  after(async () => {
    await Promise.all(sessions.map((client) => client.end().catch(() => undefined)));
    await platform?.close();
    await database?.dispose();
    await admin?.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`);
    await admin?.end();
  });

  const health = () => healthOf(platform);
  /** A metric's value as /metrics serves it (one series, or the one with `label`). */
  const metric = async (name: string, label = '') => {
    const response = await platform.server.inject({ method: 'GET', url: '/metrics', headers: await injectedBearer(platform.server, 'prometheus') });
    const line = response.body.split('\n').find((candidate) => candidate.startsWith(name) && candidate.includes(label));
    assert.ok(line, `${name}${label} in /metrics`);
    return Number(line.split(' ').at(-1));
  };
  const began = (pid: number) =>
    lines.filter((line) => line.level === 40 && line.readHorizon?.holder.kind === 'backend' && line.readHorizon.holder.pid === pid);
  const ended = (pid: number) =>
    lines.filter((line) => line.level === 30 && line.readHorizon?.holder.kind === 'backend' && line.readHorizon.holder.pid === pid);

  /**
   * While `blocker` holds the horizon: the watch names it (once), /health says degraded,
   * the metric shows it held; once `end` ends it, the stall's end is logged (once).
   */
  async function namedThenCleared(pid: number, end: () => Promise<void>, expect: (holder: Extract<HorizonHolder, { kind: 'backend' }>) => void) {
    await waitUntil(async () => began(pid).length > 0, `the log names backend ${pid}`, eventually);
    // From here on it is the oldest transaction running: nothing older is left to hold the horizon.
    const [line] = began(pid);
    assert.equal(began(pid).length, 1, 'named once');
    assert.ok(line!.readHorizon!.heldSeconds >= stallMs / 1000, JSON.stringify(line));
    assert.match(line!.msg, new RegExp(`held back for .* by backend pid ${pid} `));
    expect(line!.readHorizon!.holder as Extract<HorizonHolder, { kind: 'backend' }>);
    const degraded = await health();
    assert.equal(degraded.statusCode, 200, 'degraded still serves');
    assert.equal(degraded.body.status, 'degraded');
    assert.equal(degraded.body.reasons?.[0]?.code, 'READ_HORIZON_HELD');
    assert.ok(!JSON.stringify(degraded.body).includes(String(pid)), 'the public /health names no backend');
    assert.ok((await metric('mutuo_read_horizon_held_seconds')) >= stallMs / 1000);
    const report = await statusReport(database.client, stallMs);
    assert.equal(report.horizon.holder?.kind === 'backend' && report.horizon.holder.pid, pid);
    await end();
    await waitUntil(async () => ended(pid).length > 0, `the log says backend ${pid} let the horizon go`, eventually);
    assert.match(ended(pid)[0]!.msg, /moves again/);
    assert.equal(began(pid).length, 1, 'named once, and only once');
    await waitUntil(async () => (await health()).body.status === 'ok', '/health is ok again', eventually);
  }

  it('names a transaction that wrote in another database, and holds back the relay and a consumer until it ends', async () => {
    const { client: other, pid } = await session(scratchUrl);
    await other.query('BEGIN');
    await other.query('CREATE TABLE held (x integer)');
    await other.query('INSERT INTO held VALUES (1)');
    // A command meanwhile: accepted and committed, then held behind the horizon.
    const response = await platform.server.inject({
      method: 'POST',
      url: '/api/applications',
      payload: submission,
      headers: await injectedBearer(platform.server, 'giulia'),
    });
    assert.equal(response.statusCode, 201, response.body);
    await waitUntil(async () => began(pid).length > 0, `the log names backend ${pid}`, eventually);
    assert.ok((await metric('mutuo_relay_behind_events', 'relay="outbox"')) >= 1, 'the relay is behind');
    assert.ok((await metric('mutuo_consumer_behind_events', `consumer="${consumer}"`)) >= 1, 'the consumer is behind');
    const report = await statusReport(database.client, stallMs);
    assert.ok(report.horizon.stalled);
    assert.ok(report.relays.find((relay) => relay.name === 'outbox')!.behindEvents >= 1);
    assert.ok(report.consumers.find((lag) => lag.consumer === consumer)!.behindEvents >= 1);

    const stdout = await mutuoStatus(database.connectionString!);
    assert.match(stdout, new RegExp(`read horizon: STALLED .* by backend pid ${pid} \\(database ${scratch}, user postgres, idle in transaction`));
    assert.match(stdout, /INSERT INTO held VALUES \(1\)/);
    assert.match(stdout, new RegExp(`consumer +${consumer} +[1-9]`));
    assert.match(stdout, /relay +outbox +[1-9]/);

    await namedThenCleared(
      pid,
      () => other.query('ROLLBACK').then(() => undefined),
      (holder) => {
        assert.deepEqual(
          { database: holder.database, user: holder.user, state: holder.state, query: holder.query, hidden: holder.detailsHidden },
          { database: scratch, user: 'postgres', state: 'idle in transaction', query: 'INSERT INTO held VALUES (1)', hidden: false },
        );
        assert.ok(holder.transactionStartedAt);
      },
    );
    await waitUntil(async () => (await database.client.query('SELECT 1 FROM stalls_handled')).length === 1, 'the consumer handled the submission', eventually);
    await waitUntil(
      async () =>
        (await metric('mutuo_relay_behind_events', 'relay="outbox"')) === 0 && (await metric('mutuo_consumer_behind_events', `consumer="${consumer}"`)) === 0,
      'the relay and the consumer caught up',
      eventually,
    );
    assert.equal(await metric('mutuo_consumer_lag_seconds', `consumer="${consumer}"`), 0);
  });

  it('names a SELECT ... FOR UPDATE left open in its transaction', async () => {
    const { client: locker, pid } = await session(database.connectionString!);
    await locker.query('BEGIN');
    await locker.query('SELECT * FROM stalls_rows WHERE id = 1 FOR UPDATE');
    await namedThenCleared(
      pid,
      () => locker.query('COMMIT').then(() => undefined),
      (holder) => {
        assert.equal(holder.state, 'idle in transaction');
        assert.equal(holder.query, 'SELECT * FROM stalls_rows WHERE id = 1 FOR UPDATE');
      },
    );
  });

  it('names a long statement that writes (as CREATE INDEX does) once it has held the horizon past the threshold, and clears when it is cancelled', async () => {
    const { client: writer, pid } = await session(database.connectionString!);
    const running = writer.query(`WITH w AS (INSERT INTO stalls_rows VALUES (2) RETURNING id) SELECT pg_sleep(600) FROM w`).catch((error: unknown) => error);
    await namedThenCleared(
      pid,
      async () => {
        await database.client.query('SELECT pg_cancel_backend($1)', [pid]);
        assert.equal(((await running) as { code?: string }).code, '57014', 'cancelled');
      },
      (holder) => {
        assert.equal(holder.state, 'active');
        assert.match(holder.query ?? '', /^WITH w AS \(INSERT INTO stalls_rows/);
      },
    );
  });

  it('names the holder to a role without pg_monitor by pid, database and user, and says what it cannot see and how to see it', async () => {
    const role = `mutuo_stalls_${randomUUID().slice(0, 8)}`;
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    const asRole = new URL(testDatabaseUrl);
    asRole.username = role;
    const observer = createPostgresClient({ connectionString: asRole.toString(), maxConnections: 1 });
    try {
      const { client: other, pid } = await session(scratchUrl);
      await other.query('BEGIN');
      await other.query('CREATE TABLE held_too (x integer)');
      let holder: HorizonHolder | undefined;
      await waitUntil(
        async () => {
          holder = (await readHorizon(observer)).holder;
          return holder?.kind === 'backend' && holder.pid === pid;
        },
        `backend ${pid} holds the horizon`,
        eventually,
      );
      assert.ok(holder?.kind === 'backend');
      assert.deepEqual(
        {
          database: holder.database,
          user: holder.user,
          hidden: holder.detailsHidden,
          state: holder.state,
          query: holder.query,
          started: holder.transactionStartedAt,
        },
        { database: scratch, user: 'postgres', hidden: true, state: null, query: null, started: null },
      );
      assert.match(describeHolder(holder, new Date()), /hidden from this role: grant it pg_monitor/);
      await admin.query(`GRANT pg_monitor TO ${role}`);
      const granted = (await readHorizon(observer)).holder;
      assert.ok(granted?.kind === 'backend' && granted.pid === pid);
      assert.equal(granted.detailsHidden, false);
      assert.equal(granted.query, 'CREATE TABLE held_too (x integer)');
      await other.query('ROLLBACK');
    } finally {
      await observer.close();
      await admin.query(`DROP ROLE ${role}`);
    }
  });

  it('raises no alarm for short transactions, however many, nor for a long one that holds no transaction id', async () => {
    const load = createPostgresClient({ connectionString: database.connectionString!, maxConnections: 2 });
    const { client: reader, pid: readerPid } = await session(database.connectionString!);
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query('SELECT count(*) FROM stalls_rows');
      const judge = horizonJudge(5_000);
      const loadPids = new Set<number>();
      let writing = true;
      const writes = (async () => {
        for (let i = 0; writing; i++) {
          await load.transaction(async (tx) => {
            const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
            loadPids.add(row!.pid);
            await tx.query('INSERT INTO stalls_handled (event_id) VALUES ($1)', [randomUUID()]);
          });
        }
      })();
      const named = new Set<number>();
      const alarms: number[] = [];
      for (const until = Date.now() + 1_500; Date.now() < until; ) {
        const { state, change } = judge.observe(await readHorizon(database.client));
        if (state.holder?.kind === 'backend') named.add(state.holder.pid);
        if (change.began?.holder?.kind === 'backend') alarms.push(change.began.holder.pid);
      }
      writing = false;
      await writes;
      assert.ok(!named.has(readerPid), 'a transaction without an xid never holds the horizon');
      assert.deepEqual(
        alarms.filter((pid) => loadPids.has(pid)),
        [],
        'no short transaction is a stall',
      );
      await reader.query('COMMIT');
    } finally {
      await load.close();
    }
  });

  it('mutuo status asks for DATABASE_URL on the embedded database, and prints the report as JSON', async () => {
    await assert.rejects(statusCommand([], { databaseUrl: undefined, stallMs }), (error) => error instanceof UsageError && /DATABASE_URL/.test(error.message));
    await assert.rejects(statusCommand(['--bogus'], { databaseUrl: database.connectionString, stallMs }), UsageError);
    const report = JSON.parse(await statusCommand(['--json'], { databaseUrl: database.connectionString, stallMs })) as Awaited<ReturnType<typeof statusReport>>;
    assert.equal(report.horizon.thresholdMs, stallMs);
    assert.ok(report.consumers.some((lag) => lag.consumer === consumer));
    assert.match(statusText(await statusReport(database.client, stallMs)), /^read horizon: /);
  });
});

/**
 * A forgotten prepared transaction, the one kind the shared test server cannot make: it has
 * max_prepared_transactions = 0, and changing that takes a restart of a server every other
 * suite is using. So this suite starts a PostgreSQL cluster of its own that allows them
 * (private-postgres.fixture.ts), runs the platform on it, and removes it at the end.
 */
describe('a forgotten prepared transaction named, on a private cluster', () => {
  let cluster: PrivatePostgres | undefined;
  let platform: Platform | undefined;
  let admin: pg.Client | undefined;
  let observer: SqlClient | undefined;
  const lines: LogLine[] = [];
  const gid = `mutuo-stalls-${randomUUID()}`;
  const inDatabase = (name: string) => {
    const url = new URL(cluster!.url);
    url.pathname = `/${name}`;
    return url.toString();
  };

  before(async () => {
    cluster = await startPrivatePostgres({ max_prepared_transactions: 5 });
    admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query('CREATE DATABASE mutuo');
    await admin.query('CREATE DATABASE elsewhere');
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    const env = { DATABASE_URL: inDatabase('mutuo'), DATABASE_POOL_SIZE: '4', PORT: '0' };
    platform = await openPlatform(loadConfig({ ...env, MUTUO_HORIZON_STALL_MS: String(stallMs), MUTUO_HORIZON_CHECK_MS: '50' }), logger, {
      services: ['application'],
    });
    observer = createPostgresClient({ connectionString: inDatabase('mutuo'), maxConnections: 1 });
  });
  after(async () => {
    // The cluster goes whatever happened before, a prepared transaction left in it included.
    try {
      await observer?.close();
      await platform?.close();
      await admin?.end();
    } finally {
      await cluster?.stop();
    }
  });

  const named = (level: number) =>
    lines.filter((line) => line.level === level && line.readHorizon?.holder.kind === 'prepared' && line.readHorizon.holder.gid === gid);
  const outboxBehind = async () => (await statusReport(observer!, stallMs)).relays.find((relay) => relay.name === 'outbox')!.behindEvents;

  it('names it by its gid, database, owner and age in the log, /health and mutuo status, until ROLLBACK PREPARED ends it', async () => {
    const preparer = new pg.Client({ connectionString: inDatabase('elsewhere') });
    await preparer.connect();
    await preparer.query('BEGIN');
    await preparer.query('CREATE TABLE held (x integer)');
    await preparer.query('INSERT INTO held VALUES (1)');
    await preparer.query(`PREPARE TRANSACTION '${gid}'`);
    // Forgotten: the session that prepared it is gone, and the transaction stays.
    await preparer.end();
    const [catalog] = (await admin!.query<{ prepared: Date }>('SELECT prepared FROM pg_prepared_xacts WHERE gid = $1', [gid])).rows;
    assert.ok(catalog, 'prepared');

    // A command meanwhile, committed after it and so held behind it. (While the prepared one
    // is the newest transaction, nothing waits for it, and the watch names no holder.)
    const response = await platform!.server.inject({
      method: 'POST',
      url: '/api/applications',
      payload: submission,
      headers: await injectedBearer(platform!.server, 'giulia'),
    });
    assert.equal(response.statusCode, 201, response.body);

    await waitUntil(async () => named(40).length > 0, `the log names the prepared transaction '${gid}'`, eventually);
    const [line] = named(40);
    assert.equal(named(40).length, 1, 'named once');
    const holder = line!.readHorizon!.holder as Extract<HorizonHolder, { kind: 'prepared' }>;
    assert.deepEqual(
      { gid: holder.gid, database: holder.database, owner: holder.owner, preparedAt: holder.preparedAt },
      { gid, database: 'elsewhere', owner: 'postgres', preparedAt: catalog.prepared.toISOString() },
    );
    // Its age counts from when it was prepared, which the catalog proves, not from when the watch first saw it.
    assert.equal(line!.readHorizon!.heldSince, catalog.prepared.toISOString());
    assert.ok(line!.readHorizon!.heldSeconds >= stallMs / 1000, JSON.stringify(line));
    assert.match(
      line!.msg,
      new RegExp(
        `held back for [\\d.]+ s by prepared transaction '${gid}' \\(database elsewhere, owner postgres, prepared [\\d.]+ s ago\\): ` +
          'end it with COMMIT PREPARED or ROLLBACK PREPARED',
      ),
    );

    const degraded = await healthOf(platform!);
    assert.equal(degraded.statusCode, 200, 'degraded still serves');
    assert.equal(degraded.body.status, 'degraded');
    assert.equal(degraded.body.reasons?.[0]?.code, 'READ_HORIZON_HELD');
    assert.equal(degraded.body.reasons?.[0]?.since, catalog.prepared.toISOString());
    assert.ok(!JSON.stringify(degraded.body).includes(gid), 'the public /health names no transaction');

    const stdout = await mutuoStatus(inDatabase('mutuo'));
    assert.match(
      stdout,
      new RegExp(`read horizon: STALLED .* by prepared transaction '${gid}' \\(database elsewhere, owner postgres, prepared [\\d.]+ s ago\\): end it with`),
    );
    assert.match(stdout, /relay +outbox +[1-9]/, 'the submission waits behind it');

    // Ended in its own database, as the log says.
    const ender = new pg.Client({ connectionString: inDatabase('elsewhere') });
    await ender.connect();
    try {
      await ender.query(`ROLLBACK PREPARED '${gid}'`);
    } finally {
      await ender.end();
    }
    await waitUntil(async () => named(30).length > 0, `the log says '${gid}' let the horizon go`, eventually);
    assert.match(named(30)[0]!.msg, /moves again/);
    assert.equal(named(40).length, 1, 'named once, and only once');
    await waitUntil(async () => (await healthOf(platform!)).body.status === 'ok', '/health is ok again', eventually);
    await waitUntil(async () => (await outboxBehind()) === 0, 'the relay published the submission', eventually);
    assert.doesNotMatch(statusText(await statusReport(observer!, stallMs)), new RegExp(gid));
  });
});
