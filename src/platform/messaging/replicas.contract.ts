import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { storedLog, type SqlEventStore } from '../eventstore/store.ts';
import { sealingStore } from '../eventstore/testing.ts';
import { openTestPostgres, sampleEvent, type TestDatabase } from '../sql/testing.ts';
import type { Bus } from './bus.ts';
import { createConsumer } from './consumer.ts';
import { TestHappened, testConsumer, testConsumerOptions, waitUntil } from './messaging.contract.ts';
import { startOutboxRelay, type OutboxRelay } from './relay.ts';

export type ReplicasFixture = {
  /** A bus of its own for each replica, as each replica process has: the relay's, and each consumer's. */
  readonly openBus: () => Promise<Bus>;
  /** What names the broker to a child process (crash-replica.fixture.ts). */
  readonly childEnv: Readonly<Record<string, string>>;
  /** Removes what the broker keeps for a consumer a test is done with. */
  readonly forgetConsumer: (name: string) => Promise<void>;
  readonly dispose: () => Promise<void>;
};

/** A broker's promise to a consumer with several replicas, written once and run against each broker's bus. */
export function describeReplicas(adapter: string, open: () => Promise<ReplicasFixture>): void {
  describe(`${adapter} consumers with several replicas`, () => {
    let fixture: ReplicasFixture;
    let database: TestDatabase;
    let store: SqlEventStore;
    let relay: OutboxRelay;
    const consumers: string[] = [];
    const buses: Bus[] = [];

    before(async () => {
      database = await openTestPostgres(30);
      store = sealingStore(database.client);
      await database.client.exec(`
        CREATE TABLE replica_handled (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id uuid NOT NULL,
          replica text NOT NULL, partition_key text, stream_version integer)`);
      fixture = await open();
      const relayBus = await fixture.openBus();
      buses.push(relayBus);
      relay = startOutboxRelay({ client: database.client, store: storedLog(database.client), bus: relayBus, idleMs: 10 });
    });
    after(async () => {
      await relay?.stop();
      await Promise.all(buses.map((bus) => bus.close().catch(() => undefined)));
      for (const name of consumers) await fixture.forgetConsumer(name);
      await fixture?.dispose();
      await database?.dispose();
    });

    async function replica(consumer: string, replicaName: string, options: { delivered?: string[]; handlerDelayMs?: number } = {}) {
      const bus = await fixture.openBus();
      buses.push(bus);
      const runtime = createConsumer(
        testConsumer(consumer, async (event, session) => {
          if (options.handlerDelayMs) await new Promise((resolve) => setTimeout(resolve, options.handlerDelayMs));
          await session.tx.query('INSERT INTO replica_handled (event_id, replica, partition_key, stream_version) VALUES ($1, $2, $3, $4)', [
            event.eventId,
            replicaName,
            event.partitionKey,
            event.streamVersion,
          ]);
        }),
        testConsumerOptions(database.client),
      );
      const subscription = await bus.subscribe({
        consumer,
        eventTypes: [TestHappened.type],
        deliver: async (messages) => {
          for (const message of messages) options.delivered?.push((message.body as { eventId: string }).eventId);
          await runtime.deliverBatch(messages);
        },
      });
      return { bus, subscription };
    }

    const handledBy = (replicas: readonly string[]) =>
      database.client.query<{ event_id: string; partition_key: string; stream_version: number; replica: string }>(
        'SELECT event_id::text AS event_id, partition_key, stream_version, replica FROM replica_handled WHERE replica = ANY($1) ORDER BY seq',
        [replicas],
      );

    /** Each application's events were handled once each, in version order, by more than one replica. */
    async function assertHandledInOrder(replicas: readonly string[], applications: number, versions: number) {
      const rows = await handledBy(replicas);
      assert.equal(rows.length, applications * versions);
      assert.equal(new Set(rows.map((row) => row.event_id)).size, rows.length, 'no event had its effect twice');
      const seen = new Map<string, number[]>();
      for (const row of rows) seen.set(row.partition_key, [...(seen.get(row.partition_key) ?? []), row.stream_version]);
      assert.equal(seen.size, applications);
      const expected = Array.from({ length: versions }, (_, index) => index + 1);
      for (const [id, handled] of seen) assert.deepEqual(handled, expected, id);
      assert.ok(new Set(rows.map((row) => row.replica)).size >= 2, 'more than one replica handled events');
    }

    /** Appends `versions` events to each application, one version at a time, calling `between` after each; resolves once all are published. */
    async function appendInRounds(applications: readonly string[], versions: number, between: (version: number) => Promise<void>) {
      let last = 0;
      for (let version = 1; version <= versions; version++) {
        const results = await Promise.all(
          applications.map((id) => store.appendToStream(`application-${id}`, [sampleEvent('TestHappened', { n: version })], version - 1 || 'no_stream')),
        );
        last = Math.max(last, ...results.map((result) => result.lastPosition));
        await between(version);
      }
      await relay.published(last);
    }

    it('keeps each application in order across 3 replicas, 500 applications × 10 events, through a failover', async () => {
      const consumer = `order-${randomUUID().slice(0, 8)}`;
      consumers.push(consumer);
      const delivered: string[] = [];
      const replicas = [
        await replica(consumer, 'r1', { delivered }),
        await replica(consumer, 'r2', { delivered }),
        await replica(consumer, 'r3', { delivered }),
      ];
      const applications = Array.from({ length: 500 }, () => randomUUID());
      await appendInRounds(applications, 10, async (version) => {
        // Halfway, the first replica goes away: the others take over.
        if (version === 5) await replicas[0]!.subscription.close();
      });
      await waitUntil(async () => (await handledBy(['r1', 'r2', 'r3'])).length >= 5000, 'all 5000 events are handled', 120_000);
      await assertHandledInOrder(['r1', 'r2', 'r3'], 500, 10);
      // Each message reached one replica at a time: deliveries are the events plus at most the few redelivered at failover.
      assert.ok(delivered.length >= 5000 && delivered.length < 5000 + 16 * 64, `${delivered.length} deliveries`);
    });

    it('keeps each application in order, and every effect single, while a replica joins and another leaves', async () => {
      const consumer = `rebalance-${randomUUID().slice(0, 8)}`;
      consumers.push(consumer);
      // Slow handlers, so that batches are in hand when the replicas come and go.
      const slow = { handlerDelayMs: 2 };
      const first = await replica(consumer, 'j1', slow);
      await replica(consumer, 'j2', slow);
      const applications = Array.from({ length: 200 }, () => randomUUID());
      await appendInRounds(applications, 10, async (version) => {
        if (version === 3) await replica(consumer, 'j3', slow);
        if (version === 6) await first.subscription.close();
        await new Promise((resolve) => setTimeout(resolve, 200));
      });
      await waitUntil(async () => (await handledBy(['j1', 'j2', 'j3'])).length >= 2000, 'all 2000 events are handled', 120_000);
      await assertHandledInOrder(['j1', 'j2', 'j3'], 200, 10);
    });

    it('has no second effect when a replica dies after its commit and before its acknowledgement', async () => {
      const consumer = `crash-${randomUUID().slice(0, 8)}`;
      consumers.push(consumer);
      const doomed = spawn(process.execPath, ['--import', 'tsx', 'src/platform/messaging/crash-replica.fixture.ts'], {
        cwd: new URL('../../../', import.meta.url),
        env: { ...process.env, DATABASE_URL: database.connectionString, AMQP_URL: '', KAFKA_BROKERS: '', ...fixture.childEnv, CONSUMER: consumer },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let output = '';
      doomed.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => doomed.once('exit', (code) => resolve(code)));
      await waitUntil(async () => output.includes('ready'), 'the doomed replica is consuming', 60_000);

      const delivered: string[] = [];
      await replica(consumer, 'survivor', { delivered });
      const applications = Array.from({ length: 20 }, () => randomUUID());
      const results = await Promise.all(
        applications.map((id) => store.appendToStream(`application-${id}`, [sampleEvent('TestHappened', { n: 1 })], 'no_stream')),
      );
      await relay.published(Math.max(...results.map((result) => result.lastPosition)));
      await exited;
      const committed = [...output.matchAll(/committed ([0-9a-f-]{36})/g)].map((match) => match[1]!);
      assert.ok(committed.length >= 1, 'the doomed replica committed before it died');

      // On Kafka, the survivor is handed the dead replica's partitions once its session times out.
      await waitUntil(async () => (await handledBy(['doomed', 'survivor'])).length >= 20, 'every event is handled once', 60_000);
      // Let redeliveries settle, then look again: still one effect per event.
      await waitUntil(async () => committed.every((id) => delivered.includes(id)), 'the survivor got the unacknowledged messages again', 60_000);
      const rows = await handledBy(['doomed', 'survivor']);
      assert.equal(rows.length, 20);
      assert.equal(new Set(rows.map((row) => row.event_id)).size, 20);
      for (const id of committed) assert.equal(rows.find((row) => row.event_id === id)?.replica, 'doomed');
    });
  });
}
