import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { storedLog, type SqlEventStore } from '../eventstore/store.ts';
import { sampleEvent, type TestDatabase } from '../sql/testing.ts';
import { createEventCatalog } from '../eventstore/event-catalog.ts';
import { defineEvent } from '../eventstore/event-definition.ts';
import type { Session } from '../eventstore/session.ts';
import { sealingStore, testSessions } from '../eventstore/testing.ts';
import type { Bus, Subscription } from './bus.ts';
import { createConsumer, defineConsumer, type ConsumedEventOf, type ConsumerOptions } from './consumer.ts';
import { createDeadLetters } from './dead-letters.ts';
import { toEventMessage } from './message.ts';
import { startOutboxRelay, type OutboxRelay } from './relay.ts';

export type MessagingFixture = {
  readonly database: TestDatabase;
  readonly bus: Bus;
  /** Removes what the bus keeps for a consumer (its queues, bindings): a consumer a test is done with. */
  readonly forgetConsumer: (name: string) => Promise<void>;
  readonly dispose: () => Promise<void>;
};

/** The event these tests publish. */
export const TestHappened = defineEvent('TestHappened', 1, Type.Object({ n: Type.Integer() }));
export type TestEvent = ConsumedEventOf<typeof TestHappened>;

/** What a test's consumer reads the messages with: TestHappened, and nothing else. */
export const testCatalog = createEventCatalog([TestHappened]);

/** A consumer of TestHappened that hands each event to `handle`. */
export const testConsumer = (name: string, handle: (event: TestEvent, session: Session) => Promise<void>) =>
  defineConsumer({ name, events: [TestHappened], handle });

/** The options a test's consumer runs with, on `client`. */
export const testConsumerOptions = (client: TestDatabase['client']): Pick<ConsumerOptions, 'client' | 'sessions' | 'catalog'> => ({
  client,
  sessions: testSessions(client),
  catalog: testCatalog,
});

