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
import { createRabbitMqBus } from './rabbitmq-bus.ts';
import { startOutboxRelay, type OutboxRelay } from './relay.ts';
import { deleteConsumerTopology, testAmqpUrl } from './testing.ts';

describe('RabbitMQ consumers with several replicas', () => {
  let database: TestDatabase;
  let store: SqlEventStore;
  let relayBus: Bus;
  let relay: OutboxRelay;
  const consumers: string[] = [];
  const buses: Bus[] = [];

  before(async () => {
    database = await openTestPostgres(30);
    store = sealingStore(database.client);
    await database.client.exec(`
      CREATE TABLE replica_handled (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id uuid NOT NULL,
        replica text NOT NULL, partition_key text, stream_version integer)`);
    relayBus = await createRabbitMqBus({ url: testAmqpUrl });
    relay = startOutboxRelay({ client: database.client, store: storedLog(database.client), bus: relayBus, idleMs: 10 });
  });
  after(async () => {
    await relay.stop();
    await Promise.all([relayBus, ...buses].map((bus) => bus.close().catch(() => undefined)));
    for (const name of consumers) await deleteConsumerTopology(name);
    await database.dispose();
  });

  async function replica(consumer: string, replicaName: string, delivered?: string[]) {
    const bus = await createRabbitMqBus({ url: testAmqpUrl, prefetch: 32 });
    buses.push(bus);
    const runtime = createConsumer(
      testConsumer(consumer, async (event, session) => {
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
        for (const message of messages) delivered?.push((message.body as { eventId: string }).eventId);
        await runtime.deliverBatch(messages);
      },
    });
    return { bus, subscription };
  }

  it('keeps each application in order across 3 replicas, 500 applications × 10 events, through a failover', async () => {
    const consumer = `order-${randomUUID().slice(0, 8)}`;
    consumers.push(consumer);
    const delivered: string[] = [];
    const replicas = [await replica(consumer, 'r1', delivered), await replica(consumer, 'r2', delivered), await replica(consumer, 'r3', delivered)];
    const applications = Array.from({ length: 500 }, () => randomUUID());
    let last = 0;
    for (let version = 1; version <= 10; version++) {
      const results = await Promise.all(
        applications.map((id) => store.appendToStream(`application-${id}`, [sampleEvent('TestHappened', { n: version })], version - 1 || 'no_stream')),
      );
      last = Math.max(last, ...results.map((r) => r.lastPosition));
      // Halfway, the replica that is active everywhere goes away: the others take over.
      if (version === 5) await replicas[0]!.subscription.close();
    }
    await relay.published(last);
    const count = async () =>
      Number(
        (
          await database.client.query<{ n: string }>('SELECT count(*) AS n FROM replica_handled WHERE partition_key IS NOT NULL AND replica IN ($1, $2, $3)', [
            'r1',
            'r2',
            'r3',
          ])
        )[0]!.n,
      );
    await waitUntil(async () => (await count()) >= 5000, 'all 5000 events are handled', 120_000);
    const rows = await database.client.query<{ partition_key: string; stream_version: number; replica: string }>(
      'SELECT partition_key, stream_version, replica FROM replica_handled WHERE replica IN ($1, $2, $3) ORDER BY seq',
      ['r1', 'r2', 'r3'],
    );
    assert.equal(rows.length, 5000);
    const versions = new Map<string, number[]>();
    for (const row of rows) versions.set(row.partition_key, [...(versions.get(row.partition_key) ?? []), row.stream_version]);
    assert.equal(versions.size, 500);
    for (const [id, seen] of versions) assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], id);
    // Each message reached one partition queue: deliveries are the events plus at most the few redelivered at failover.
    assert.ok(delivered.length >= 5000 && delivered.length < 5000 + 16 * 32, `${delivered.length} deliveries`);
    assert.ok(new Set(rows.map((r) => r.replica)).size >= 2, 'more than one replica handled events');
  });

  it('has no second effect when a replica dies after its commit and before its ack', async () => {
    const consumer = `crash-${randomUUID().slice(0, 8)}`;
    consumers.push(consumer);
    const doomed = spawn(process.execPath, ['--import', 'tsx', 'src/platform/messaging/crash-replica.fixture.ts'], {
      cwd: new URL('../../../', import.meta.url),
      env: { ...process.env, DATABASE_URL: database.connectionString, AMQP_URL: testAmqpUrl, CONSUMER: consumer },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    doomed.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => doomed.once('exit', (code) => resolve(code)));
    await waitUntil(async () => output.includes('ready'), 'the doomed replica is consuming', 60_000);

    const redelivered: string[] = [];
    await replica(consumer, 'survivor', redelivered);
    const applications = Array.from({ length: 20 }, () => randomUUID());
    const results = await Promise.all(
      applications.map((id) => store.appendToStream(`application-${id}`, [sampleEvent('TestHappened', { n: 1 })], 'no_stream')),
    );
    await relay.published(Math.max(...results.map((r) => r.lastPosition)));
    await exited;
    const committed = [...output.matchAll(/committed ([0-9a-f-]{36})/g)].map((match) => match[1]!);
    assert.ok(committed.length >= 1, 'the doomed replica committed before it died');

    const eventIds = new Set(results.map((r) => r.firstPosition));
    assert.equal(eventIds.size, 20);
    const handled = async () =>
      database.client.query<{ event_id: string; replica: string }>(
        `SELECT event_id::text AS event_id, replica FROM replica_handled WHERE replica IN ('doomed', 'survivor')`,
      );
    await waitUntil(async () => (await handled()).length >= 20, 'every event is handled once', 60_000);
    // Let redeliveries settle, then look again: still one effect per event.
    await waitUntil(async () => committed.every((id) => redelivered.includes(id)), 'the survivor got the unacknowledged messages again', 60_000);
    const rows = await handled();
    assert.equal(rows.length, 20);
    assert.equal(new Set(rows.map((r) => r.event_id)).size, 20);
    for (const id of committed) assert.equal(rows.find((r) => r.event_id === id)?.replica, 'doomed');
  });
});
