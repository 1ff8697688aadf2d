import type { SqlQueryable } from '../sql/sql-client.ts';

/** How far each read model is, seen from a process that may or may not write it. */
export type Checkpoints = {
  /** Resolves true once the projection holds every event up to `position`; false if `timeoutMs` passed first. */
  readonly waitFor: (projection: string, position: number, timeoutMs: number) => Promise<boolean>;
  readonly position: (projection: string) => Promise<number>;
  readonly close: () => void;
};

/**
 * Reads the checkpoints from the database, so that it works in any process: while a
 * query waits for a read model to catch up, one query every `pollMs` reads every
 * checkpoint for all the waiters of this process.
 */
export function watchCheckpoints(db: SqlQueryable, pollMs = 10): Checkpoints {
  const waiters = new Set<{ projection: string; position: number; resolve: (reached: boolean) => void }>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  async function read(): Promise<Map<string, number>> {
    const rows = await db.query<{ name: string; position: string }>('SELECT name, position FROM mutuo_projections');
    return new Map(rows.map((row) => [row.name, Number(row.position)]));
  }

  function schedule() {
    if (timer || closed || waiters.size === 0) return;
    timer = setTimeout(async () => {
      timer = undefined;
      try {
        const positions = await read();
        for (const waiter of waiters) {
          if ((positions.get(waiter.projection) ?? 0) >= waiter.position) {
            waiters.delete(waiter);
            waiter.resolve(true);
          }
        }
      } catch {
        // The database is away for a moment: the waiters' own deadlines still hold.
      }
      schedule();
    }, pollMs);
  }

  return {
    async waitFor(projection, position, timeoutMs) {
      if (((await read()).get(projection) ?? 0) >= position) return true;
      return new Promise((resolve) => {
        const waiter = {
          projection,
          position,
          resolve: (reached: boolean) => {
            clearTimeout(deadline);
            resolve(reached);
          },
        };
        const deadline = setTimeout(() => {
          waiters.delete(waiter);
          resolve(false);
        }, timeoutMs);
        waiters.add(waiter);
        schedule();
      });
    },
    position: async (projection) => (await read()).get(projection) ?? 0,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const waiter of waiters) waiter.resolve(false);
      waiters.clear();
    },
  };
}
