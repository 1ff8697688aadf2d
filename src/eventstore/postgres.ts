import pg from 'pg';
import type { SqlClient, SqlQueryable } from './sql-client.ts';

export type PostgresOptions = {
  readonly connectionString: string;
  readonly maxConnections?: number;
  /** Schema to use instead of public (tests isolate themselves this way). */
  readonly schema?: string;
};

function queryable(target: pg.Pool | pg.PoolClient): SqlQueryable {
  return {
    async query<Row>(text: string, params?: readonly unknown[]) {
      const result = await target.query(text, params as unknown[] | undefined);
      return result.rows as Row[];
    },
    async exec(sql: string) {
      await target.query(sql);
    },
  };
}

/** A pooled connection to a PostgreSQL server. */
export function createPostgresClient(options: PostgresOptions): SqlClient {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 20,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  return {
    ...queryable(pool),
    async transaction(work) {
      const connection = await pool.connect();
      try {
        await connection.query('BEGIN');
        const result = await work(queryable(connection));
        await connection.query('COMMIT');
        return result;
      } catch (error) {
        await connection.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        connection.release();
      }
    },
    close: () => pool.end(),
  };
}
