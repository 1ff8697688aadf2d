import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertStrictlyIncreasing, describeEventStoreConformance, readEverything } from './store.contract.ts';
import { insertEvents, type SqlEventStore } from './store.ts';
import { sealingStore, testSessions } from './testing.ts';
import { openTestPostgres, sampleEvent, type TestDatabase } from '../sql/testing.ts';
import type { StoredEvent } from './types.ts';

describeEventStoreConformance('PostgreSQL', openTestPostgres);

describe('readAll on PostgreSQL with transactions that commit out of order', () => {
  let database: TestDatabase;
  let store: SqlEventStore;
  before(async () => {
    database = await openTestPostgres();
    store = sealingStore(database.client);
  });
  after(() => database.dispose());

  /** A subscriber as a projection runs it: a checkpoint, and every event it is handed. */
  function subscriber(startPosition: number) {
    let checkpoint = startPosition;
    const received: StoredEvent[] = [];
    return {
      received,
      async poll() {
        const batch = await readEverything(store, checkpoint, 2);
        received.push(...batch);
        checkpoint = batch.at(-1)?.position ?? checkpoint;
        return batch;
      },
    };
  }

  async function head(): Promise<number> {
    return (await readEverything(store, 0, 10_000)).at(-1)?.position ?? 0;
  }

  it('holds back events committed after an append that is still open, then delivers all in order once', async () => {
    const reader = subscriber(await head());
    const held = database.openAnother();
    const early = sampleEvent('HeldOpen');
    const late = [sampleEvent('CommittedFirst'), sampleEvent('CommittedFirst')];

    await held.transaction(async (tx) => {
      await insertEvents(tx, 'gap-held', [early], 'any', 0);
      // Another connection appends and commits while this transaction stays open.
      await store.appendToStream('gap-other', late, 'any');
      assert.deepEqual(await reader.poll(), [], 'nothing past the open transaction is handed out');
    });

    await reader.poll();
    assert.deepEqual(
      reader.received.map((e) => e.eventId),
      [early.eventId, ...late.map((e) => e.eventId)],
    );
    assert.deepEqual(await reader.poll(), []);
  });

  it('does not skip an append whose transaction started writing first but appended last', async () => {
    const reader = subscriber(await head());
    const held = database.openAnother();
    const slow = sampleEvent('AppendedLast');
    const fast = sampleEvent('AppendedFirst');

    await held.transaction(async (tx) => {
      // The transaction gets its id before the other append: its events sort first.
      await tx.query('SELECT pg_current_xact_id()');
      await store.appendToStream('gap-fast', [fast], 'any');
      assert.deepEqual(await reader.poll(), []);
      await insertEvents(tx, 'gap-slow', [slow], 'any', 0);
      assert.deepEqual(await reader.poll(), []);
    });

    await reader.poll();
    assert.deepEqual(
      reader.received.map((e) => e.eventId),
      [slow.eventId, fast.eventId],
    );
    assertStrictlyIncreasing(reader.received.map((e) => e.position));
  });

  it('skips nothing for a rolled-back append and serves later commits', async () => {
    const reader = subscriber(await head());
    const held = database.openAnother();
    const doomed = sampleEvent('RolledBack');
    const kept = sampleEvent('Kept');
    await assert.rejects(
      held.transaction(async (tx) => {
        await insertEvents(tx, 'gap-doomed', [doomed], 'any', 0);
        await store.appendToStream('gap-kept', [kept], 'any');
        throw new Error('roll back');
      }),
      /roll back/,
    );
    await reader.poll();
    assert.deepEqual(
      reader.received.map((e) => e.eventId),
      [kept.eventId],
    );
  });

  it('keeps the order of many appends spread over concurrent open transactions', async () => {
    const reader = subscriber(await head());
    const connections = Array.from({ length: 8 }, () => database.openAnother());
    const appended: string[] = [];
    let polling = true;
    const polled = (async () => {
      while (polling) {
        await reader.poll();
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    await Promise.all(
      connections.map((connection, c) =>
        connection.transaction(async (tx) => {
          for (let i = 0; i < 10; i++) {
            const event = sampleEvent('Interleaved', { c, i });
            await insertEvents(tx, `interleaved-${c}`, [event], 'any', i);
            appended.push(event.eventId);
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
          }
        }),
      ),
    );
    polling = false;
    await polled;
    await reader.poll();
    assert.equal(reader.received.length, appended.length);
    assert.deepEqual(new Set(reader.received.map((e) => e.eventId)), new Set(appended));
    assertStrictlyIncreasing(reader.received.map((e) => e.position));
  });
});

describe("appends with 'any' in transactions on PostgreSQL", () => {
  let database: TestDatabase;
  before(async () => {
    database = await openTestPostgres();
  });
  after(() => database.dispose());

  it('lets two open sessions append to one stream: the second waits for the first and takes the next version', async () => {
    const other = database.openAnother();
    const watcher = database.openAnother();
    const first = sampleEvent('AppendedFirst');
    const second = sampleEvent('AppendedSecond');
    let secondAppend: Promise<unknown> | undefined;
    await testSessions(database.client).run(async (session) => {
      await session.append('any-race', [first], 'any');
      // The other session appends while this one is open, and waits for it.
      secondAppend = testSessions(other).run((otherSession) => otherSession.append('any-race', [second], 'any'));
      for (let waiting = 0; waiting === 0; ) {
        const [row] = await watcher.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
        );
        waiting = row?.n ?? 0;
      }
    });
    await secondAppend;
    const events = await sealingStore(database.client).readStream('any-race');
    assert.deepEqual(
      events.map((event) => [event.eventId, event.streamVersion]),
      [
        [first.eventId, 1],
        [second.eventId, 2],
      ],
    );
  });
});
