import type { ParkedEvent, Redriven } from '../../platform/projections/projector.ts';
import { alignedTable, UsageError } from './dlq.ts';
import { callPlatform, type PlatformTarget } from './platform-client.ts';

const usage = `usage: mutuo projections [list | rebuild [NAME] | parked [NAME] | redrive NAME [STREAM] | discard NAME [STREAM]]

  list                   each read model: its position, how far behind the event log it is,
                         how many events it has parked
  rebuild [NAME]         rebuild a read model (every one in turn without NAME) from position 0
                         into a shadow copy and swap it in, showing progress; queries are
                         answered from the live copy meanwhile
  parked [NAME]          the events a read model (every one without NAME) could not apply,
                         with their error, and the later events of their stream held behind them
  redrive NAME [STREAM]  apply NAME's parked events again (only STREAM's, if given), each
                         stream in its order, once the cause is fixed; what still fails is
                         parked again
  discard NAME [STREAM]  give NAME's parked events up (only STREAM's, if given): their streams
                         follow the log again without them

Talks to the running platform at MUTUO_URL (default http://127.0.0.1:$PORT, PORT 3000),
to the process that runs the projector.`;

type Status = { name: string; position: number; behindEvents: number; lagMs: number; parkedEvents: number };
type Progress = { state: string; applied: number; total: number; eventsPerSecond: number; etaSeconds: number | null; parked: number; error?: string };

/** One line of progress: a bar, the count, the rate and the time left. */
export function progressLine(progress: Progress, width = 30): string {
  const share = progress.total > 0 ? Math.min(1, progress.applied / progress.total) : 1;
  const filled = Math.round(share * width);
  const eta = progress.etaSeconds === null ? '--' : `${Math.ceil(progress.etaSeconds)} s`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)} %  ${progress.applied}/${progress.total} events  ${Math.round(progress.eventsPerSecond)}/s  ETA ${eta}  ${progress.state}`;
}

/** The parked events as a table; an event held behind the one that failed says so in place of an error. */
function parkedTable(parked: readonly ParkedEvent[]): string {
  const rows = parked.map((p) => [
    p.projection,
    String(p.position),
    p.streamId,
    String(p.streamVersion),
    p.eventType,
    p.errorCode === null ? 'held behind' : `${p.errorCode}: ${p.error ?? ''}`,
  ]);
  return alignedTable(['projection', 'position', 'stream', 'version', 'event', 'error'], rows);
}

/**
 * `mutuo projections ...`. Writes progress to `write` as it goes (a terminal gets the bar
 * redrawn in place) and returns the last line.
 */
export async function projectionsCommand(
  args: readonly string[],
  target: PlatformTarget,
  write: (text: string) => void,
  options: { readonly interactive: boolean; readonly pollMs?: number } = { interactive: false },
): Promise<string> {
  const [action = 'list', name] = args;
  if (action === 'list') {
    const { items } = await callPlatform<{ items: Status[] }>(target, 'GET', '/api/projections');
    return items
      .map(
        (item) =>
          `${item.name.padEnd(20)} position ${item.position}  behind ${item.behindEvents} events  lag ${item.lagMs} ms  parked ${item.parkedEvents} events`,
      )
      .join('\n');
  }
  const parkedPath = (projection: string) => `/api/projections/${encodeURIComponent(projection)}/parked`;
  if (action === 'parked') {
    const names = name ? [name] : (await callPlatform<{ items: Status[] }>(target, 'GET', '/api/projections')).items.map((item) => item.name);
    const lists = await Promise.all(
      names.map((projection) => callPlatform<{ items: ParkedEvent[]; total: number }>(target, 'GET', `${parkedPath(projection)}?limit=1000`)),
    );
    const total = lists.reduce((sum, list) => sum + list.total, 0);
    if (total === 0) return 'no parked events';
    const shown = lists.flatMap((list) => list.items);
    return `${parkedTable(shown)}${shown.length < total ? `\n(${shown.length} of ${total} shown)` : ''}`;
  }
  if (action === 'redrive' || action === 'discard') {
    if (!name) throw new UsageError(`${action} needs a read model's name\n\n${usage}`);
    const stream = args[2];
    const path = `${parkedPath(name)}/${action}${stream ? `?streamId=${encodeURIComponent(stream)}` : ''}`;
    const what = stream ? `${name}, stream ${stream}` : name;
    if (action === 'discard') return `${what}: ${(await callPlatform<{ discarded: number }>(target, 'POST', path)).discarded} parked events discarded`;
    const { redriven, parked } = await callPlatform<Redriven>(target, 'POST', path);
    return `${what}: ${redriven} parked events applied${parked > 0 ? `, ${parked} parked again (see mutuo projections parked ${name})` : ''}`;
  }
  if (action !== 'rebuild') throw new UsageError(usage);

  async function rebuild(projection: string): Promise<string> {
    const path = `/api/projections/${encodeURIComponent(projection)}/rebuild`;
    let progress = await callPlatform<Progress>(target, 'POST', path);
    for (;;) {
      const line = progressLine(progress);
      write(options.interactive ? `\r${line}` : `${line}\n`);
      if (progress.state === 'done' || progress.state === 'failed') break;
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
      progress = await callPlatform<Progress>(target, 'GET', path);
    }
    if (options.interactive) write('\n');
    if (progress.state === 'failed') throw new Error(`the rebuild of ${projection} failed: ${progress.error ?? 'unknown error'}`);
    return `${projection} rebuilt: ${progress.applied} events${progress.parked > 0 ? `, ${progress.parked} of them parked` : ''}`;
  }

  if (name) return rebuild(name);
  // Every read model, one after the other.
  const { items } = await callPlatform<{ items: Status[] }>(target, 'GET', '/api/projections');
  const done: string[] = [];
  for (const item of items) {
    write(`${item.name}\n`);
    done.push(await rebuild(item.name));
  }
  return done.join('\n');
}
