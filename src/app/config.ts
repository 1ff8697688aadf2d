import type { ApplicationConfig } from '../features/application/config.ts';
import type { GatewayConfig } from '../features/bank-gateway/config.ts';
import type { DocumentsConfig } from '../features/documents/config.ts';
import type { NotificationConfig } from '../features/notification/config.ts';
import type { ScoringConfig } from '../features/scoring/config.ts';
import type { AuthConfig } from '../security/authentication.ts';

/** The broker events are published on, one at most: RabbitMQ (AMQP_URL) or Apache Kafka (KAFKA_BROKERS). */
export type BrokerConfig =
  | { readonly kind: 'rabbitmq'; readonly url: string }
  | { readonly kind: 'kafka'; readonly brokers: readonly string[]; readonly topic: string; readonly partitions: number };

/** Every setting comes from the environment, read once by the composition root. */
export type Config = {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  readonly databasePoolSize: number;
  readonly databaseWriteConcurrency: number;
  /** Unset: the in-process bus, which only consumers in this process can take events from. */
  readonly broker: BrokerConfig | undefined;
  readonly redisUrl: string | undefined;
  /** A Confluent-compatible schema registry to register the events' Avro schemas in and read ids from, instead of Mutuo's own (/registry). */
  readonly schemaRegistryUrl: string | undefined;
  readonly consumerMaxAttempts: number;
  /** How long a query waits for its read model to reach X-Min-Position. */
  readonly readWaitMs: number;
  /** How long a projector's hold on a projection lasts without renewal (a crashed one is replaced after it). */
  readonly projectionLeaseMs: number;
  /** The read horizon's watch (PostgreSQL only): held back this long by one transaction, it is a stall; read this often. */
  readonly horizon: { readonly stallMs: number; readonly checkMs: number };
  readonly logLevel: string;
  readonly production: boolean;
  readonly auth: AuthConfig;
  readonly privacy: {
    /** Keys the digests by which tax codes are looked up without being stored, the search's digests and the credit inputs hash. */
    readonly subjectDigestSecret: string;
  };
  readonly applications: ApplicationConfig;
  readonly http: {
    readonly bodyLimitBytes: number;
    readonly publicRequestsPerMinute: number;
    readonly corsOrigins: readonly string[];
    /** Live streams (SSE) open at once for one caller, and in this process. */
    readonly liveStreamsPerCaller: number;
    readonly liveStreamsPerProcess: number;
    /** On SIGTERM, how long requests in hand may take before their connections are cut. */
    readonly shutdownGraceMs: number;
  };
  /** Unset: /metrics on the API port, for the readMetrics permission; set: there only, to anyone who reaches it. */
  readonly metrics: { readonly port: number; readonly host: string } | undefined;
  readonly scoring: ScoringConfig;
  readonly documents: DocumentsConfig;
  readonly gateway: GatewayConfig;
  /** The simulated systems of the bank, each run as a command of its own (mutuo mainframe, mutuo bureau). */
  readonly simulators: {
    readonly mainframePort: number;
    readonly mainframeHost: string;
    /** Unset: 7081 for the CRIF-like bureau, 7082 for the Experian-like one. */
    readonly bureauPort: number | undefined;
  };
  /** Where the operations commands (mutuo dlq, mutuo projections) find the running platform, and the token they send. */
  readonly operations: {
    readonly platformUrl: string;
    readonly token: string | undefined;
  };
  readonly notification: NotificationConfig;
};

export class ConfigError extends Error {}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function fraction(env: NodeJS.ProcessEnv, name: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return 0;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new ConfigError(`${name} must be a number from 0 to 1, got "${raw}"`);
  return value;
}

function url(env: NodeJS.ProcessEnv, name: string, protocols: readonly string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) throw new ConfigError(`${name} must be a ${protocols.join(' or ')} URL, got "${raw}"`);
  return raw;
}

