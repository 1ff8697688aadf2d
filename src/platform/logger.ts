import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import { errorMessage, isDatabaseError } from './sql/sql-client.ts';

/**
 * An error as a log line may show it: its type, message, code and stack, and its cause
 * alike. Of a database error, not its detail, context (`where`), hint or query, which quote
 * the rows and values it was about (a person's name in a row's JSON, say), and its message
 * with the values it quotes ("…") left out.
 */
export function loggableError(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  if (isDatabaseError(error)) {
    // Its stack's first line is its message: the rest, where it was thrown.
    const where = error.stack?.split('\n').slice(1).join('\n');
    return { type: 'DatabaseError', code: error.code, severity: error.severity, message: errorMessage(error), ...(where ? { stack: where } : {}) };
  }
  const { type, message, stack, code } = stdSerializers.err(error as Error) as unknown as Record<string, unknown>;
  const { cause } = error as { cause?: unknown };
  return { type, message, stack, ...(code !== undefined ? { code } : {}), ...(cause !== undefined ? { cause: loggableError(cause) } : {}) };
}

/**
 * The process's logger: pino at `level`, with errors logged as loggableError shows them, so
 * that no log line carries the personal data a failed statement was about.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, serializers: { err: loggableError, error: loggableError } };
  return destination ? pino(options, destination) : pino(options);
}
