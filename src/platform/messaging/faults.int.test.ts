import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describeBusFaults } from './faults.contract.ts';
import { openTestTopic, openVirtualHost, testKafkaBrokers } from './testing.ts';

const run = promisify(execFile);

// The in-process bus lives in each node, on PostgreSQL (the one database a proxy can cut).
describeBusFaults('in-process bus, on PostgreSQL', async () => ({ dispose: async () => undefined }));

describeBusFaults('RabbitMQ, on PostgreSQL', async () => {
  const vhost = await openVirtualHost();
  return {
    broker: {
      env: { AMQP_URL: vhost.url },
      restart: async () => {
        await run('rabbitmqctl', ['stop_app']);
        try {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        } finally {
          await run('rabbitmqctl', ['start_app']);
          await run('rabbitmqctl', ['await_startup']);
        }
      },
    },
    dispose: vhost.dispose,
  };
});

describeBusFaults('Apache Kafka, on PostgreSQL', async () => {
  const topic = await openTestTopic();
  return {
    broker: {
      env: { KAFKA_BROKERS: testKafkaBrokers.join(','), KAFKA_TOPIC: topic.topic },
      // The local broker (npm run kafka), stopped and started again on its storage.
      restart: async () => {
        await run('bash', ['scripts/kafka.sh', 'restart'], { cwd: new URL('../../../', import.meta.url) });
      },
    },
    dispose: topic.dispose,
  };
});
