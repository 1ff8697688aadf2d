import type { FastifyBaseLogger } from 'fastify';
import { processCounter } from './http/metrics.ts';

/**
 * Where the errors of a Redis client go, for a use the platform keeps working without (a
 * hot copy it can read past, a ledger whose callers try again): each is counted, and the log
 * tells of them without being flooded while Redis is away.
 */
export type RedisErrors = {
  /** An error of the connection (each reconnection that fails is one) or of a command. */
  readonly error: (error: unknown) => void;
  /** The client is connected (again). */
  readonly ready: () => void;
};

/** While errors go on, at most one line in this long, saying how many came since the last. */
const quietMs = 60_000;

/**
 * Counts every error in `mutuo_redis_errors_total{use}`; logs the first of an outage at
 * warn, then at most one line a minute while errors go on, and one line at info when the
 * client is connected again.
 */
export function redisErrors(logger: FastifyBaseLogger | false, use: string, now: () => number = Date.now): RedisErrors {
  const counted = processCounter('mutuo_redis_errors_total', 'Errors of the connections to Redis and of their commands, by what Redis is used for', ['use']);
  let outage: { readonly since: number; loggedAt: number; unlogged: number } | undefined;
  return {
    error(error) {
      counted.inc({ use });
      const message = error instanceof Error ? error.message : String(error);
      if (!outage) {
        outage = { since: now(), loggedAt: now(), unlogged: 0 };
        if (logger) logger.warn({ use, error: message }, `Redis (${use}) fails: ${message}; further errors are counted in mutuo_redis_errors_total`);
        return;
      }
      outage.unlogged++;
      if (now() - outage.loggedAt < quietMs) return;
      if (logger)
        logger.warn(
          { use, error: message, errors: outage.unlogged },
          `Redis (${use}) still fails: ${outage.unlogged} errors in the last minute, the last: ${message}`,
        );
      outage.loggedAt = now();
      outage.unlogged = 0;
    },
    ready() {
      if (!outage) return;
      if (logger) logger.info({ use, outageMs: now() - outage.since }, `Redis (${use}) is connected again`);
      outage = undefined;
    },
  };
}
