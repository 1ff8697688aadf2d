import { openTestPostgres } from '../sql/testing.ts';
import { describeMessaging } from './messaging.contract.ts';
import { createRabbitMqBus } from './rabbitmq-bus.ts';
import { deleteConsumerTopology, testAmqpUrl } from './testing.ts';

describeMessaging('RabbitMQ on PostgreSQL', async () => {
  const database = await openTestPostgres();
  const bus = await createRabbitMqBus({ url: testAmqpUrl });
  return {
    database,
    bus,
    forgetConsumer: (name) => deleteConsumerTopology(name),
    dispose: async () => {
      await bus.close();
      await database.dispose();
    },
  };
});
