import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describeBusFaults } from './faults.contract.ts';
import { openVirtualHost } from './testing.ts';

const run = promisify(execFile);

// The in-process bus lives in each node, on PostgreSQL (the one database a proxy can cut).
describeBusFaults('in-process bus, on PostgreSQL', async () => ({ amqpUrl: '', dispose: async () => undefined }));

describeBusFaults('RabbitMQ, on PostgreSQL', async () => {
  const vhost = await openVirtualHost();
  return {
    amqpUrl: vhost.url,
    restartBroker: async () => {
      await run('rabbitmqctl', ['stop_app']);
      try {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      } finally {
        await run('rabbitmqctl', ['start_app']);
        await run('rabbitmqctl', ['await_startup']);
      }
    },
    dispose: vhost.dispose,
  };
});
