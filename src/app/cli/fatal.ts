import type { Logger } from 'pino';
import { errorMessage } from '../../platform/sql/sql-client.ts';

/**
 * The last resort of a service's process: an error that nothing handled (thrown where
 * nothing catches it, an 'error' event nobody listens to, a promise whose failure nobody
 * awaits) ends the process on purpose, after one fatal log line that says what it was.
 *
 * It is never an outage's: a connection's errors (the database's pool and transactions, the
 * broker's connection, channels and consumers, Redis's clients) are heard where they arise,
 * and the work they failed is tried again. What comes here is a fault nobody foresaw, after
 * which the process's state is not to be trusted, so it is not carried on from: the process
 * exits with 1 at once, and its supervisor (systemd, Kubernetes) starts it again. Nothing
 * is lost by the abrupt end: each unit of work commits whole or not at all, unacknowledged
 * messages go back to their queue, claimed jobs fall due again once their lease lapses, and
 * the relay and the projector go on from their checkpoints.
 *
 * One listener covers both: Node raises an unhandled rejection as an uncaught exception
 * (its default, --unhandled-rejections=throw), with 'unhandledRejection' as its origin.
 */
export function exitOnUnhandledErrors(logger: Logger, exit: (code: number) => void = (code) => process.exit(code)): void {
  process.on('uncaughtException', (error, origin) => {
    try {
      logger.fatal(
        { err: error, origin },
        `${origin === 'unhandledRejection' ? 'a promise failed and nothing handled it' : 'an error nothing handled'}: ${errorMessage(error)}; exiting for the supervisor to start the process again`,
      );
    } finally {
      exit(1);
    }
  });
}
