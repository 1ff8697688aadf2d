import { UsageError } from './dlq.ts';
import { callPlatform, type PlatformTarget } from './platform-client.ts';

const usage = `usage: mutuo projections [list | rebuild [NAME]]

  list            each read model: its position, how far behind the event log it is
  rebuild [NAME]  rebuild a read model (every one in turn without NAME) from position 0
                  into a shadow copy and swap it in, showing progress; queries are
                  answered from the live copy meanwhile

Talks to the running platform at MUTUO_URL (default http://127.0.0.1:$PORT, PORT 3000),
to the process that runs the projector.`;

type Status = { name: string; position: number; behindEvents: number; lagMs: number };
type Progress = { state: string; applied: number; total: number; eventsPerSecond: number; etaSeconds: number | null; error?: string };


/** One line of progress: a bar, the count, the rate and the time left. */
export function progressLine(progress: Progress, width = 30): string {
  const share = progress.total > 0 ? Math.min(1, progress.applied / progress.total) : 1;
  const filled = Math.round(share * width);
  const eta = progress.etaSeconds === null ? '--' : `${Math.ceil(progress.etaSeconds)} s`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)} %  ${progress.applied}/${progress.total} events  ${Math.round(progress.eventsPerSecond)}/s  ETA ${eta}  ${progress.state}`;
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
    return items.map((item) => `${item.name.padEnd(20)} position ${item.position}  behind ${item.behindEvents} events  lag ${item.lagMs} ms`).join('\n');
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
    return `${projection} rebuilt: ${progress.applied} events`;
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
