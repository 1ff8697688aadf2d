import { openTestPostgres } from '../sql/testing.ts';
import { createKafkaBus } from './kafka-bus.ts';
import { describeMessaging } from './messaging.contract.ts';
import { describeReplicas } from './replicas.contract.ts';
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

// Each replica is a member of the consumer's group: they share the topic's partitions.
describeReplicas('Apache Kafka', async () => {
  const topic = await openTestTopic();
  return {
    openBus: () => createKafkaBus({ brokers: testKafkaBrokers, topic: topic.topic }),
    childEnv: { KAFKA_BROKERS: testKafkaBrokers.join(','), KAFKA_TOPIC: topic.topic },
    forgetConsumer: topic.forgetConsumer,
    dispose: topic.dispose,
  };
});
