import { ConfigError, loadConfig } from '../config.ts';
import { createLogger } from '../../platform/logger.ts';
import { startMainframeSimulator } from '../../features/bank-gateway/mainframe-simulator.ts';
import { startBureauSimulator } from '../../features/scoring/bureau-simulator.ts';
import { serviceNames, type ServiceName } from '../services.ts';
import { deadLetterCommand, UsageError } from './dlq.ts';
import type { PlatformTarget } from './platform-client.ts';
import { openPlatform } from '../platform.ts';
import { projectionsCommand } from './projections.ts';
import { statusCommand } from './status.ts';
import { replayCommand, replayUsage } from './replay.ts';
import { Admin } from '@platformatic/kafka';
import { consumerGroup } from '../../platform/messaging/kafka-consumer-group.ts';
import { createPostgresClient } from '../../platform/sql/postgres.ts';
import { consumerTopologies } from '../services.ts';
import { exitOnUnhandledErrors } from './fatal.ts';
import { errorMessage } from '../../platform/sql/sql-client.ts';

const usage = `usage: mutuo <command>

commands:
  start                 run the whole platform in one process (every service, the HTTP API)
  application           run one service alone: the Application service (commands, queries),
  scoring                 the Scoring service (credit bureaus), the Document service (uploads),
  documents               the Bank Gateway (the finalization saga, the mainframe) or the
  bank-gateway            Notification service (email); each on DATABASE_URL and AMQP_URL (or KAFKA_BROKERS)
  notification
  projector             keep the read models up to date (one writes at a time, others stand by)
  query                 serve the read side: views, search, dashboard, rates, simulations, live
  mainframe             the simulated legacy mainframe: fixed-width records over TCP (MAINFRAME_PORT)
  bureau crif|experian  a simulated credit bureau over HTTP (BUREAU_PORT)
  dlq                   list, show, redrive or discard dead letters (mutuo dlq for details)
  projections           list the read models, rebuild one, list, redrive or discard their
                          parked events (mutuo projections help for details)
  replay --consumer SERVICE --from POSITION|TIME
                        on Apache Kafka: hand a service every event again from a point of the
                          log (mutuo replay for details)
  status [--json]       the read horizon and who holds it back, the lag of the relay, the read
                          models and the consumers; from the database (DATABASE_URL) alone

configuration comes from environment variables; see the README.`;

/** After the requests' grace, how long the services have to finish their messages and jobs in hand. */
const WORK_IN_HAND_MS = 2_000;

/** On SIGINT or SIGTERM, closes; whatever still hangs after `deadlineMs` (a job's call to an outside system, say), the process exits then. */
function onSignal(close: () => Promise<void>, log: (line: string) => void, deadlineMs = 5_000): void {
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log(`${signal}: finishing the work in hand and closing`);
    setTimeout(() => {
      log(`still closing after ${deadlineMs} ms: exiting`);
      process.exit(1);
    }, deadlineMs).unref();
    await close();
    process.exit(0);
  };
  process.on('SIGINT', (signal) => void shutdown(signal));
  process.on('SIGTERM', (signal) => void shutdown(signal));
}

async function run(services?: readonly ServiceName[]): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel);
  exitOnUnhandledErrors(logger);
  let platform: Awaited<ReturnType<typeof openPlatform>>;
  try {
    platform = await openPlatform(config, logger, services ? { services } : {});
  } catch (error) {
    // The one outage that ends a process: it cannot start without its database and broker
    // (their migrations, its queues). It says so and exits, for its supervisor to try again;
    // once started, it outlives any outage of theirs.
    const what = error instanceof ConfigError ? `configuration: ${error.message}` : errorMessage(error);
    logger.fatal({ err: error }, `could not start: ${what}`);
    process.exit(1);
  }
  const url = await platform.server.listen({ port: config.port, host: config.host });
  logger.info(`Mutuo (${platform.services.join(', ')}) is running on ${platform.database} and ${platform.bus}: ${url} (API docs at ${url}/docs)`);
  for (const line of platform.descriptions) logger.info(line);
  logger.info(
    platform.metricsUrl
      ? `metrics: ${platform.metricsUrl}, to anyone who reaches it`
      : `metrics: ${url}/metrics, for admins and monitoring systems (set METRICS_PORT to serve them apart)`,
  );
  onSignal(platform.close, (line) => logger.info(line), config.http.shutdownGraceMs + WORK_IN_HAND_MS);
}

