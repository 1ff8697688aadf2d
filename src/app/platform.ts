import { mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { metricsRoutes, startMetricsServer, type MetricsServer } from '../platform/http/metrics.ts';
import { buildServer } from '../platform/http/server.ts';
import { authenticationRoutes, openAuthentication, type Authentication } from '../security/authentication.ts';
import { checkOutsideSystems, type BrokerConfig, type Config } from './config.ts';
import { migrate } from '../platform/sql/migrate.ts';
import { createPostgresClient } from '../platform/sql/postgres.ts';
import type { SqlClient } from '../platform/sql/sql-client.ts';
import { SqlEventStore, storedLog } from '../platform/eventstore/store.ts';
import { createUnitOfWork, eventsAppended } from '../platform/eventstore/session.ts';
import { registerEventSchemas } from '../platform/schemas/event-schemas.ts';
import { createAvroEventCodec, type AvroEventCodec } from '../platform/schemas/codec.ts';
import { sqlSchemaRegistry } from '../platform/schemas/registry.ts';
import { httpSchemaRegistry } from '../platform/schemas/registry-client.ts';
import { registryRoutes } from '../platform/schemas/registry-routes.ts';
import type { Bus, Subscription } from '../platform/messaging/bus.ts';
import { createConsumer, type ConsumerDefinition } from '../platform/messaging/consumer.ts';
import { deadLetterRoutes } from '../platform/messaging/dead-letter-routes.ts';
import { createDeadLetters } from '../platform/messaging/dead-letters.ts';
import { createInProcessBus } from '../platform/messaging/in-process-bus.ts';
import { createKafkaBus } from '../platform/messaging/kafka-bus.ts';
import { jobScheduled, startJobWorker, type JobWorker } from '../platform/messaging/jobs.ts';
import { createRabbitMqBus } from '../platform/messaging/rabbitmq-bus.ts';
import { startOutboxRelay, type OutboxRelay } from '../platform/messaging/relay.ts';
import { sqlSubjectKeys } from '../privacy/subject-keys.ts';
import { createPersonalDataVault } from '../privacy/vault.ts';
import { platformEventCatalog, platformEventHistory } from './catalog.ts';
import { memoryViewCache, redisViewCache, type ViewCache } from '../features/application/customer-view.ts';
import { redisErrors } from '../platform/redis-errors.ts';
import { consumerTopologies, serviceNames, services as serviceStarts, type ServiceName } from './services.ts';
import type { AppContext } from './context.ts';
import type { ServiceParts } from '../platform/service.ts';
import { migrationFolders } from './migrations.ts';
import { accessTable } from '../security/permissions.ts';
import { registerConsumers } from '../platform/messaging/lag.ts';
import { watchStalls, type StallWatch } from './stalls.ts';

export type Platform = {
  readonly server: FastifyInstance;
  /** Where the metrics are served when METRICS_PORT is set; otherwise they are on the server, at /metrics. */
  readonly metricsUrl: string | undefined;
  readonly database: string;
  readonly bus: string;
  readonly services: readonly ServiceName[];
  /** One line per service about its outside systems. */
  readonly descriptions: readonly string[];
  readonly client: SqlClient;
  /** The events in Avro, in Confluent's wire format, their schemas in the registry (Mutuo's own, or SCHEMA_REGISTRY_URL's): for a bus that carries Avro. */
  readonly avroCodec: AvroEventCodec;
  readonly relay: OutboxRelay;
  /**
   * Every follower, job worker and consumer looks for work now. Whoever moves the clock
   * given in PlatformOptions calls it: jobs may have fallen due that no commit woke anyone for.
   */
  readonly wake: () => void;
  readonly close: () => Promise<void>;
};

/**
 * How long the relay, the projector, the job workers and the consumers' look for dead-letter
 * requests wait on an embedded database when nothing woke them. Only this process can write
 * to it, and each of its commits (and each dead-letter request) wakes whoever has work from
 * it, so a look is only a safety net; each costs a query, and idle looks took about 9 % of
 * a core from the read path on a slow machine (23 queries a second at 1 s and 500 ms).
 */
const EMBEDDED_IDLE_POLL_MS = 10_000;

/** What the logs and the start-up line call each bus. */
const busNames = { rabbitmq: 'RabbitMQ', kafka: 'Apache Kafka' } as const;

async function openBus(broker: BrokerConfig | undefined, onError: (what: string) => (error: unknown) => void): Promise<Bus> {
  switch (broker?.kind) {
    case 'rabbitmq':
      return createRabbitMqBus({ url: broker.url, onError: onError(busNames.rabbitmq) });
    case 'kafka':
      return createKafkaBus({ brokers: broker.brokers, topic: broker.topic, partitions: broker.partitions, onError: onError(busNames.kafka) });
    case undefined:
      return createInProcessBus();
  }
}

/** The relay every process runs; they share its checkpoint and lease, and its lag is reported under this name. */
const relayName = 'outbox';

export type PlatformOptions = {
  /** The services this process runs (default: all of them). */
  readonly services?: readonly ServiceName[];
  /** More consumers, beside the services' own (tests). */
  readonly consumers?: readonly ConsumerDefinition[];
  readonly clock?: () => Date;
};

/**
 * The composition root: builds every adapter once from the configuration, starts the
 * chosen services and wires them to the store, the bus and one HTTP server. Every
 * process runs the outbox relay; relays share one lease, so one of them publishes
 * the events of every service at a time.
 */
export async function openPlatform(config: Config, logger: FastifyBaseLogger | false, options: PlatformOptions = {}): Promise<Platform> {
  const reportError = (what: string) => (error: unknown) => {
    if (logger) logger.warn({ err: error }, what);
  };
  const services = options.services ?? serviceNames;
  checkOutsideSystems(config, services);
  const clock = options.clock ?? (() => new Date());
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
    // Loaded only here: a process on PostgreSQL should not carry PostgreSQL-in-WASM in its memory.
    const { createPgliteClient } = await import('../platform/sql/pglite.ts');
    client = await createPgliteClient(folder);
    database = `PGlite in ${folder}`;
  }
  // A registry elsewhere takes the place of Mutuo's own: the schemas are registered and ids read there, and /registry is not served.
  const externalRegistry = config.schemaRegistryUrl ? httpSchemaRegistry({ url: config.schemaRegistryUrl }) : undefined;
  const ownRegistry = sqlSchemaRegistry(client);
  let bus: Bus;
  let avroCodec: AvroEventCodec;
  try {
    await migrate(client, migrationFolders);
    const { avroSchemaIds } = await registerEventSchemas(client, platformEventHistory, { avroRegistry: externalRegistry });
    avroCodec = createAvroEventCodec({ registry: externalRegistry ?? ownRegistry, definitions: platformEventHistory, schemaIds: avroSchemaIds });
    bus = await openBus(config.broker, reportError);
  } catch (error) {
    await client.close();
    throw error;
  }
  let authentication: Authentication;
  try {
    authentication = await openAuthentication(config.auth, client, {
      sharedDatabase: config.databaseUrl !== undefined,
      onError: reportError('reading the revoked tokens'),
    });
  } catch (error) {
    await bus.close();
    await client.close();
    throw error;
  }
  // Personal data is sealed in the events and on the bus: the store seals what it appends
  // and reveals what it reads; the relay publishes the stored (sealed) form, and each
  // consumer reveals what it receives.
  const personalData = createPersonalDataVault({
    keys: sqlSubjectKeys(client, { digestSecret: config.privacy.subjectDigestSecret }),
    definitions: platformEventHistory,
  });
  const store = new SqlEventStore(client, { maxConcurrentWrites: writeConcurrency, personalData });
  // PGlite belongs to this process alone: every commit is one of ours and wakes the
  // followers, whose looks are then only a safety net (they cost a query each, and idle
  // polling would take a share of the one process's CPU from the read path).
  const idlePollMs = config.databaseUrl ? undefined : EMBEDDED_IDLE_POLL_MS;
  // The relay declares the consumers before its first publish, so that none misses an event
  // published before it first started: on a broker, every consumer of the platform, wherever it
  // runs; on the in-process bus, this process's own, which are all there will ever be on it.
  const moreConsumers = (options.consumers ?? []).map((definition) => ({
    consumer: definition.name,
    eventTypes: definition.events.map((event) => event.type),
  }));
  const relay = startOutboxRelay({
    name: relayName,
    client,
    store: storedLog(client),
    bus,
    consumers: [...consumerTopologies(config.broker ? serviceNames : services), ...moreConsumers],
    onError: reportError('the outbox relay is waiting to publish'),
    ...(idlePollMs ? { idleMs: idlePollMs } : {}),
  });
  const workers: JobWorker[] = [];
  const started: ServiceParts[] = [];
  // New events: the relay publishes them, and the read side of this process follows them.
  const eventsCommitted = () => {
    relay.wake();
    for (const parts of started) parts.wake?.();
  };
  // Every commit but a command's (which the store batches, and which schedules no job) is a
  // session's: it wakes whoever it gave work to, the relay and the read side for its events,
  // the workers of the queues it scheduled jobs on.
  const sessions = createUnitOfWork({
    client,
    personalData,
    onCommit: (signals) => {
      if (signals.has(eventsAppended)) eventsCommitted();
      for (const worker of workers) if (signals.has(jobScheduled(worker.queue))) worker.wake();
    },
  });
  store.onAppend(eventsCommitted);

  // The customer view's hot copy: Redis when configured; else memory, but only where the
  // projector runs, because nothing would keep another process's memory up to date.
  const readsHere = services.includes('projector') || services.includes('query');
  let viewCache: ViewCache | undefined;
  try {
    viewCache =
      config.redisUrl && readsHere
        ? await redisViewCache(config.redisUrl, { errors: redisErrors(logger, 'view-cache') })
        : services.includes('projector')
          ? memoryViewCache()
          : undefined;
  } catch (error) {
    authentication.close();
    await relay.stop();
    await bus.close();
    await store.close();
    throw error;
  }
  const context: AppContext = { config, client, sessions, store, clock, newId: randomUUID, logger, idlePollMs, personalData, viewCache };
  const subscriptions: (Subscription & { readonly checkRequests: () => void })[] = [];
  let stalls: StallWatch | undefined;
  const stopAll = async () => {
    await stalls?.close();
    await Promise.all(subscriptions.map((subscription) => subscription.close()));
    await Promise.all(workers.map((worker) => worker.stop()));
    // Closing the bus ends a publish in hand (the in-process bus's waits for the consumers,
    // which are gone), so that the relay's stop does not wait for it.
    await Promise.all([relay.stop(), bus.close()]);
    for (const parts of started) await parts.close?.();
    await viewCache?.close();
    authentication.close();
    await store.close();
  };
  let server: FastifyInstance;
  let metricsServer: MetricsServer | undefined;
  try {
    for (const name of services) {
      started.push(await serviceStarts[name](context));
    }
    const consumers = [...started.flatMap((parts) => parts.consumers ?? []), ...(options.consumers ?? [])];
    // Their types, for their lag to be read from the database alone (mutuo status).
    await registerConsumers(
      client,
      consumers.map((definition) => ({ name: definition.name, eventTypes: definition.events.map((event) => event.type) })),
    );
    stalls = watchStalls({ config, client, logger, relay: relayName, consumers: consumers.map((definition) => definition.name) });
    for (const definition of consumers) {
      const consumer = createConsumer(definition, {
        client,
        sessions,
        catalog: platformEventCatalog,
        maxAttempts: config.consumerMaxAttempts,
        onError: reportError(`consumer ${definition.name}`),
        ...(idlePollMs ? { requestPollMs: idlePollMs } : {}),
      });
      subscriptions.push(await consumer.start(bus));
    }
    for (const job of started.flatMap((parts) => parts.jobs ?? [])) {
      workers.push(
        startJobWorker({
          client,
          sessions,
          queue: job.queue,
          handle: job.handle,
          clock,
          ...(idlePollMs ? { maxIdleMs: idlePollMs } : {}),
          ...(job.concurrency !== undefined ? { concurrency: job.concurrency } : {}),
          ...(job.leaseMs !== undefined ? { leaseMs: job.leaseMs } : {}),
          onError: reportError(`job ${job.queue}`),
        }),
      );
    }
    const deadLetters = createDeadLetters(client, {
      onRequest: () => {
        for (const subscription of subscriptions) subscription.checkRequests();
      },
    });
    server = await buildServer({
      routes: [
        ...started.flatMap((parts) => parts.routes ?? []),
        (app) => app.register(deadLetterRoutes, { deadLetters }),
        (app) => app.register(authenticationRoutes, authentication),
        ...(externalRegistry ? [] : [(app: FastifyInstance) => app.register(registryRoutes, { prefix: '/registry', registry: ownRegistry })]),
        ...(config.metrics ? [] : [metricsRoutes]),
      ],
      checkReady: async () => {
        await client.query('SELECT 1');
      },
      concerns: () => stalls?.concerns() ?? [],
      services,
      logger,
      verifyToken: authentication.verifyToken,
      access: accessTable,
      http: config.http,
    });
    metricsServer = config.metrics ? await startMetricsServer(config.metrics) : undefined;
  } catch (error) {
    await stopAll();
    throw error;
  }
  return {
    server,
    metricsUrl: metricsServer?.url,
    database,
    bus: config.broker ? busNames[config.broker.kind] : 'the in-process bus',
    services,
    descriptions: [authentication.describe, ...started.flatMap((parts) => (parts.describe ? [parts.describe] : []))],
    client,
    avroCodec,
    relay,
    wake: () => {
      eventsCommitted();
      for (const worker of workers) worker.wake();
      for (const subscription of subscriptions) subscription.checkRequests();
    },
    close: async () => {
      // Stop taking requests (the live streams are ended first, see the query routes' preClose),
      // cut the connections of those still in hand after the grace, finish the messages and
      // jobs in hand, then let go of the store.
      const cut = setTimeout(() => server.server.closeAllConnections(), config.http.shutdownGraceMs);
      try {
        await server.close();
      } finally {
        clearTimeout(cut);
      }
      await metricsServer?.close();
      await stopAll();
    },
  };
}