export async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The messaging contract, written once and run against each bus with its database. */
export function describeMessaging(adapter: string, open: () => Promise<MessagingFixture>): void {
  describe(`messaging: ${adapter}`, () => {
    let fixture: MessagingFixture;
    let store: SqlEventStore;
    let relay: OutboxRelay;
    const consumers: string[] = [];

    before(async () => {
      fixture = await open();
      store = sealingStore(fixture.database.client);
      await fixture.database.client.exec(`CREATE TABLE test_handled (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, consumer text NOT NULL,
        partition_key text NOT NULL, event_id uuid NOT NULL, stream_version integer NOT NULL, n integer NOT NULL)`);
      relay = startOutboxRelay({ client: fixture.database.client, store: storedLog(fixture.database.client), bus: fixture.bus, idleMs: 10 });
    });
    after(async () => {
      await relay.stop();
      for (const name of consumers) await fixture.forgetConsumer(name);
      await fixture.dispose();
    });

    /** Closes a test's consumer and removes what the bus kept for it, so that no later publish waits for it. */
    const forget = async (name: string, subscription: Subscription) => {
      await subscription.close();
      await fixture.forgetConsumer(name);
    };

    const record = async (consumer: string, event: TestEvent, session: Session) => {
      await session.tx.query('INSERT INTO test_handled (consumer, partition_key, event_id, stream_version, n) VALUES ($1, $2, $3, $4, $5)', [
        consumer,
        event.partitionKey,
        event.eventId,
        event.streamVersion,
        event.data.n,
      ]);
    };

    async function startConsumer(
      handle?: (event: TestEvent, session: Session) => Promise<void>,
    ): Promise<{ name: string; subscription: Subscription; consumer: ReturnType<typeof createConsumer> }> {
      const name = `test-${randomUUID().slice(0, 8)}`;
      consumers.push(name);
      const consumer = createConsumer(testConsumer(name, handle ?? ((event, session) => record(name, event, session))), {
        ...testConsumerOptions(fixture.database.client),
        maxAttempts: 3,
        firstRetryDelayMs: 5,
        requestPollMs: 20,
      });
      return { name, consumer, subscription: await consumer.start(fixture.bus) };
    }

    async function handled(consumer: string) {
      return fixture.database.client.query<{ partition_key: string; event_id: string; stream_version: number; n: number }>(
        'SELECT partition_key, event_id::text AS event_id, stream_version, n FROM test_handled WHERE consumer = $1 ORDER BY seq',
        [consumer],
      );
    }

    async function appendTo(applicationId: string, count: number, startN = 1) {
      let last = 0;
      for (let i = 0; i < count; i++) {
        last = (await store.appendToStream(`application-${applicationId}`, [sampleEvent('TestHappened', { n: startN + i })], 'any')).lastPosition;
      }
      return last;
    }

    it('delivers every committed event once, each application in version order', async () => {
      const { name, subscription } = await startConsumer();
      const applications = Array.from({ length: 20 }, () => randomUUID());
      const positions = await Promise.all(applications.map((id) => appendTo(id, 5)));
      await relay.published(Math.max(...positions));
      await waitUntil(async () => (await handled(name)).length >= 100, 'all 100 events are handled');
      const rows = await handled(name);
      assert.equal(rows.length, 100);
      assert.equal(new Set(rows.map((r) => r.event_id)).size, 100);
      for (const id of applications) {
        assert.deepEqual(
          rows.filter((r) => r.partition_key === id).map((r) => r.stream_version),
          [1, 2, 3, 4, 5],
          id,
        );
      }
      await forget(name, subscription);
    });

    it('marks as republished, when a relay takes over, only the one batch its predecessor may have published', async () => {
      const relayName = `relay-${randomUUID().slice(0, 8)}`;
      const head = await appendTo(randomUUID(), 1);
      await fixture.database.client.query(`INSERT INTO mutuo_relay (name, holder, lease_until, position) VALUES ($1, 'gone', now(), $2)`, [relayName, head]);
      const positions: number[] = [];
      for (let i = 0; i < 7; i++) positions.push(await appendTo(randomUUID(), 1));
      const published: boolean[] = [];
      const recording: Bus = {
        ...fixture.bus,
        publish: async (messages, options) => {
          for (const _ of messages) published.push(options?.republished === true);
          await fixture.bus.publish(messages, options);
        },
      };
      const taking = startOutboxRelay({ client: fixture.database.client, store, bus: recording, name: relayName, idleMs: 10, batchSize: 3 });
      await taking.published(positions.at(-1)!);
      await taking.stop();
      assert.deepEqual(published, [true, true, true, false, false, false, false]);
    });

    it('lets one of two relays publish at a time, and the other take over when it stops', async () => {
      const { name, subscription } = await startConsumer();
      const publishedBy = new Map<string, number>();
      const counting = (label: string): Bus => ({
        ...fixture.bus,
        publish: async (messages) => {
          publishedBy.set(label, (publishedBy.get(label) ?? 0) + messages.length);
          await fixture.bus.publish(messages);
        },
      });
      const relayName = `relay-${randomUUID().slice(0, 8)}`;
      const start = (label: string) =>
        startOutboxRelay({ client: fixture.database.client, store, bus: counting(label), name: relayName, idleMs: 10, leaseMs: 600 });
      // Both start from the beginning of the store: give them a checkpoint at today's head.
      const head = await appendTo(randomUUID(), 1);
      await fixture.database.client.query(`INSERT INTO mutuo_relay (name, holder, lease_until, position) VALUES ($1, 'nobody', now(), $2)`, [relayName, head]);
      const first = start('first');
      const second = start('second');
      const firstBatch = await Promise.all(Array.from({ length: 5 }, () => appendTo(randomUUID(), 2)));
      await Promise.race([first.published(Math.max(...firstBatch)), second.published(Math.max(...firstBatch))]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const total = [...publishedBy.values()].reduce((sum, n) => sum + n, 0);
      assert.equal(publishedBy.size, 1, `only one relay published: ${JSON.stringify([...publishedBy])}`);
      assert.equal(total, 10);

      const [holder, standby] = publishedBy.has('first') ? [first, second] : [second, first];
      await holder.stop();
      const later = await appendTo(randomUUID(), 3);
      await standby.published(later);
      assert.equal(publishedBy.size, 2, 'the standby took over');
      assert.equal(
        [...publishedBy.values()].reduce((sum, n) => sum + n, 0),
        13,
        'nothing was published twice',
      );
      await standby.stop();
      await waitUntil(async () => (await handled(name)).length >= 13 + 1, 'the consumer handled every event');
      await forget(name, subscription);
    });

    it('gives a redelivered event no second effect', async () => {
      const { name, subscription } = await startConsumer();
      const id = randomUUID();
      const last = await appendTo(id, 3);
      await relay.published(last);
      await waitUntil(async () => (await handled(name)).length >= 3, 'the first delivery is handled');
      const events = await store.readStream(`application-${id}`);
      await fixture.bus.publish(events.map(toEventMessage));
      await fixture.bus.publish(events.map(toEventMessage));
      const marker = await appendTo(randomUUID(), 1);
      await relay.published(marker);
      await waitUntil(async () => (await handled(name)).length >= 4, 'a later event is handled');
      assert.deepEqual(
        (await handled(name)).filter((r) => r.partition_key === id).map((r) => r.n),
        [1, 2, 3],
      );
      await forget(name, subscription);
    });

    it('retries a failing handler with backoff until it succeeds', async () => {
      const failures = new Map<string, number>();
      let name = '';
      const { name: consumerName, subscription } = await startConsumer(async (event, session) => {
        const seen = failures.get(event.eventId) ?? 0;
        if (seen < 2) {
          failures.set(event.eventId, seen + 1);
          throw new Error('the credit bureau is slow today');
        }
        await record(name, event, session);
      });
      name = consumerName;
      const last = await appendTo(randomUUID(), 2);
      await relay.published(last);
      await waitUntil(async () => (await handled(name)).length >= 2, 'both events are handled');
      assert.deepEqual(
        (await handled(name)).map((r) => r.n),
        [1, 2],
      );
      assert.deepEqual(await createDeadLetters(fixture.database.client).list({ consumer: name }), []);
      await forget(name, subscription);
    });

    it('dead-letters a message that keeps failing, parks its application behind it, and releases it in order on redrive', async () => {
      const poisoned = randomUUID();
      let healed = false;
      let name = '';
      const { name: consumerName, subscription } = await startConsumer(async (event, session) => {
        if (!healed && event.partitionKey === poisoned && (event.data as { n: number }).n === 2) throw new Error('cannot score this one');
        await record(name, event, session);
      });
      name = consumerName;
      const deadLetters = createDeadLetters(fixture.database.client);
      const healthy = randomUUID();
      await appendTo(poisoned, 4);
      const last = await appendTo(healthy, 3);
      await relay.published(last);
      await waitUntil(async () => (await handled(name)).filter((r) => r.partition_key === healthy).length >= 3, 'the other application flows');
      await waitUntil(async () => (await deadLetters.list({ consumer: name })).some((d) => d.parked === 2), 'the later events are parked');

      const [dead] = await deadLetters.list({ consumer: name });
      assert.ok(dead);
      assert.deepEqual([dead.reason, dead.attempts, dead.status, dead.partitionKey, dead.parked], ['HANDLER_FAILED', 3, 'dead', poisoned, 2]);
      assert.match(dead.error, /cannot score this one/);
      const detail = await deadLetters.get(dead.id);
      assert.equal((detail.message as { body: { eventId: string } }).body.eventId, dead.eventId);
      assert.deepEqual(
        (await handled(name)).filter((r) => r.partition_key === poisoned).map((r) => r.n),
        [1],
      );

      // Still parked while dead: a new event of that application waits too.
      await relay.published(await appendTo(poisoned, 1, 5));
      await waitUntil(async () => (await deadLetters.get(dead.id)).parked === 3, 'the new event is parked too');

      healed = true;
      await deadLetters.requestRedrive(dead.id);
      await waitUntil(async () => (await handled(name)).filter((r) => r.partition_key === poisoned).length >= 5, 'the redrive releases the rest');
      assert.deepEqual(
        (await handled(name)).filter((r) => r.partition_key === poisoned).map((r) => r.n),
        [1, 2, 3, 4, 5],
      );
      const resolved = await deadLetters.get(dead.id);
      assert.deepEqual([resolved.status, resolved.parked], ['redriven', 0]);
      await assert.rejects(deadLetters.requestRedrive(dead.id), /already redriven/);

      // Flowing again: the next event is handled directly.
      await relay.published(await appendTo(poisoned, 1, 6));
      await waitUntil(async () => (await handled(name)).filter((r) => r.partition_key === poisoned).length >= 6, 'the application flows again');
      await forget(name, subscription);
    });

    it('releases the parked events when a dead letter is discarded', async () => {
      const poisoned = randomUUID();
      let name = '';
      const { name: consumerName, subscription } = await startConsumer(async (event, session) => {
        if ((event.data as { n: number }).n === 1) throw new Error('never');
        await record(name, event, session);
      });
      name = consumerName;
      const deadLetters = createDeadLetters(fixture.database.client);
      await relay.published(await appendTo(poisoned, 3));
      await waitUntil(async () => (await deadLetters.list({ consumer: name })).some((d) => d.parked === 2), 'two events are parked');
      const [dead] = await deadLetters.list({ consumer: name, status: 'open' });
      await deadLetters.requestDiscard(dead!.id);
      await waitUntil(async () => (await handled(name)).length >= 2, 'the parked events are handled');
      assert.deepEqual(
        (await handled(name)).map((r) => r.n),
        [2, 3],
      );
      assert.equal((await deadLetters.get(dead!.id)).status, 'discarded');
      await forget(name, subscription);
    });

    it('dead-letters what it cannot read at once, with the reason, holding back what follows of its application', async () => {
      const { name, consumer, subscription } = await startConsumer();
      const eventOf = (applicationId: string, streamVersion: number) =>
        toEventMessage({
          ...sampleEvent('TestHappened', { n: streamVersion }),
          position: streamVersion,
          streamId: `application-${applicationId}`,
          streamVersion,
          schemaVersion: 1,
          recordedAt: new Date(),
        });
      const [unknownType, unknownVersion, invalid] = [randomUUID(), randomUUID(), randomUUID()];
      const cases: [unknown, boolean, string, string | null][] = [
        ['{"not json', false, 'MALFORMED', null],
        [{ hello: 'world' }, true, 'MALFORMED', null],
        [{ ...eventOf(unknownType, 1), type: 'SomethingElse' }, true, 'UNKNOWN_TYPE', unknownType],
        [{ ...eventOf(unknownVersion, 1), schemaVersion: 9 }, true, 'UNKNOWN_VERSION', unknownVersion],
        [{ ...eventOf(invalid, 1), data: { n: 'one' } }, true, 'INVALID', invalid],
      ];
      for (const [body, bodyIsJson] of cases) await consumer.deliver({ messageId: undefined, headers: {}, body, bodyIsJson, redelivered: false });
      const deadLetters = createDeadLetters(fixture.database.client);
      const dead = (await deadLetters.list({ consumer: name })).reverse();
      assert.deepEqual(
        dead.map((d) => [d.reason, d.partitionKey, d.attempts]),
        cases.map(([, , reason, key]) => [reason, key, 1]),
      );
      // The next event of the application whose event had a version the consumer does not know waits behind it.
      await consumer.deliver({ messageId: undefined, headers: {}, body: eventOf(unknownVersion, 2), bodyIsJson: true, redelivered: false });
      assert.equal((await deadLetters.get(dead[3]!.id)).parked, 1);
      assert.deepEqual(await handled(name), []);
      await forget(name, subscription);
    });
  });
}
