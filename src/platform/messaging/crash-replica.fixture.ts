/**
 * A consumer replica for the tests, run as its own process: it handles one message,
 * commits, prints the event id and kills itself before the broker gets the ack.
 * Environment: DATABASE_URL (schema-scoped), CONSUMER, and the broker: AMQP_URL, or
 * KAFKA_BROKERS and KAFKA_TOPIC.
 */
import { createPostgresClient } from '../sql/postgres.ts';
import { createConsumer } from './consumer.ts';
import { TestHappened, testConsumer, testConsumerOptions } from './messaging.contract.ts';
import { brokerBusFromEnvironment } from './testing.ts';

const client = createPostgresClient({ connectionString: process.env.DATABASE_URL!, maxConnections: 2 });
const consumer = createConsumer(
  testConsumer(process.env.CONSUMER!, async (event, session) => {
    await session.tx.query(`INSERT INTO replica_handled (event_id, replica) VALUES ($1, 'doomed')`, [event.eventId]);
  }),
  testConsumerOptions(client),
);
const bus = await brokerBusFromEnvironment(process.env);
if (!bus) throw new Error('set AMQP_URL, or KAFKA_BROKERS and KAFKA_TOPIC');
await bus.subscribe({
  consumer: consumer.name,
  eventTypes: [TestHappened.type],
  deliver: async ([message]) => {
    await consumer.deliver(message!);
    // Committed, not yet acknowledged: the worst moment to die.
    process.stdout.write(`committed ${(message!.body as { eventId: string }).eventId}\n`);
    process.kill(process.pid, 'SIGKILL');
  },
});
process.stdout.write('ready\n');
