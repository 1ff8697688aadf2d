/** Every setting comes from the environment, read once by the composition root. */
export type Config = {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  readonly databasePoolSize: number;
  readonly databaseWriteConcurrency: number;
  readonly amqpUrl: string | undefined;
  readonly consumerMaxAttempts: number;
  readonly logLevel: string;
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

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  return {
    port: integer(env, 'PORT', 3000, 0, 65_535),
    host: env.HOST || '127.0.0.1',
    dataDir: env.MUTUO_DATA_DIR || './.mutuo-data',
    databaseUrl: env.DATABASE_URL || undefined,
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 20, 1, 1_000),
    databaseWriteConcurrency: integer(env, 'DATABASE_WRITE_CONCURRENCY', 4, 1, 1_000),
    amqpUrl: env.AMQP_URL || undefined,
    consumerMaxAttempts: integer(env, 'MUTUO_CONSUMER_MAX_ATTEMPTS', 5, 1, 100),
    logLevel: env.LOG_LEVEL || 'info',
  };
}
