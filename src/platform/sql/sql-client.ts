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

/** A server error as both drivers hand it over: a SQLSTATE code and a severity. */
export function isDatabaseError(error: unknown): error is SqlError & { code: string; severity: string } {
  if (!(error instanceof Error)) return false;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string';
}

/** PostgreSQL quotes the values a statement failed on ("…", a quote inside doubled), which may be a person's data. */
const quotedValues = /"(?:[^"]|"")*"/g;

/**
 * An error's message as it may be stored (a dead letter, a job's last error) or logged: a
 * database error's with the values it quotes left out. Its detail and context, which quote
 * whole rows, are never part of it.
 */
export function errorMessage(error: unknown): string {
  if (isDatabaseError(error)) return error.message.replace(quotedValues, '"…"');
  return error instanceof Error ? error.message : String(error);
}

/**
 * SQLSTATEs of a server that cannot be reached or is going away: connection exceptions
 * (class 08), an administrator's or a crash's shutdown, a server still starting, too many
 * connections.
 */
const unavailable = /^(08...|57P0[1-3]|53300)$/;

/** Node's codes for a connection that failed or broke. */
const brokenConnection = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Whether an error says the database could not be reached, or the connection broke: an
 * outage, which no retry of the statement's own can fix and which is nobody's message's fault.
 * pg's own messages for a connection it lost carry no code; those are told by a probe.
 */
export function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (unavailable.test(code) || brokenConnection.has(code));
}
