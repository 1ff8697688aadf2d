import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { insertEvents, type SqlEventStore } from './store.ts';
import { sealingStore } from './testing.ts';
import { sampleEvent, type TestDatabase } from '../sql/testing.ts';
import { DuplicateEventIdError, WrongExpectedVersionError, type StoredEvent } from './types.ts';

/** The event store's contract, written once and run against every adapter. */
export function describeEventStoreConformance(adapter: string, openDatabase: () => Promise<TestDatabase>): void {
  describe(`event store conformance: ${adapter}`, () => {
    let database: TestDatabase;
    let store: SqlEventStore;
    let streamCounter = 0;
    const newStream = () => `conformance-${Date.now()}-${++streamCounter}`;

    before(async () => {
      database = await openDatabase();
      store = sealingStore(database.client);
    });
    after(() => database.dispose());

    it('appends to a new stream with no_stream and numbers versions from 1', async () => {
      const stream = newStream();
      const result = await store.appendToStream(stream, [sampleEvent(), sampleEvent(), sampleEvent()], 'no_stream');
      assert.equal(result.nextVersion, 3);
      assert.equal(result.lastPosition - result.firstPosition, 2);
      const events = await store.readStream(stream);
      assert.deepEqual(
        events.map((e) => e.streamVersion),
        [1, 2, 3],
      );
      assert.deepEqual(
        events.map((e) => e.position),
        [result.firstPosition, result.firstPosition + 1, result.lastPosition],
      );
    });

    it('refuses no_stream on an existing stream with the current version', async () => {
      const stream = newStream();
      await store.appendToStream(stream, [sampleEvent(), sampleEvent()], 'no_stream');
      await assert.rejects(store.appendToStream(stream, [sampleEvent()], 'no_stream'), (error) => {
        assert.ok(error instanceof WrongExpectedVersionError);
        assert.equal(error.currentVersion, 2);
        return true;
      });
    });

    it('appends at the exact expected version and refuses a stale one', async () => {
      const stream = newStream();
      await store.appendToStream(stream, [sampleEvent()], 'no_stream');
      assert.equal((await store.appendToStream(stream, [sampleEvent()], 1)).nextVersion, 2);
      await assert.rejects(store.appendToStream(stream, [sampleEvent()], 1), (error) => {
        assert.ok(error instanceof WrongExpectedVersionError);
        assert.equal(error.currentVersion, 2);
        assert.equal(error.expected, 1);
        return true;
      });
      await assert.rejects(store.appendToStream(newStream(), [sampleEvent()], 4), (error) => {
        assert.ok(error instanceof WrongExpectedVersionError);
        assert.equal(error.currentVersion, 0);
        return true;
      });
      assert.equal((await store.readStream(stream)).length, 2, 'a refused append writes nothing');
    });

    it('appends with any whether or not the stream exists', async () => {
      const stream = newStream();
      assert.equal((await store.appendToStream(stream, [sampleEvent()], 'any')).nextVersion, 1);
      assert.equal((await store.appendToStream(stream, [sampleEvent(), sampleEvent()], 'any')).nextVersion, 3);
    });

    it('lets exactly one of several concurrent appends at the same version win', async () => {
      const stream = newStream();
      await store.appendToStream(stream, [sampleEvent()], 'no_stream');
      const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => store.appendToStream(stream, [sampleEvent()], 1)));
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') assert.ok(outcome.reason instanceof WrongExpectedVersionError);
      }
      assert.deepEqual(
        (await store.readStream(stream)).map((e) => e.streamVersion),
        [1, 2],
      );
    });

    it('treats re-appending the same batch as a retry and refuses reused ids elsewhere', async () => {
      const stream = newStream();
      const batch = [sampleEvent(), sampleEvent()];
      const first = await store.appendToStream(stream, batch, 'no_stream');
      assert.deepEqual(await store.appendToStream(stream, batch, 'no_stream'), first);
      assert.equal((await store.readStream(stream)).length, 2);
      await assert.rejects(store.appendToStream(newStream(), [batch[0]!], 'any'), DuplicateEventIdError);
      await assert.rejects(store.appendToStream(stream, [batch[1]!, sampleEvent()], 'any'), DuplicateEventIdError);
      assert.equal((await store.readStream(stream)).length, 2);
    });

    it('fails only the faulty append among many written together', async () => {
      const existing = newStream();
      const reused = sampleEvent();
      await store.appendToStream(existing, [reused], 'no_stream');
      const good = Array.from({ length: 30 }, () => newStream());
      const outcomes = await Promise.allSettled([
        ...good.map((stream) => store.appendToStream(stream, [sampleEvent(), sampleEvent()], 'no_stream')),
        store.appendToStream(existing, [sampleEvent()], 'no_stream'),
        store.appendToStream(existing, [sampleEvent()], 5),
        store.appendToStream(newStream(), [reused], 'any'),
      ]);
      assert.deepEqual(
        outcomes.slice(0, 30).map((o) => o.status),
        Array(30).fill('fulfilled'),
      );
      const [noStream, stale, duplicate] = outcomes.slice(30);
      assert.ok(noStream?.status === 'rejected' && noStream.reason instanceof WrongExpectedVersionError);
      assert.ok(stale?.status === 'rejected' && stale.reason instanceof WrongExpectedVersionError && stale.reason.currentVersion === 1);
      assert.ok(duplicate?.status === 'rejected' && duplicate.reason instanceof DuplicateEventIdError);
      for (const stream of good) assert.equal((await store.readStream(stream)).length, 2);
    });

    it('serves concurrent appends to one stream in arrival order with any', async () => {
      const stream = newStream();
      const batches = Array.from({ length: 12 }, (_, i) => [sampleEvent('Numbered', { i })]);
      const results = await Promise.all(batches.map((batch) => store.appendToStream(stream, batch, 'any')));
      assert.deepEqual(
        results.map((r) => r.nextVersion),
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        (await store.readStream(stream)).map((e) => (e.data as { i: number }).i),
        Array.from({ length: 12 }, (_, i) => i),
      );
    });

    it('appends to several streams in one transaction, all or nothing', async () => {
      const [a, b] = [newStream(), newStream()];
      const results = await database.client.transaction(async (tx) => [
        await insertEvents(tx, a, [sampleEvent(), sampleEvent()], 'no_stream', 0),
        await insertEvents(tx, b, [sampleEvent()], 'no_stream', 2),
        await insertEvents(tx, a, [sampleEvent()], 2, 3),
      ]);
      assert.deepEqual(
        results.map((r) => r?.nextVersion),
        [2, 1, 3],
      );
      const positions = [...(await store.readStream(a)), ...(await store.readStream(b))].map((e) => e.position).sort((x, y) => x - y);
      assertStrictlyIncreasing(positions);
      assert.equal(positions.at(-1)! - positions[0]!, 3, 'one transaction, consecutive positions');

      const c = newStream();
      await assert.rejects(
        database.client.transaction(async (tx) => {
          await insertEvents(tx, c, [sampleEvent()], 'no_stream', 0);
          assert.equal(await insertEvents(tx, a, [sampleEvent()], 1, 1), undefined, 'a stale version inserts nothing');
          throw new Error('abandon');
        }),
        /abandon/,
      );
      assert.deepEqual(await store.readStream(c), []);
    });

    it('refuses an empty append and an impossible expected version', async () => {
      await assert.rejects(store.appendToStream(newStream(), [], 'any'), RangeError);
      await assert.rejects(store.appendToStream(newStream(), [sampleEvent()], -1), RangeError);
      await assert.rejects(store.appendToStream(newStream(), [sampleEvent()], 1.5), RangeError);
    });

    it('reads expected version 0 as no_stream: the version of a stream without events', async () => {
      const stream = newStream();
      assert.equal((await store.appendToStream(stream, [sampleEvent()], 0)).nextVersion, 1);
      await assert.rejects(store.appendToStream(stream, [sampleEvent()], 0), WrongExpectedVersionError);
    });

    it('keeps type, schema version, data and metadata as given', async () => {
      const stream = newStream();
      const event = { ...sampleEvent('PropertyDetailsUpdated', { valueCents: 25_000_000, nested: { a: [1, 'b'] } }), schemaVersion: 2 };
      await store.appendToStream(stream, [event], 'no_stream');
      const [stored] = await store.readStream(stream);
      assert.ok(stored);
      assert.equal(stored.eventId, event.eventId);
      assert.equal(stored.type, 'PropertyDetailsUpdated');
      assert.equal(stored.schemaVersion, 2);
      assert.deepEqual(stored.data, event.data);
      assert.deepEqual(stored.metadata, event.metadata);
      assert.ok(stored.recordedAt instanceof Date);
    });

    it('reads a stream from a version, up to a version and as of an instant', async () => {
      const stream = newStream();
      for (let version = 0; version < 5; version++) {
        await store.appendToStream(stream, [sampleEvent('Step', { version: version + 1 })], version === 0 ? 'no_stream' : version);
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
      const all = await store.readStream(stream);
      assert.deepEqual(
        (await store.readStream(stream, { fromVersion: 3 })).map((e) => e.streamVersion),
        [3, 4, 5],
      );
      assert.deepEqual(
        (await store.readStream(stream, { toVersion: 2 })).map((e) => e.streamVersion),
        [1, 2],
      );
      assert.deepEqual(
        (await store.readStream(stream, { fromVersion: 2, toVersion: 3 })).map((e) => e.streamVersion),
        [2, 3],
      );
      const third = all[2]!;
      assert.deepEqual(
        (await store.readStream(stream, { asOf: third.recordedAt })).map((e) => e.streamVersion),
        [1, 2, 3],
      );
      assert.deepEqual(await store.readStream(stream, { asOf: new Date(all[0]!.recordedAt.getTime() - 1) }), []);
      assert.deepEqual(await store.readStream('no-such-stream'), []);
    });

    it('refuses UPDATE, DELETE and TRUNCATE of stored events in the database itself', async () => {
      const stream = newStream();
      await store.appendToStream(stream, [sampleEvent()], 'no_stream');
      for (const statement of [`UPDATE mutuo_events SET data = '{}'::jsonb WHERE stream_id = $1`, 'DELETE FROM mutuo_events WHERE stream_id = $1']) {
        await assert.rejects(database.client.query(statement, [stream]), /immutable/);
      }
      await assert.rejects(database.client.exec('TRUNCATE mutuo_events'), /immutable/);
      assert.equal((await store.readStream(stream)).length, 1);
    });

    it('pages through readAll in position order without losing or repeating an event', async () => {
      const stream = newStream();
      const head = await readEverything(store, 0, 1000);
      const start = head.at(-1)?.position ?? 0;
      for (let i = 0; i < 7; i++) await store.appendToStream(stream, [sampleEvent(), sampleEvent(), sampleEvent()], 'any');
      const paged = await readEverything(store, start, 4);
      assert.equal(paged.length, 21);
      assertStrictlyIncreasing(paged.map((e) => e.position));
      assert.deepEqual(
        paged.map((e) => e.streamVersion),
        Array.from({ length: 21 }, (_, i) => i + 1),
      );
    });

    it('property: random concurrent appends keep versions contiguous and readAll complete, ordered and unique', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              stream: fc.integer({ min: 0, max: 4 }),
              events: fc.integer({ min: 1, max: 3 }),
              mode: fc.constantFrom('any', 'read-then-exact', 'no_stream'),
            }),
            { minLength: 1, maxLength: 40 },
          ),
          async (appends) => {
            const prefix = newStream();
            const startPosition = (await readEverything(store, 0, 10_000)).at(-1)?.position ?? 0;
            const committed = new Set<string>();
            // A subscriber polls while the appends run, as a projection would.
            let appending = true;
            const seen: StoredEvent[] = [];
            const subscriber = (async () => {
              let checkpoint = startPosition;
              for (;;) {
                const done = !appending;
                const batch = await store.readAll(checkpoint, 7);
                seen.push(...batch);
                checkpoint = batch.at(-1)?.position ?? checkpoint;
                if (batch.length === 0 && done) return;
                if (batch.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
              }
            })();
            await Promise.all(
              appends.map(async ({ stream, events, mode }) => {
                const streamId = `${prefix}-${stream}`;
                const batch = Array.from({ length: events }, () => sampleEvent());
                const expected = mode === 'any' ? 'any' : mode === 'no_stream' ? 'no_stream' : (await store.readStream(streamId)).length || 'no_stream';
                try {
                  await store.appendToStream(streamId, batch, expected);
                  for (const event of batch) committed.add(event.eventId);
                } catch (error) {
                  if (!(error instanceof WrongExpectedVersionError)) throw error;
                }
              }),
            );
            appending = false;
            await subscriber;

            assertStrictlyIncreasing(seen.map((e) => e.position));
            assert.deepEqual(new Set(seen.map((e) => e.eventId)), committed, 'the subscriber saw every committed event exactly once');
            assert.equal(seen.length, committed.size);
            const byStream = new Map<string, StoredEvent[]>();
            for (const event of seen) byStream.set(event.streamId, [...(byStream.get(event.streamId) ?? []), event]);
            for (const [streamId, events] of byStream) {
              assert.deepEqual(
                events.map((e) => e.streamVersion),
                Array.from({ length: events.length }, (_, i) => i + 1),
                streamId,
              );
              assert.deepEqual(
                (await store.readStream(streamId)).map((e) => e.eventId),
                events.map((e) => e.eventId),
              );
            }
          },
        ),
        { numRuns: 25 },
      );
    });
  });
}

export async function readEverything(store: SqlEventStore, afterPosition: number, batchSize: number): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  let checkpoint = afterPosition;
  for (;;) {
    const batch = await store.readAll(checkpoint, batchSize);
    if (batch.length === 0) return events;
    events.push(...batch);
    checkpoint = batch.at(-1)!.position;
  }
}

export function assertStrictlyIncreasing(values: readonly number[]): void {
  for (let i = 1; i < values.length; i++) {
    assert.ok(values[i]! > values[i - 1]!, `position ${values[i]} follows ${values[i - 1]}`);
  }
}