/** host:port, comma-separated: the Kafka brokers to bootstrap from. */
function kafkaBrokers(raw: string): string[] {
  return raw.split(',').map((broker) => {
    const trimmed = broker.trim();
    if (!/^[^\s,/]+:\d{1,5}$/.test(trimmed)) throw new ConfigError(`KAFKA_BROKERS must list host:port pairs, comma-separated, got "${trimmed}"`);
    return trimmed;
  });
}

/** Every Mutuo topic is named mutuo.<something>, in the characters Kafka allows. */
function kafkaTopic(env: NodeJS.ProcessEnv): string {
  const topic = env.KAFKA_TOPIC || 'mutuo.events';
  if (!/^mutuo\.[a-zA-Z0-9._-]{1,243}$/.test(topic)) {
    throw new ConfigError(`KAFKA_TOPIC must be mutuo. followed by letters, digits, '.', '_' or '-', got "${topic}"`);
  }
  return topic;
}

function brokerConfig(env: NodeJS.ProcessEnv): BrokerConfig | undefined {
  const amqpUrl = env.AMQP_URL || undefined;
  const brokers = env.KAFKA_BROKERS || undefined;
  if (amqpUrl && brokers) {
    throw new ConfigError('AMQP_URL and KAFKA_BROKERS are both set: events go to one broker, so set one of them (RabbitMQ or Apache Kafka)');
  }
  if (amqpUrl) return { kind: 'rabbitmq', url: amqpUrl };
  if (brokers) {
    return { kind: 'kafka', brokers: kafkaBrokers(brokers), topic: kafkaTopic(env), partitions: integer(env, 'KAFKA_PARTITIONS', 16, 1, 10_000) };
  }
  return undefined;
}

function authConfig(env: NodeJS.ProcessEnv, production: boolean): Config['auth'] {
  const jwksUrl = url(env, 'AUTH_JWKS_URL', ['https:', 'http:']);
  const issuer = env.AUTH_ISSUER || undefined;
  if (production && !jwksUrl) {
    throw new ConfigError('AUTH_JWKS_URL must be set in production: the development identity provider is refused there');
  }
  if (jwksUrl && !issuer) throw new ConfigError('AUTH_ISSUER must be set with AUTH_JWKS_URL: tokens are accepted from that issuer only');
  return {
    jwksUrl,
    issuer,
    audience: env.AUTH_AUDIENCE || 'mutuo',
    rolesClaim: env.AUTH_ROLES_CLAIM || 'roles',
    revocationRefreshMs: integer(env, 'AUTH_REVOCATION_REFRESH_MS', 1_000, 50, 60_000),
  };
}

function subjectDigestSecret(env: NodeJS.ProcessEnv, production: boolean): string {
  const secret = env.MUTUO_SUBJECT_DIGEST_SECRET;
  if (secret) {
    if (secret.length < 32) throw new ConfigError('MUTUO_SUBJECT_DIGEST_SECRET must be at least 32 characters');
    return secret;
  }
  if (production) throw new ConfigError('MUTUO_SUBJECT_DIGEST_SECRET must be set in production: tax codes are looked up by a digest keyed with it');
  return 'development only: set MUTUO_SUBJECT_DIGEST_SECRET outside development';
}

function corsOrigins(env: NodeJS.ProcessEnv): string[] {
  const raw = env.CORS_ORIGINS;
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((origin) => {
    const trimmed = origin.trim();
    let parsed: URL;
    try {
      parsed = new URL(trimmed);
    } catch {
      throw new ConfigError(`CORS_ORIGINS must list origins such as https://portal.example, got "${trimmed}"`);
    }
    if (parsed.origin !== trimmed) throw new ConfigError(`CORS_ORIGINS must list origins (scheme://host[:port]), got "${trimmed}"`);
    return trimmed;
  });
}