async function mainframe(): Promise<void> {
  const config = loadConfig(process.env);
  const simulator = await startMainframeSimulator({
    port: config.simulators.mainframePort,
    host: config.simulators.mainframeHost,
    latencyMs: config.gateway.simulatedLatencyMs,
    timeoutRate: config.gateway.simulatedTimeoutRate,
    refusalRate: config.gateway.simulatedRefusalRate,
  });
  console.log(`simulated mainframe listening on tcp://${simulator.host}:${simulator.port}`);
  onSignal(simulator.close, console.log);
}

async function bureau(): Promise<void> {
  const kind = process.argv[3];
  if (kind !== 'crif' && kind !== 'experian') throw new UsageError('usage: mutuo bureau crif|experian   (BUREAU_PORT, BUREAU_LATENCY_MS, BUREAU_ERROR_RATE)');
  const config = loadConfig(process.env);
  const port = config.simulators.bureauPort ?? (kind === 'crif' ? 7081 : 7082);
  const simulator = await startBureauSimulator({
    kind,
    host: config.host,
    port,
    latencyMs: config.scoring.simulatedLatencyMs,
    errorRate: config.scoring.simulatedErrorRate,
  });
  console.log(`simulated ${kind} bureau listening on ${simulator.url}`);
  onSignal(simulator.close, console.log);
}

/** Where the operations commands find the running platform, and the admin token they call it with. */
function platformTarget(): PlatformTarget {
  const { operations } = loadConfig(process.env);
  return { baseUrl: operations.platformUrl, ...(operations.token ? { token: operations.token } : {}) };
}

async function dlq(): Promise<void> {
  console.log(await deadLetterCommand(process.argv.slice(3), platformTarget()));
}

async function projections(): Promise<void> {
  const interactive = process.stdout.isTTY === true;
  console.log(await projectionsCommand(process.argv.slice(3), platformTarget(), (text) => process.stdout.write(text), { interactive }));
}

async function status(): Promise<void> {
  const config = loadConfig(process.env);
  console.log(await statusCommand(process.argv.slice(3), { databaseUrl: config.databaseUrl, stallMs: config.horizon.stallMs }));
}

async function replay(): Promise<void> {
  const config = loadConfig(process.env);
  if (config.broker?.kind !== 'kafka') throw new UsageError(`mutuo replay moves a Kafka consumer group: set KAFKA_BROKERS\n\n${replayUsage}`);
  const { brokers, topic } = config.broker;
  const admin = new Admin({ clientId: 'mutuo-replay', bootstrapBrokers: [...brokers] });
  const database = config.databaseUrl ? createPostgresClient({ connectionString: config.databaseUrl, maxConnections: 1 }) : undefined;
  try {
    const line = await replayCommand(process.argv.slice(3), {
      admin,
      topic,
      consumers: [...new Set(consumerTopologies(serviceNames).map(({ consumer }) => consumer))],
      groupOf: (consumer) => consumerGroup(topic, consumer),
      ...(database
        ? {
            recordedAtOf: async (position: number) => {
              const [row] = await database.query<{ recorded_at: Date }>('SELECT recorded_at FROM mutuo_events WHERE position >= $1 ORDER BY position LIMIT 1', [
                position,
              ]);
              return row?.recorded_at;
            },
          }
        : {}),
      write: (text) => process.stdout.write(text),
      interactive: process.stdout.isTTY === true,
    });
    console.log(line);
  } finally {
    await admin.close();
    await database?.close();
  }
}

const commands: Record<string, () => Promise<void>> = {
  start: () => run(),
  mainframe,
  bureau,
  dlq,
  projections,
  status,
  replay,
  ...Object.fromEntries(serviceNames.map((name) => [name, () => run([name])])),
};

const command = commands[process.argv[2] ?? ''];
if (!command) {
  console.error(usage);
  process.exit(2);
}
command().catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(error.message);
    process.exit(2);
  }
  console.error(error instanceof ConfigError ? `configuration: ${error.message}` : error instanceof Error ? error.message : error);
  process.exit(1);
});
