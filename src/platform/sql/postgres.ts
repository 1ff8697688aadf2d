import pg from 'pg';
import type { SqlClient, SqlQueryable } from './sql-client.ts';

export type PostgresOptions = {
  readonly connectionString: string;
  readonly maxConnections?: number;
  /** Schema to use instead of public (tests isolate themselves this way). */
  readonly schema?: string;
  /** How long opening a connection may take, the server's answer to the login included (default 10 s). */
  readonly connectTimeoutMs?: number;
};

/**
 * Opening a connection (TCP, then the server's answer to the login) gives up after this
 * long. Without it a server that takes the connection and never answers (a partition, a
 * server hung or failing over) holds the opener for good: the pool's caller, and with it
 * a follower's step or a consumer's delivery, would wait as long as the server stays away.
 */
const defaultConnectTimeoutMs = 10_000;

/**
 * A connection with no traffic for this long is probed (TCP keepalive; then 10 probes a
 * second apart, libuv's setting). A server host that vanished without closing its
 * connections (powered off, moved to another address by a failover) is then found out
 * within some 20 s: the statement waiting for its answer fails, and an idle connection is
 * dropped before it is lent, instead of waiting on a silent socket for hours.
 */
const keepAliveIdleMs = 10_000;

/**
 * Parameterised statements are prepared once per connection under a name of their own:
 * the server then skips parsing and planning them on every call. Their texts are fixed
 * in the code, so the set of names stays small.
 */
const statementNames = new Map<string, string>();

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `mutuo_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return name;
}

function queryable(target: pg.Pool | pg.PoolClient): SqlQueryable {
  return {
    async query<Row>(text: string, params?: readonly unknown[]) {
      const result = params ? await target.query({ name: statementName(text), text, values: params as unknown[] }) : await target.query(text);
      return result.rows as Row[];
    },
    async exec(sql: string) {
      await target.query(sql);
    },
  };
}

/** A pooled connection to a PostgreSQL server. */
export function createPostgresClient(options: PostgresOptions): SqlClient {
  const connectTimeoutMs = options.connectTimeoutMs ?? defaultConnectTimeoutMs;
  // The timeout is the connection's own (pg.Client's), not the pool's: the pool's would also
  // bound the wait for a free connection, which only a busy moment makes long, and it would
  // fail requests that merely queued.
  class Connection extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, connectionTimeoutMillis: connectTimeoutMs });
    }
  }
  const pool = new pg.Pool({
    Client: Connection,
    connectionString: options.connectionString,
    max: options.maxConnections ?? 20,
    keepAlive: true,
    keepAliveInitialDelayMillis: keepAliveIdleMs,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // A connection the server ends (a restart, an operator) fails the query in flight, or
  // the next one; the error it also emits would end the process unheard. The pool hears
  // its idle connections' and drops them; a transaction hears its own (below).
  pool.on('error', () => undefined);
  return {
    ...queryable(pool),
    async transaction(work) {
      const connection = await pool.connect();
      let lost: Error | undefined;
      const onLost = (error: Error) => {
        lost = error;
      };
      connection.on('error', onLost);
      try {
        await connection.query('BEGIN');
        const result = await work(queryable(connection));
        await connection.query('COMMIT');
        return result;
      } catch (error) {
        await connection.query('ROLLBACK').catch((failure: Error) => onLost(failure));
        throw error;
      } finally {
        connection.off('error', onLost);
        // A lost connection is dropped, never lent again.
        connection.release(lost);
      }
    },
    close: () => pool.end(),
  };
}
