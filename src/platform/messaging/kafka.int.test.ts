import { openTestPostgres } from '../sql/testing.ts';
import { createKafkaBus } from './kafka-bus.ts';
import { describeMessaging } from './messaging.contract.ts';
import { openTestTopic, testKafkaBrokers } from './testing.ts';

describeMessaging('Apache Kafka on PostgreSQL', async () => {
  const database = await openTestPostgres();
  const topic = await openTestTopic();
  const bus = await createKafkaBus({ brokers: testKafkaBrokers, topic: topic.topic });
  return {
    database,
    bus,
    forgetConsumer: topic.forgetConsumer,
    dispose: async () => {
      await bus.close();
      await topic.dispose();
      await database.dispose();
    },
  };
});
