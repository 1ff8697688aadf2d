import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMutuo, type MutuoProcess } from './processes.ts';
import { openTestPostgres } from '../../src/platform/sql/testing.ts';
import { openTestTopic, openVirtualHost, testKafkaBrokers } from '../../src/platform/messaging/testing.ts';
import { describeFlow } from './flow.contract.ts';
import { startSmtpSink } from '../../src/features/notification/smtp-sink.ts';
import { testRedisUrl } from '../../src/platform/redis.fixture.ts';

/** A broker of the run's own, by the environment that names it to the services' processes. */
const brokers = [
  {
    name: 'RabbitMQ',
    open: async () => {
      const vhost = await openVirtualHost();
      return { env: { AMQP_URL: vhost.url, KAFKA_BROKERS: '' }, dispose: vhost.dispose };
    },
  },
  {
    name: 'Apache Kafka',
    open: async () => {
      const topic = await openTestTopic();
      return { env: { KAFKA_BROKERS: testKafkaBrokers.join(','), KAFKA_TOPIC: topic.topic, AMQP_URL: '' }, dispose: topic.dispose };
    },
  },
];

/**
 * Each service in its own process, as a bank would run them: five `mutuo <service>`
 * processes on one PostgreSQL database and one broker, talking only through it, with
 * the simulated mainframe and the two bureaus as processes of their own, the sent-email
 * ledger in Redis, and the emails caught by the test's SMTP server.
 */
for (const { name: brokerName, open: openBroker } of brokers) {
  describeFlow(
    `each service in its own process, on PostgreSQL and ${brokerName}`,
    async () => {
      const database = await openTestPostgres(4);
      const broker = await openBroker();
      const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-flow-'));
      const smtp = await startSmtpSink({ keepMessages: 100_000 });
      const processes: MutuoProcess[] = [];
      const start = async (args: string[], env: Record<string, string> = {}) => {
        const started = await startMutuo(args, { MUTUO_DATA_DIR: dataDir, ...env });
        processes.push(started);
        return started;
      };
      const stopAll = async () => {
        await Promise.all(processes.map((p) => p.stop()));
      };
      try {
        const [mainframe, crif, experian] = await Promise.all([
          // Failures at random on top of the sandbox's: a bureau answers 503 one time in ten, the mainframe swallows one request in twenty.
          start(['mainframe'], { MAINFRAME_PORT: '0', MAINFRAME_TIMEOUT_RATE: '0.05' }),
          start(['bureau', 'crif'], { BUREAU_PORT: '0', BUREAU_ERROR_RATE: '0.1' }),
          start(['bureau', 'experian'], { BUREAU_PORT: '0', BUREAU_ERROR_RATE: '0.1' }),
        ]);
        const shared = {
          DATABASE_URL: database.connectionString!,
          ...broker.env,
          DATABASE_POOL_SIZE: '10',
          MAINFRAME_URL: mainframe.address,
          BUREAU_CRIF_URL: crif.address,
          BUREAU_EXPERIAN_URL: experian.address,
          BUREAU_TIMEOUT_MS: '200',
          MAINFRAME_TIMEOUT_MS: '300',
          // Long enough for a check that met two failing bureaus to be tried again.
          SCORING_DEADLINE_MS: '3000',
          SMTP_URL: smtp.url,
          // The sent-email ledger in Redis, as a bank would run it.
          REDIS_URL: testRedisUrl,
        };
        const [application, documents, notification, , bankGateway, query] = await Promise.all(
          ['application', 'documents', 'notification', 'scoring', 'bank-gateway', 'query', 'projector'].map((service) => start([service], shared)),
        );
        const running = { 'bank-gateway': bankGateway! };
        return {
          applicationUrl: application!.address,
          documentsUrl: documents!.address,
          notificationUrl: notification!.address,
          queryUrl: query!.address,
          database: database.client,
          mails: () => smtp.messages(),
          stopService: async (name) => {
            await running[name].stop();
            return async () => {
              running[name] = await start([name], shared);
            };
          },
          close: async () => {
            await stopAll();
            await smtp.close();
            await Promise.all([database.dispose(), broker.dispose(), rm(dataDir, { recursive: true, force: true })]);
          },
        };
      } catch (error) {
        await stopAll();
        await smtp.close();
        await Promise.all([database.dispose(), broker.dispose(), rm(dataDir, { recursive: true, force: true })]);
        throw error;
      }
    },
    { crowd: 200, randomFailures: true, processes: true },
  );
}
