import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Type } from '@sinclair/typebox';
import { defineEvent } from '../eventstore/event-definition.ts';
import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import type { SqlEventStore } from '../eventstore/store.ts';
import { sealingStore, testDigestSecret, testVault } from '../eventstore/testing.ts';
import type { TestDatabase } from '../sql/testing.ts';
import type { NewEvent } from '../eventstore/types.ts';
import { applicationStreamId } from '../../features/application/events.ts';
import { customerViewProjection } from '../../features/application/customer-view.ts';
import { dashboardProjection } from '../../features/application/dashboard.ts';
import { startProjector, type ParkedEvent, type Projection, type Projector, type ProjectorOptions } from './projector.ts';
import {
  approved,
  event,
  hours,
  identity,
  incomeApproved,
  later,
  propertyMovedV1,
  readLog,
  rejected,
  snapshot,
  submitted,
  suffixed,
  withdrawn,
} from '../../features/application/read-models.contract.ts';
import { searchKeys, searchProjection } from '../../features/application/search.ts';

export type ProjectorContractOptions = {
  /** fast-check runs of the poison property. */
  readonly poisonRuns?: number;
  /** Whether the test may kill its own database connections (a server: PGlite has only the one). */
  readonly killsConnections?: boolean;
};

type Reported = Omit<ParkedEvent, 'parkedAt'>;

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  // A guard against hanging, not a measure: what is awaited is the condition.
  const deadline = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what}`);
    await sleep(5);
  }
}

/** The search's keys, made with the test vault's secret. */
export const testSearchKeys = searchKeys(testDigestSecret);

/**
 * Stores a submission at a schema version this build does not know, as a newer build
 * writing beside it during a rolling upgrade would; answers its id. No read model can
 * decode it until this build is upgraded: each parks it, with its stream's later events.
 * (A NUL in a name, which stopped the read side before, no longer can: the read models
 * keep the name sealed, and PostgreSQL refuses a NUL in a field kept in the clear.)
 */
export async function storeApplicationOfUnknownVersion(store: SqlEventStore): Promise<string> {
  const id = randomUUID();
  const applicant = { firstName: 'Ada', lastName: 'Futuro', region: 'Lazio', amountCents: 20_000_000, submittedAt: new Date().toISOString() };
  await store.appendToStream(applicationStreamId(id), [{ ...submitted(id, applicant), schemaVersion: unknownVersion }], 'no_stream');
  return id;
}

const unknownVersion = 99;
/** What a read model parks such a submission with. */
export const unknownVersionFailure = ['EventDecodeError', `MortgageApplicationSubmitted has no version ${unknownVersion} (latest is v1)`] as const;

/** An error as the pg driver throws it: a SQLSTATE in `code`. */
const sqlError = (code: string, message: string) => Object.assign(new Error(message), { code });

/**
 * The projector with projections it cannot apply some events of: it parks them, with
 * their streams' later events, and goes on with every other stream; a database that
 * fails whatever the events parks nothing. Written once, run on PGlite and PostgreSQL.
 */
export function describeProjectorContract(adapter: string, openDatabase: () => Promise<TestDatabase>, options: ProjectorContractOptions = {}): void {
  describe(`the projector parks what it cannot apply: ${adapter}`, () => {
    let database: TestDatabase;
    let client: SqlClient;
    let store: SqlEventStore;
    const running: Projector[] = [];

    before(async () => {
      database = await openDatabase();
      client = database.client;
      store = sealingStore(client);
    });
    after(async () => {
      for (const projector of running) await projector.stop();
      await database.dispose();
    });

    /** A projector, with what it reported: each event parked, each failure that paused it. */
    function run(projections: readonly Projection[], more: Partial<ProjectorOptions> = {}) {
      const parked: Reported[] = [];
      const errors: unknown[] = [];
      const projector = startProjector({
        client,
        store,
        projections,
        idleMs: 10,
        onParked: (event) => parked.push(event),
        onError: (error) => errors.push(error),
        ...more,
      });
      running.push(projector);
      return { projector, parked, errors };
    }

    async function head(): Promise<number> {
      const [row] = await client.query<{ position: string | null }>('SELECT max(position)::text AS position FROM mutuo_events');
      return Number(row?.position ?? 0);
    }

    /** Until each of the projector's projections (or those named) has passed every event appended so far. */
    async function caughtUp(projector: Projector, names?: readonly string[]): Promise<void> {
      const target = await head();
      const behind = async () => (await projector.status()).filter((status) => (!names || names.includes(status.name)) && status.position < target);
      await until(async () => (await behind()).length === 0, `every projection at ${target}`);
    }

    const applicant = (firstName: string, lastName: string) => ({
      firstName,
      lastName,
      region: 'Lazio',
      amountCents: 20_000_000,
      submittedAt: '2024-05-02T10:00:00.000Z',
    });

    async function submit(firstName: string, lastName: string): Promise<string> {
      const id = randomUUID();
      await store.appendToStream(applicationStreamId(id), [submitted(id, applicant(firstName, lastName))], 'no_stream');
      return id;
    }

    async function idsIn(table: string, ids: readonly string[]): Promise<string[]> {
      const rows = await client.query<{ id: string }>(`SELECT application_id::text AS id FROM ${table} WHERE application_id = ANY($1::uuid[]) ORDER BY 1`, [
        ids,
      ]);
      return rows.map((row) => row.id);
    }

    const sorted = (ids: readonly string[]) => [...ids].sort();

    describe('an application of a schema version this build does not know', () => {
      let customerView: Projection;
      let projections: Projection[];
      before(() => {
        customerView = customerViewProjection(undefined, testVault(client));
        projections = [customerView, searchProjection(testSearchKeys), dashboardProjection];
      });
      let first: ReturnType<typeof run>;
      let projector: Projector;
      let anna: string;
      let nul: string;
      let carlo: string;
      let dario: string;
      after(() => projector?.stop());

      it('fails every read model applied set-wise, as the projector applied every batch', async () => {
        anna = await submit('Anna', 'Verdi');
        nul = await storeApplicationOfUnknownVersion(store);
        carlo = await submit('Carlo', 'Neri');
        const log = await readLog(store);
        for (const projection of projections) {
          const mine = log.filter((stored) => projection.events!.some((followed) => followed.type === stored.type));
          await assert.rejects(
            client.transaction((tx) => projection.apply(tx, mine, identity(projection), false)),
            { name: 'EventDecodeError' },
            projection.name,
          );
        }
      });

      it('is parked, with its later events, while the applications before and after it are projected', async () => {
        first = run(projections);
        projector = first.projector;
        await caughtUp(projector);
        for (const table of ['rm_applications', 'rm_application_search', 'rm_dashboard_applications']) {
          assert.deepEqual(await idsIn(table, [anna, nul, carlo]), sorted([anna, carlo]), table);
        }

        await store.appendToStream(applicationStreamId(nul), [approved(later('2024-05-02T10:00:00.000Z', hours(5)))], 1);
        dario = await submit('Dario', 'Bruni');
        await caughtUp(projector);
        for (const table of ['rm_applications', 'rm_application_search', 'rm_dashboard_applications']) {
          assert.deepEqual(await idsIn(table, [anna, nul, carlo, dario]), sorted([anna, carlo, dario]), table);
        }

        for (const name of ['customer-view', 'application-search', 'dashboard']) {
          const { items, total } = await projector.parked(name);
          assert.equal(total, 2, name);
          assert.deepEqual(
            items.map((parked) => [parked.streamId, parked.streamVersion, parked.eventType, parked.errorCode, parked.error]),
            [
              [applicationStreamId(nul), 1, 'MortgageApplicationSubmitted', ...unknownVersionFailure],
              [applicationStreamId(nul), 2, 'ApplicationApproved', null, null],
            ],
            name,
          );
        }
        const status = new Map((await projector.status()).map((s) => [s.name, s]));
        assert.deepEqual([status.get('customer-view')?.parkedEvents, status.get('customer-view')?.parkedStreams], [2, 1]);
        assert.deepEqual(
          [status.get('application-search')?.parkedEvents, status.get('dashboard')?.parkedEvents, status.get('rates')?.parkedEvents],
          [2, 2, undefined],
        );
        // Never a retry loop: nothing paused the projector.
        assert.deepEqual(first.errors, []);
      });

      it('is reported once per event parked, with where it is and why, and never its data', async () => {
        const log = await readLog(store);
        const submission = log.find((stored) => stored.streamId === applicationStreamId(nul) && stored.streamVersion === 1)!;
        assert.deepEqual(
          first.parked.filter((parked) => parked.projection === 'customer-view'),
          [
            {
              projection: 'customer-view',
              position: submission.position,
              streamId: applicationStreamId(nul),
              streamVersion: 1,
              eventId: submission.eventId,
              eventType: 'MortgageApplicationSubmitted',
              errorCode: unknownVersionFailure[0],
              error: unknownVersionFailure[1],
            },
            {
              projection: 'customer-view',
              position: log.find((stored) => stored.streamId === applicationStreamId(nul) && stored.streamVersion === 2)!.position,
              streamId: applicationStreamId(nul),
              streamVersion: 2,
              eventId: log.find((stored) => stored.streamId === applicationStreamId(nul) && stored.streamVersion === 2)!.eventId,
              eventType: 'ApplicationApproved',
              errorCode: null,
              error: null,
            },
          ],
        );
        assert.equal(first.parked.length, 6, 'each read model, two events each');
        const reported = JSON.stringify(first.parked);
        assert.ok(!reported.includes('Futuro') && !reported.includes('Lazio'), reported);
      });

      it('stays parked across a restart, which neither loops nor applies its later events', async () => {
        await projector.stop();
        const second = run(projections);
        projector = second.projector;
        await store.appendToStream(applicationStreamId(nul), [withdrawn(later('2024-05-02T10:00:00.000Z', hours(6)))], 2);
        const elena = await submit('Elena', 'Galli');
        await caughtUp(projector);
        assert.deepEqual(await idsIn('rm_applications', [nul, elena]), [elena]);
        assert.deepEqual(second.parked.map((parked) => [parked.projection, parked.streamVersion, parked.errorCode]).sort(), [
          ['application-search', 3, null],
          ['customer-view', 3, null],
          ['dashboard', 3, null],
        ]);
        assert.deepEqual(
          (await projector.parked('customer-view')).items.map((parked) => parked.streamVersion),
          [1, 2, 3],
        );
        assert.deepEqual(second.errors, []);
      });

      it('is parked again by a redrive while it still fails', async () => {
        assert.deepEqual(await projector.redrive('customer-view'), { redriven: 0, parked: 3 });
        const { items } = await projector.parked('customer-view');
        assert.deepEqual(
          items.map((parked) => [parked.streamVersion, parked.errorCode]),
          [
            [1, unknownVersionFailure[0]],
            [2, null],
            [3, null],
          ],
        );
        assert.deepEqual(await idsIn('rm_applications', [nul]), []);
      });

      it('is parked by a rebuild too, which finishes with every other application', async () => {
        const before = await snapshot(client, customerView, identity(customerView));
        const progress = await projector.rebuild('customer-view');
        assert.equal(progress.state, 'done', progress.error);
        assert.equal(progress.parked, 3);
        assert.deepEqual(await snapshot(client, customerView, identity(customerView)), before);
        const { items } = await projector.parked('customer-view');
        assert.deepEqual(
          items.map((parked) => [parked.streamId, parked.streamVersion, parked.errorCode]),
          [
            [applicationStreamId(nul), 1, unknownVersionFailure[0]],
            [applicationStreamId(nul), 2, null],
            [applicationStreamId(nul), 3, null],
          ],
        );
        // And the live projection goes on after the swap.
        const fabio = await submit('Fabio', 'Riva');
        await caughtUp(projector);
        assert.deepEqual(await idsIn('rm_applications', [fabio]), [fabio]);
      });

      it('is given up by a discard, of its stream only', async () => {
        assert.deepEqual(await projector.discard('customer-view', applicationStreamId(randomUUID())), { discarded: 0 });
        assert.equal((await projector.parked('customer-view')).total, 3);
        assert.deepEqual(await projector.discard('customer-view', applicationStreamId(nul)), { discarded: 3 });
        assert.equal((await projector.parked('customer-view')).total, 0);
      });
    });

    // ---- a projection that fails on given events, until told otherwise ----

    let probes = 0;

    /**
     * A read model of the events it applied, in the order it applied them. Its apply
     * writes them, then fails as `failure` says (a real SQL error, so that what it wrote
     * must be rolled back), or as an event's value refused by the database (22012) when
     * the batch holds a `failing` event.
     */
    async function probe(failing: Set<string>, failure: { now?: (tx: SqlQueryable) => Promise<unknown> } = {}) {
      const table = `probe_${++probes}_${randomUUID().slice(0, 8)}`;
      await client.exec(`CREATE TABLE ${table} (position bigint PRIMARY KEY, stream_id text NOT NULL, stream_version integer NOT NULL,
        applied_order bigint GENERATED ALWAYS AS IDENTITY)`);
      const projection: Projection = {
        name: `probe-${table}`,
        tables: [table],
        // Its own event type: a probe of an earlier test does not see this one's events.
        events: [defineEvent(table, 1, Type.Unknown())],
        async apply(tx, events, tables) {
          await tx.query(
            `INSERT INTO ${tables[table]} (position, stream_id, stream_version)
             SELECT position, stream_id, stream_version FROM json_to_recordset($1::json) AS r(position bigint, stream_id text, stream_version integer)
             ON CONFLICT (position) DO NOTHING`,
            [JSON.stringify(events.map((e) => ({ position: e.position, stream_id: e.streamId, stream_version: e.streamVersion })))],
          );
          await failure.now?.(tx);
          if (events.some((e) => failing.has(e.eventId))) await tx.query('SELECT 1 / 0');
        },
      };
      /** The stream versions applied, in the order they were applied, by stream. */
      const applied = async () => {
        const rows = await client.query<{ stream_id: string; stream_version: number }>(`SELECT stream_id, stream_version FROM ${table} ORDER BY applied_order`);
        const byStream = new Map<string, number[]>();
        for (const row of rows) byStream.set(row.stream_id, [...(byStream.get(row.stream_id) ?? []), row.stream_version]);
        return byStream;
      };
      /** Appends one of the probe's events to each stream named, in that order; answers the events' ids by `stream:version`. */
      const append = async (...steps: string[]): Promise<Map<string, string>> => {
        const ids = new Map<string, string>();
        for (const step of steps) {
          const [stream, version] = step.split(':') as [string, string];
          const appended: NewEvent = event(table, { step });
          await store.appendToStream(stream, [appended], Number(version) === 1 ? 'no_stream' : Number(version) - 1);
          ids.set(step, appended.eventId);
        }
        return ids;
      };
      return { projection, applied, append };
    }

    const parkedSteps = async (projector: Projector, name: string) =>
      (await projector.parked(name)).items.map((parked) => [`${parked.streamId}:${parked.streamVersion}`, parked.errorCode]);

    it('redrives parked events in their stream order once the fault is gone, and the stream follows the log again', async () => {
      const [s1, s2, s3] = [`probe-${randomUUID()}`, `probe-${randomUUID()}`, `probe-${randomUUID()}`];
      const failing = new Set<string>();
      const { projection, applied, append } = await probe(failing);
      const ids = await append(`${s1}:1`, `${s2}:1`, `${s3}:1`, `${s2}:2`, `${s1}:2`, `${s2}:3`, `${s3}:2`);
      failing.add(ids.get(`${s2}:2`)!).add(ids.get(`${s2}:3`)!);
      const { projector, errors } = run([projection]);
      await caughtUp(projector);
      assert.deepEqual(
        await applied(),
        new Map([
          [s1, [1, 2]],
          [s2, [1]],
          [s3, [1, 2]],
        ]),
      );
      assert.deepEqual(await parkedSteps(projector, projection.name), [
        [`${s2}:2`, '22012'],
        [`${s2}:3`, null],
      ]);
      assert.equal((await projector.parked(projection.name)).items[0]?.error, 'division by zero');

      await append(`${s2}:4`, `${s1}:3`);
      await caughtUp(projector);
      assert.deepEqual((await applied()).get(s1), [1, 2, 3]);
      assert.deepEqual(await parkedSteps(projector, projection.name), [
        [`${s2}:2`, '22012'],
        [`${s2}:3`, null],
        [`${s2}:4`, null],
      ]);

      // Half fixed: the first applies, the next is the one that fails now, the last waits behind it.
      failing.delete(ids.get(`${s2}:2`)!);
      assert.deepEqual(await projector.redrive(projection.name), { redriven: 1, parked: 2 });
      assert.deepEqual(await parkedSteps(projector, projection.name), [
        [`${s2}:3`, '22012'],
        [`${s2}:4`, null],
      ]);

      failing.clear();
      assert.deepEqual(await projector.redrive(projection.name, s2), { redriven: 2, parked: 0 });
      assert.deepEqual((await applied()).get(s2), [1, 2, 3, 4]);
      assert.deepEqual(await parkedSteps(projector, projection.name), []);
      await append(`${s2}:5`);
      await caughtUp(projector);
      assert.deepEqual((await applied()).get(s2), [1, 2, 3, 4, 5]);
      assert.equal((await projector.status()).find((status) => status.name === projection.name)?.parkedEvents, 0);
      assert.deepEqual(errors, []);
    });

    it('discards parked events, of one stream or of all: their streams follow the log again without them', async () => {
      const [p, q, r] = [`probe-${randomUUID()}`, `probe-${randomUUID()}`, `probe-${randomUUID()}`];
      const failing = new Set<string>();
      const { projection, applied, append } = await probe(failing);
      const ids = await append(`${p}:1`, `${q}:1`, `${r}:1`, `${p}:2`, `${q}:2`);
      failing.add(ids.get(`${p}:1`)!).add(ids.get(`${q}:1`)!);
      const { projector } = run([projection]);
      await caughtUp(projector);
      assert.deepEqual(await parkedSteps(projector, projection.name), [
        [`${p}:1`, '22012'],
        [`${q}:1`, '22012'],
        [`${p}:2`, null],
        [`${q}:2`, null],
      ]);

      assert.deepEqual(await projector.discard(projection.name, p), { discarded: 2 });
      assert.deepEqual(await parkedSteps(projector, projection.name), [
        [`${q}:1`, '22012'],
        [`${q}:2`, null],
      ]);
      await append(`${p}:3`);
      await caughtUp(projector);
      assert.deepEqual((await applied()).get(p), [3]);

      assert.deepEqual(await projector.discard(projection.name), { discarded: 2 });
      await append(`${q}:3`);
      await caughtUp(projector);
      assert.deepEqual(
        await applied(),
        new Map([
          [r, [1]],
          [p, [3]],
          [q, [3]],
        ]),
      );
      assert.deepEqual(await parkedSteps(projector, projection.name), []);
    });

    /** Three streams' events, a projector on them, and the proof that it keeps trying without parking or moving on. */
    async function pausedWithoutParking(failure: { now?: (tx: SqlQueryable) => Promise<unknown> }) {
      const streams = [`probe-${randomUUID()}`, `probe-${randomUUID()}`, `probe-${randomUUID()}`];
      const { projection, applied, append } = await probe(new Set(), failure);
      const before = await head();
      await append(...streams.map((stream) => `${stream}:1`));
      const started = run([projection]);
      await until(() => started.errors.length >= 3, 'three failed attempts');
      const { projector } = started;
      assert.deepEqual(await projector.parked(projection.name), { items: [], total: 0 });
      assert.deepEqual(await applied(), new Map());
      const status = (await projector.status()).find((s) => s.name === projection.name)!;
      assert.ok(status.position <= before, `the checkpoint stays before the events (${status.position} > ${before})`);
      return { ...started, projection, applied, streams };
    }

    it('parks nothing while the database is away, however the batch is split, and goes on once it is back', async () => {
      let away = true;
      const paused = await pausedWithoutParking({
        now: async () => {
          if (away) throw sqlError('08006', 'connection to the database was lost');
        },
      });
      away = false;
      await caughtUp(paused.projector, [paused.projection.name]);
      assert.deepEqual([...(await paused.applied()).keys()].sort(), [...paused.streams].sort());
      assert.equal((await paused.projector.parked(paused.projection.name)).total, 0);
    });

    it('parks nothing when every stream fails for a reason that is none of theirs (a table missing), and goes on once it is there', async () => {
      const missing = `probe_missing_${randomUUID().slice(0, 8)}`;
      let broken = true;
      const paused = await pausedWithoutParking({
        now: async (tx) => {
          if (broken) await tx.query(`SELECT count(*) FROM ${missing}`);
        },
      });
      assert.ok(paused.errors.every((error) => (error as { code?: string }).code === '42P01'));
      broken = false;
      await caughtUp(paused.projector, [paused.projection.name]);
      assert.deepEqual([...(await paused.applied()).keys()].sort(), [...paused.streams].sort());
      assert.equal((await paused.projector.parked(paused.projection.name)).total, 0);
    });

    // PGlite has the one connection, which cannot be killed under the projector.
    if (options.killsConnections) {
      it('parks nothing when its connection is killed under it', async () => {
        let killing = true;
        const paused = await pausedWithoutParking({
          now: async (tx) => {
            if (killing) await tx.query('SELECT pg_terminate_backend(pg_backend_pid())');
          },
        });
        killing = false;
        await caughtUp(paused.projector, [paused.projection.name]);
        assert.deepEqual([...(await paused.applied()).keys()].sort(), [...paused.streams].sort());
        assert.equal((await paused.projector.parked(paused.projection.name)).total, 0);
      });
    }

    it('keeps the parked events when a standby takes the projection over, which parks their streams behind them', async () => {
      const [s, t] = [`probe-${randomUUID()}`, `probe-${randomUUID()}`];
      const failing = new Set<string>();
      const { projection, applied, append } = await probe(failing);
      const ids = await append(`${s}:1`, `${t}:1`);
      failing.add(ids.get(`${s}:1`)!);
      const writer = run([projection]);
      await caughtUp(writer.projector);
      const standby = run([projection]);
      // Only the writer redrives: the standby's tables could be swapped or written under it otherwise.
      await assert.rejects(standby.projector.redrive(projection.name), /written by another process/);
      await writer.projector.stop();
      await append(`${s}:2`, `${t}:2`);
      await caughtUp(standby.projector);
      assert.deepEqual(await applied(), new Map([[t, [1, 2]]]));
      assert.deepEqual(await parkedSteps(standby.projector, projection.name), [
        [`${s}:1`, '22012'],
        [`${s}:2`, null],
      ]);
      assert.deepEqual(
        standby.parked.map((parked) => [`${parked.streamId}:${parked.streamVersion}`, parked.errorCode]),
        [[`${s}:2`, null]],
      );
    });
  });

  describe(`the projector parks what it cannot apply, as a property: ${adapter}`, () => {
    let database: TestDatabase;
    let client: SqlClient;
    let store: SqlEventStore;
    before(async () => {
      database = await openDatabase();
      client = database.client;
      store = sealingStore(client);
    });
    after(() => database.dispose());

    let projections: readonly Projection[];
    before(() => {
      projections = [customerViewProjection(undefined, testVault(client)), searchProjection(testSearchKeys), dashboardProjection];
    });

    /** The read model, failing on the poisoned events as on a value the database refuses: after writing, so that the writes must be undone. */
    const poisoned = (projection: Projection, poison: ReadonlySet<string>): Projection => ({
      ...projection,
      async apply(tx, events, tables, rebuilding) {
        const applied = await projection.apply(tx, events, tables, rebuilding);
        if (events.some((e) => poison.has(e.eventId))) await tx.query(`SELECT 'poisoned'::integer`);
        return applied;
      },
    });

    const followUp = {
      income: (at: string) => incomeApproved(later(at, hours(1))),
      moved: (at: string) => propertyMovedV1('Umbria', later(at, hours(2))),
      approved: (at: string) => approved(later(at, hours(3))),
      rejected: (at: string) => rejected(later(at, hours(3))),
      withdrawn: (at: string) => withdrawn(later(at, hours(3))),
    };
    const application = fc.record({
      name: fc.constantFrom('Rossi', 'Bianchi', 'Verdi', "D'Amico"),
      region: fc.constantFrom('Lazio', 'Veneto', 'Sicilia'),
      month: fc.integer({ min: 1, max: 3 }),
      followUps: fc.subarray(['income', 'moved'] as const),
      decision: fc.option(fc.constantFrom('approved', 'rejected', 'withdrawn') as fc.Arbitrary<'approved' | 'rejected' | 'withdrawn'>, { nil: undefined }),
    });

    it('every stream not parked reads as if the poisoned streams had stopped before their poison, and the rest of those is parked', async () => {
      const expectedTables = new Map(projections.map((projection) => [projection.name, suffixed(projection, '__expected')]));
      for (const projection of projections) {
        for (const table of projection.tables) await client.exec(`CREATE TABLE ${expectedTables.get(projection.name)![table]} (LIKE ${table} INCLUDING ALL)`);
      }
      await fc.assert(
        fc.asyncProperty(
          fc.array(application, { minLength: 1, maxLength: 5 }),
          fc.array(fc.nat(), { maxLength: 25 }),
          fc.array(fc.nat(), { maxLength: 4 }),
          fc.integer({ min: 1, max: 7 }),
          async (apps, interleaving, poisonPicks, batchSize) => {
            // Each application's events, then the log: the applications' events interleaved as the choices say.
            const streams = apps.map((app) => {
              const id = randomUUID();
              const at = `2024-0${app.month}-10T10:00:00.000Z`;
              const events = [
                submitted(id, { firstName: 'Pia', lastName: app.name, region: app.region, amountCents: 15_000_000, submittedAt: at }),
                ...app.followUps.map((kind) => followUp[kind](at)),
                ...(app.decision ? [followUp[app.decision](at)] : []),
              ];
              return { streamId: applicationStreamId(id), events, next: 0 };
            });
            const start = Number((await client.query<{ p: string | null }>('SELECT max(position)::text AS p FROM mutuo_events'))[0]?.p ?? 0);
            for (let i = 0; streams.some((stream) => stream.next < stream.events.length); i++) {
              const pending = streams.filter((stream) => stream.next < stream.events.length);
              const stream = pending[(interleaving[i] ?? 0) % pending.length]!;
              await store.appendToStream(stream.streamId, [stream.events[stream.next]!], stream.next === 0 ? 'no_stream' : stream.next);
              stream.next++;
            }
            const log = await readLog(store, start);
            const poison = new Set(poisonPicks.map((pick) => log[pick % log.length]!.eventId));

            // From an empty read model at the start of this log.
            const names = projections.map((projection) => projection.name);
            await client.exec(`TRUNCATE ${projections.flatMap((projection) => projection.tables).join(', ')}`);
            await client.query('DELETE FROM mutuo_projection_parked WHERE projection = ANY($1)', [names]);
            await client.query(
              `INSERT INTO mutuo_projections (name, position) SELECT unnest($1::text[]), $2
               ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, holder = NULL, lease_until = NULL`,
              [names, start],
            );
            const projector = startProjector({
              client,
              store,
              projections: projections.map((projection) => poisoned(projection, poison)),
              batchSize,
              idleMs: 5,
            });
            try {
              const target = log.at(-1)!.position;
              await until(async () => (await projector.status()).every((status) => status.position >= target), `every projection at ${target}`);
            } finally {
              await projector.stop();
            }

            for (const projection of projections) {
              // The reference: each poisoned stream cut before its first poisoned event, applied in one go.
              const mine = log.filter((stored) => projection.events!.some((followed) => followed.type === stored.type));
              const cutAt = new Map<string, number>();
              for (const stored of mine) if (poison.has(stored.eventId) && !cutAt.has(stored.streamId)) cutAt.set(stored.streamId, stored.position);
              const kept = mine.filter((stored) => stored.position < (cutAt.get(stored.streamId) ?? Infinity));
              const cut = mine.filter((stored) => stored.position >= (cutAt.get(stored.streamId) ?? Infinity));
              const expected = expectedTables.get(projection.name)!;
              await client.exec(`TRUNCATE ${Object.values(expected).join(', ')}`);
              if (kept.length > 0) await client.transaction((tx) => projection.apply(tx, kept, expected, true));
              assert.deepEqual(await snapshot(client, projection, identity(projection)), await snapshot(client, projection, expected), projection.name);

              const parked = await client.query<{ position: string; error_code: string | null; error: string | null }>(
                'SELECT position::text AS position, error_code, error FROM mutuo_projection_parked WHERE projection = $1 ORDER BY position',
                [projection.name],
              );
              assert.deepEqual(
                parked.map((row) => [Number(row.position), row.error_code, row.error]),
                cut.map((stored) =>
                  cutAt.get(stored.streamId) === stored.position
                    ? [stored.position, '22P02', 'invalid input syntax for type integer: "…"']
                    : [stored.position, null, null],
                ),
                projection.name,
              );
            }
          },
        ),
        { numRuns: options.poisonRuns ?? 15 },
      );
    });
  });
}