function metricsConfig(env: NodeJS.ProcessEnv, host: string): Config['metrics'] {
  if (env.METRICS_PORT === undefined || env.METRICS_PORT === '') return undefined;
  return { port: integer(env, 'METRICS_PORT', 0, 0, 65_535), host: env.METRICS_HOST || host };
}

/**
 * The outside systems each service calls, by the variable that names them. Unset, a
 * simulator stands in, and the Notification service keeps every email in an SMTP server
 * of its own that accepts anything: development only.
 */
const outsideSystems: Readonly<Record<string, readonly (readonly [variable: string, value: (config: Config) => string | undefined])[]>> = {
  scoring: [
    ['BUREAU_CRIF_URL', (config) => config.scoring.crifUrl],
    ['BUREAU_EXPERIAN_URL', (config) => config.scoring.experianUrl],
  ],
  'bank-gateway': [['MAINFRAME_URL', (config) => config.gateway.mainframeUrl]],
  notification: [['SMTP_URL', (config) => config.notification.smtpUrl]],
};

/**
 * In production, the services a process runs must be given the outside systems they call:
 * a simulated bureau or mainframe, or a mail server that swallows the applicants' email,
 * would fail open. Only the services a process runs are asked for theirs.
 */
export function checkOutsideSystems(config: Config, services: readonly string[]): void {
  if (!config.production) return;
  const missing = services.flatMap((service) =>
    (outsideSystems[service] ?? []).filter(([, value]) => value(config) === undefined).map(([variable]) => `${variable} (${service})`),
  );
  if (missing.length === 0) return;
  throw new ConfigError(`${missing.join(', ')} must be set in production: simulators stand in for outside systems only in development`);
}

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const dataDir = env.MUTUO_DATA_DIR || './.mutuo-data';
  const production = env.NODE_ENV === 'production';
  const host = env.HOST || '127.0.0.1';
  return {
    port: integer(env, 'PORT', 3000, 0, 65_535),
    host,
    dataDir,
    databaseUrl: env.DATABASE_URL || undefined,
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 20, 1, 1_000),
    databaseWriteConcurrency: integer(env, 'DATABASE_WRITE_CONCURRENCY', 4, 1, 1_000),
    broker: brokerConfig(env),
    redisUrl,
    schemaRegistryUrl: url(env, 'SCHEMA_REGISTRY_URL', ['http:', 'https:']),
    consumerMaxAttempts: integer(env, 'MUTUO_CONSUMER_MAX_ATTEMPTS', 5, 1, 100),
    readWaitMs: integer(env, 'READ_WAIT_MS', 2_000, 0, 60_000),
    projectionLeaseMs: integer(env, 'MUTUO_PROJECTION_LEASE_MS', 10_000, 500, 600_000),
    horizon: {
      stallMs: integer(env, 'MUTUO_HORIZON_STALL_MS', 10_000, 1, 86_400_000),
      checkMs: integer(env, 'MUTUO_HORIZON_CHECK_MS', 2_000, 10, 600_000),
    },
    logLevel: env.LOG_LEVEL || 'info',
    production,
    auth: authConfig(env, production),
    privacy: {
      subjectDigestSecret: subjectDigestSecret(env, production),
    },
    applications: {
      // Italian banks grant mortgages from some 30 000 to 50 000 euros; below, a personal loan is the product.
      minLoanCents: integer(env, 'MORTGAGE_MIN_LOAN_EUROS', 30_000, 1, 1_000_000_000) * 100,
      retentionYears: integer(env, 'MUTUO_RETENTION_YEARS', 10, 0, 100),
    },
    http: {
      bodyLimitBytes: integer(env, 'HTTP_BODY_LIMIT_BYTES', 65_536, 1_024, 104_857_600),
      publicRequestsPerMinute: integer(env, 'RATE_LIMIT_PUBLIC_PER_MINUTE', 600, 0, 100_000_000),
      corsOrigins: corsOrigins(env),
      liveStreamsPerCaller: integer(env, 'LIVE_STREAMS_PER_CALLER', 5, 1, 10_000),
      liveStreamsPerProcess: integer(env, 'LIVE_STREAMS_PER_PROCESS', 1_000, 1, 1_000_000),
      shutdownGraceMs: integer(env, 'SHUTDOWN_GRACE_MS', 3_000, 0, 600_000),
    },
    metrics: metricsConfig(env, host),
    scoring: {
      crifUrl: url(env, 'BUREAU_CRIF_URL', ['http:', 'https:']),
      experianUrl: url(env, 'BUREAU_EXPERIAN_URL', ['http:', 'https:']),
      bureauTimeoutMs: integer(env, 'BUREAU_TIMEOUT_MS', 2_000, 1, 600_000),
      bureauAttempts: integer(env, 'BUREAU_ATTEMPTS', 2, 1, 10),
      deadlineMs: integer(env, 'SCORING_DEADLINE_MS', 60_000, 0, 86_400_000),
      maxDebtToIncomePercent: integer(env, 'CREDIT_MAX_DTI_PERCENT', 35, 1, 100),
      simulatedLatencyMs: integer(env, 'BUREAU_LATENCY_MS', 0, 0, 600_000),
      simulatedErrorRate: fraction(env, 'BUREAU_ERROR_RATE'),
    },
    documents: {
      sandbox: !production,
      directory: env.DOCUMENTS_DIR || `${dataDir}/documents`,
      maxBytes: integer(env, 'DOCUMENTS_MAX_BYTES', 10 * 1_048_576, 1_024, 1_073_741_824),
      maxRejections: integer(env, 'DOCUMENTS_MAX_REJECTIONS', 3, 1, 100),
      maxUploadsPerApplication: integer(env, 'DOCUMENTS_MAX_UPLOADS_PER_APPLICATION', 20, 1, 10_000),
      reading: {
        timeoutMs: integer(env, 'DOCUMENTS_READ_TIMEOUT_MS', 30_000, 100, 600_000),
        memoryMb: integer(env, 'DOCUMENTS_READ_MEMORY_MB', 512, 192, 65_536),
        maxPages: integer(env, 'DOCUMENTS_MAX_PAGES', 100, 1, 100_000),
        maxInflatedBytes: integer(env, 'DOCUMENTS_MAX_INFLATED_BYTES', 100 * 1_048_576, 1_024, 68_719_476_736),
        concurrency: integer(env, 'DOCUMENTS_CHECK_CONCURRENCY', 2, 1, 64),
      },
    },
    gateway: {
      mainframeUrl: url(env, 'MAINFRAME_URL', ['tcp:']),
      mainframeTimeoutMs: integer(env, 'MAINFRAME_TIMEOUT_MS', 5_000, 1, 600_000),
      mainframeAttempts: integer(env, 'MAINFRAME_ATTEMPTS', 3, 1, 20),
      simulatedLatencyMs: integer(env, 'MAINFRAME_LATENCY_MS', 0, 0, 600_000),
      simulatedTimeoutRate: fraction(env, 'MAINFRAME_TIMEOUT_RATE'),
      simulatedRefusalRate: fraction(env, 'MAINFRAME_REFUSAL_RATE'),
    },
    simulators: {
      mainframePort: integer(env, 'MAINFRAME_PORT', 7070, 0, 65_535),
      mainframeHost: env.MAINFRAME_HOST || '127.0.0.1',
      bureauPort: env.BUREAU_PORT ? integer(env, 'BUREAU_PORT', 0, 0, 65_535) : undefined,
    },
    operations: {
      platformUrl: env.MUTUO_URL || `http://127.0.0.1:${env.PORT || 3000}`,
      token: env.MUTUO_TOKEN || undefined,
    },
    notification: {
      redisUrl,
      smtpUrl: url(env, 'SMTP_URL', ['smtp:', 'smtps:']),
      from: env.MAIL_FROM || 'Mutuo <noreply@mutuo.example>',
    },
  };
}
