/** What the event store needs of a PostgreSQL connection: the pg and PGlite adapters both give it. */
export interface SqlQueryable {
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Runs several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlClient extends SqlQueryable {
  transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The fields both drivers put on a server error. */
export type SqlError = Error & { code?: string; detail?: string; constraint?: string };

export function isSqlError(error: unknown): error is SqlError {
  return error instanceof Error && typeof (error as SqlError).code === 'string';
}
