import { mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { buildServer } from '../api/server.ts';
import type { Config } from '../config.ts';
import { defaultRateTable } from '../domain/rates.ts';
import { migrate } from '../eventstore/migrate.ts';
import { createPgliteClient } from '../eventstore/pglite.ts';
import { createPostgresClient } from '../eventstore/postgres.ts';
import type { SqlClient } from '../eventstore/sql-client.ts';
import { SqlEventStore } from '../eventstore/store.ts';
import { registerEventSchemas } from '../eventstore/schema-registry.ts';
import type { Bus, Subscription } from '../messaging/bus.ts';
import { createConsumer, type ConsumerDefinition } from '../messaging/consumer.ts';
import { createDeadLetters } from '../messaging/dead-letters.ts';
import { createInProcessBus } from '../messaging/in-process-bus.ts';
import { createRabbitMqBus } from '../messaging/rabbitmq-bus.ts';
import { startOutboxRelay, type OutboxRelay } from '../messaging/relay.ts';
import { applicationEventHistory } from '../services/application/events.ts';
import { createApplicationService } from '../services/application/service.ts';

export type Platform = {
  readonly server: FastifyInstance;
  readonly database: string;
  readonly bus: string;
  readonly relay: OutboxRelay;
  readonly close: () => Promise<void>;
};

/** The composition root: builds every adapter once from the configuration and wires them. */
export async function openPlatform(
  config: Config,
  logger: FastifyBaseLogger | false,
  consumers: readonly ConsumerDefinition[] = [],
): Promise<Platform> {
  const reportError = (what: string) => (error: unknown) => {
    if (logger) logger.warn({ err: error }, what);
  };
  let client: SqlClient;
  let database: string;
  // PGlite has one connection: a second write in flight would only wait in its queue.
  let writeConcurrency = 1;
  if (config.databaseUrl) {
    client = createPostgresClient({ connectionString: config.databaseUrl, maxConnections: config.databasePoolSize });
    database = 'PostgreSQL';
    writeConcurrency = Math.min(config.databaseWriteConcurrency, config.databasePoolSize);
  } else {
    const folder = join(config.dataDir, 'pglite');
    await mkdir(folder, { recursive: true });
    client = await createPgliteClient(folder);
    database = `PGlite in ${folder}`;
  }
  let bus: Bus;
  try {
    await migrate(client);
    await registerEventSchemas(client, applicationEventHistory);
    bus = config.amqpUrl
      ? await createRabbitMqBus({ url: config.amqpUrl, onError: reportError('RabbitMQ') })
      : createInProcessBus();
  } catch (error) {
    await client.close();
    throw error;
  }
  const store = new SqlEventStore(client, { maxConcurrentWrites: writeConcurrency });
  const applications = createApplicationService({
    store,
    clock: () => new Date(),
    newId: randomUUID,
    rateTable: () => defaultRateTable,
  });
  const relay = startOutboxRelay({ client, store, bus, onError: reportError('the outbox relay is waiting to publish') });
  store.onAppend(relay.wake);
  const subscriptions: Subscription[] = [];
  for (const definition of consumers) {
    const consumer = createConsumer(definition, {
      client,
      maxAttempts: config.consumerMaxAttempts,
      onError: reportError(`consumer ${definition.name}`),
    });
    subscriptions.push(await consumer.start(bus));
  }
  const server = await buildServer({
    applications,
    deadLetters: createDeadLetters(client),
    checkReady: async () => {
      await client.query('SELECT 1');
    },
    logger,
  });
  return {
    server,
    database,
    bus: config.amqpUrl ? 'RabbitMQ' : 'the in-process bus',
    relay,
    close: async () => {
      // Stop taking requests, finish the messages in hand, then let go of the store.
      await server.close();
      await Promise.all(subscriptions.map((subscription) => subscription.close()));
      await relay.stop();
      await bus.close();
      await store.close();
    },
  };
}
