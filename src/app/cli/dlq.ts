import type { DeadLetter } from '../../platform/messaging/dead-letters.ts';
import { callPlatform, type PlatformTarget } from './platform-client.ts';

const usage = `usage: mutuo dlq <list [--consumer NAME] [--status open|dead|redriven|discarded] | show ID | redrive ID | discard ID>

Talks to the running platform at MUTUO_URL (default http://127.0.0.1:$PORT, PORT 3000):
the embedded database belongs to that process, so the CLI goes through its API, as an
admin: MUTUO_TOKEN, or the development identity provider's admin where it runs.`;

export class UsageError extends Error {}

function table(deadLetters: readonly DeadLetter[]): string {
  if (deadLetters.length === 0) return 'no dead letters';
  const rows = deadLetters.map((d) => [
    String(d.id),
    d.status,
    d.consumer,
    d.eventType ?? '-',
    d.partitionKey ?? '-',
    String(d.parked),
    d.reason,
    d.error.length > 60 ? `${d.error.slice(0, 57)}...` : d.error,
  ]);
  return alignedTable(['id', 'status', 'consumer', 'event', 'application', 'parked', 'reason', 'error'], rows);
}

/** Rows under a header, each column as wide as its widest cell. */
export function alignedTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `mutuo dlq ...`: returns what to print. */
export async function deadLetterCommand(args: readonly string[], target: PlatformTarget): Promise<string> {
  const [action, ...rest] = args;
  const id = () => {
    const value = rest[0];
    if (!value || !/^[1-9][0-9]*$/.test(value)) throw new UsageError(`${action} needs a dead letter id\n\n${usage}`);
    return value;
  };
  switch (action) {
    case 'list': {
      const query = new URLSearchParams();
      for (let i = 0; i < rest.length; i += 2) {
        const flag = rest[i];
        const value = rest[i + 1];
        if ((flag !== '--consumer' && flag !== '--status') || value === undefined) throw new UsageError(usage);
        query.set(flag.slice(2), value);
      }
      return table((await callPlatform(target, 'GET', `/api/dead-letters?${query}`)) as DeadLetter[]);
    }
    case 'show':
      return JSON.stringify(await callPlatform(target, 'GET', `/api/dead-letters/${id()}`), null, 2);
    case 'redrive':
    case 'discard': {
      const result = (await callPlatform(target, 'POST', `/api/dead-letters/${id()}/${action}`)) as DeadLetter;
      return `dead letter ${result.id}: ${result.status.replace('_', ' ')}; consumer ${result.consumer} carries it out`;
    }
    default:
      throw new UsageError(usage);
  }
}
