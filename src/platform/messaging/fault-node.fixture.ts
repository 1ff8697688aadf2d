/**
 * A node of the bus fault suite, run as its own process as the platform's are: the outbox
 * relay and a consumer on one bus (RabbitMQ when AMQP_URL is set, Apache Kafka when
 * KAFKA_BROKERS is, else the in-process bus, which then lives and dies with this process).
 * What its handler does to an application is read from the database (`fault_behaviour`),
 * so that a test can make a message fail, or end the process, and heal it, without
 * touching the node.
 *
 * Environment: DATABASE_URL (schema-scoped, perhaps through a proxy the test cuts), the
 * broker (AMQP_URL, or KAFKA_BROKERS and KAFKA_TOPIC), ROLE (relay | consumer | both),
 * CONSUMER, NODE_NAME, KNOWS_V2 (1: the node reads FaultProbe v2), CONSUMER_START_DELAY_MS
 * (how long after the relay the consumer subscribes), HANDLER_DELAY_MS, RELAY_LEASE_MS.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createEventCatalog } from '../eventstore/event-catalog.ts';
import { storedLog } from '../eventstore/store.ts';
import { testSessions } from '../eventstore/testing.ts';
import { createPostgresClient } from '../sql/postgres.ts';
import type { Bus } from './bus.ts';
import { createConsumer, defineConsumer } from './consumer.ts';
import { FaultProbe, FaultProbeV2, faultConsumerOptions } from './faults.contract.ts';
import { createInProcessBus } from './in-process-bus.ts';
import { startOutboxRelay } from './relay.ts';
import { brokerBusFromEnvironment } from './testing.ts';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] || fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const role = env('ROLE', 'both');
const consumerName = env('CONSUMER');
const nodeName = env('NODE_NAME', `node-${process.pid}`);
const knowsV2 = env('KNOWS_V2', '0') === '1';
const handlerDelayMs = Number(env('HANDLER_DELAY_MS', '0'));
const log = (line: string) => process.stdout.write(`${line}\n`);
/** Errors are expected under faults; they are printed for a failing case to show. */
const logError = (where: string) => (error: unknown) => log(`${where}: ${error instanceof Error ? error.message : String(error)}`);

const client = createPostgresClient({ connectionString: env('DATABASE_URL'), maxConnections: 6 });
const underlying: Bus = (await brokerBusFromEnvironment(process.env, logError('bus'))) ?? createInProcessBus();
/** The bus, saying what goes through it: a failing case prints it. */
const bus: Bus = {
  ...underlying,
  publish: async (messages, options) => {
    log(`publish ${messages.length}${options?.republished ? ' republished' : ''}`);
    await underlying.publish(messages, options);
    log(`published ${messages.length}`);
  },
  subscribe: (subscription) =>
    underlying.subscribe({
      ...subscription,
      deliver: async (messages) => {
        log(`deliver ${messages.length}${messages.some((message) => message.redelivered) ? ' redelivered' : ''}`);
        await subscription.deliver(messages);
      },
    }),
};
const definitions = knowsV2 ? ([FaultProbe, FaultProbeV2] as const) : ([FaultProbe] as const);
const eventTypes = [FaultProbe.type];

const relay =
  role === 'consumer'
    ? undefined
    : startOutboxRelay({
        client,
        store: storedLog(client),
        bus,
        consumers: [{ consumer: consumerName, eventTypes }],
        idleMs: 20,
        leaseMs: Number(env('RELAY_LEASE_MS', '2000')),
        onError: logError('relay'),
      });

const consumer = createConsumer(
  defineConsumer({
    name: consumerName,
    events: [definitions.at(-1)!],
    async handle(event, session) {
      const [behaviour] = await session.tx.query<{ action: string }>(
        'SELECT action FROM fault_behaviour WHERE partition_key = $1 AND (stream_version IS NULL OR stream_version = $2)',
        [event.partitionKey, event.streamVersion],
      );
      if (behaviour?.action === 'exit') {
        log(`exiting in the handler of ${event.eventId}`);
        process.exit(3);
      }
      if (behaviour?.action === 'fail') throw new Error(`the handler fails on version ${event.streamVersion} of ${event.partitionKey}`);
      if (handlerDelayMs > 0) await sleep(handlerDelayMs);
      await session.tx.query('INSERT INTO fault_effects (consumer, partition_key, event_id, stream_version, node) VALUES ($1, $2, $3, $4, $5)', [
        consumerName,
        event.partitionKey,
        event.eventId,
        event.streamVersion,
        nodeName,
      ]);
    },
  }),
  { ...faultConsumerOptions, client, sessions: testSessions(client), catalog: createEventCatalog(definitions), onError: logError('consumer') },
);

let subscription: Awaited<ReturnType<typeof consumer.start>> | undefined;
if (role !== 'relay') {
  await sleep(Number(env('CONSUMER_START_DELAY_MS', '0')));
  subscription = await consumer.start(bus);
}
log(`ready ${nodeName}`);

process.on('SIGTERM', () => {
  void (async () => {
    await subscription?.close();
    await Promise.all([relay?.stop(), bus.close()]);
    await client.close();
    process.exit(0);
  })();
});
