import { createRabbitMqBus } from './rabbitmq-bus.ts';
import { describeReplicas } from './replicas.contract.ts';
import { deleteConsumerTopology, testAmqpUrl } from './testing.ts';

describeReplicas('RabbitMQ', async () => ({
  openBus: () => createRabbitMqBus({ url: testAmqpUrl, prefetch: 32 }),
  childEnv: { AMQP_URL: testAmqpUrl },
  forgetConsumer: (name) => deleteConsumerTopology(name),
  dispose: async () => undefined,
}));
