import { randomUUID } from 'node:crypto';
import { errorMessage, type SqlClient, type SqlQueryable } from '../eventstore/sql-client.ts';
import type { EventStore, StoredEvent } from '../eventstore/types.ts';
import { createSleeper } from '../messaging/sleeper.ts';

/** The physical name of each of a projection's tables: the live ones, or their shadows during a rebuild. */
export type TableNames = Readonly<Record<string, string>>;

/**
 * A read model fed by the event log. `apply` gets the next events in position order
 * (only those of `eventTypes`, if given) inside the transaction that also moves the
 * checkpoint, so a batch is applied exactly once or not at all. It must write only
 * through `tables`, which names the shadows while a rebuild fills them.
 */
export type Projection<Applied = unknown> = {
  readonly name: string;
  /** Its tables' logical names; each is also its live physical name. */
  readonly tables: readonly string[];
  readonly eventTypes?: readonly string[];
  /**
   * Writes a batch; what it answers is handed to afterCommit once the batch committed.
   * `rebuilding` is true when it fills shadow tables (nothing to hand to a hot copy then).
   */
  readonly apply: (tx: SqlQueryable, events: readonly StoredEvent[], tables: TableNames, rebuilding: boolean) => Promise<Applied>;
  /**
   * Called after a batch committed into the live tables, before anyone waiting for its
   * position is answered (a hot copy, live updates). Never during a rebuild.
   */
  readonly afterCommit?: (applied: Applied) => Promise<void> | void;
  /**
   * Each of its rows holds what one stream's events made of it (never a total across
   * streams): a rebuild may then apply the events of different streams in concurrent
   * transactions, each on a connection of its own.
   */
  readonly rowsPerStream?: boolean;
  /**
   * Of a rowsPerStream projection: the event types that change other streams' rows (an
   * erasure scrubs the applications it names). A rebuild applies them after the rest of
   * their batch, in a transaction of their own, so that they find the rows they change.
   */
  readonly crossStreamTypes?: readonly string[];
  /**
   * Called when this process starts writing the projection (a hot copy written after a
   * commit may have missed the last batches of a crashed writer) and after a rebuild
   * swapped in new tables: a hot copy forgets what it held.
   */
  readonly forgetHotCopy?: () => Promise<void>;
};

export type RebuildProgress = {
  readonly projection: string;
  readonly state: 'running' | 'swapping' | 'done' | 'failed';
  readonly applied: number;
  readonly total: number;
  readonly startedAt: string;
  readonly eventsPerSecond: number;
  /** Seconds left at the current rate. */
  readonly etaSeconds: number | null;
  readonly error?: string;
};

export type ProjectionStatus = {
  readonly name: string;
  readonly position: number;
  readonly headPosition: number;
  /** Events appended but not yet in the read model. */
  readonly behindEvents: number;
  /** How long the oldest event not yet in the read model has waited, 0 when caught up. */
  readonly lagMs: number;
  readonly rebuild?: RebuildProgress;
};

export type Projector = {
  readonly wake: () => void;
  readonly status: () => Promise<ProjectionStatus[]>;
  /** Starts rebuilding a projection into shadow tables, swapping them in once caught up; resolves when it is done. */
  readonly rebuild: (projection: string) => Promise<RebuildProgress>;
  readonly progress: (projection: string) => RebuildProgress | undefined;
  readonly stop: () => Promise<void>;
};

export type ProjectorOptions = {
  readonly client: SqlClient;
  readonly store: EventStore;
  // Each projection's Applied type is its own business: `any` lets differently typed ones share the list.
  readonly projections: readonly Projection<any>[];
  readonly batchSize?: number;
  readonly leaseMs?: number;
  /** How often to look for events appended by other processes when nothing wakes the projector. */
  readonly idleMs?: number;
  /** The same within a second of the last events found: under a steady load, the lag stays this small. */
  readonly busyPollMs?: number;
  /** Events per batch when rebuilding (default 100,000). */
  readonly rebuildBatchSize?: number;
  /** Transactions a rebuild of a rowsPerStream projection writes a batch in at once (default 4). */
  readonly rebuildConcurrency?: number;
  readonly onError?: (error: unknown, projection: string) => void;
};

const shadowOf = (table: string) => `${table}__shadow`;

/** Which of `count` parts a stream's events go to: always the same one for a stream (FNV-1a of its id). */
export function partOf(streamId: string, count: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < streamId.length; i++) hash = Math.imul(hash ^ streamId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % count;
}

/**
 * The events of each stream in a part of their own, in their order: parts that share no
 * stream, so that a projection whose rows are per stream can apply them independently.
 */
export function partsByStream(events: readonly StoredEvent[], count: number): StoredEvent[][] {
  const parts: StoredEvent[][] = Array.from({ length: count }, () => []);
  for (const event of events) parts[partOf(event.streamId, count)]!.push(event);
  return parts.filter((part) => part.length > 0);
}

/**
 * How a rebuild writes a batch of a projection's events: `parts` in concurrent
 * transactions (by stream, where its rows are per stream), then `after` in one more:
 * the events that change other streams' rows, once those rows are written.
 */
export function rebuildSplit(projection: Projection<any>, events: readonly StoredEvent[], count: number): { parts: StoredEvent[][]; after: StoredEvent[] } {
  if (!projection.rowsPerStream) return { parts: events.length > 0 ? [[...events]] : [], after: [] };
  const crossing = new Set(projection.crossStreamTypes ?? []);
  const after = crossing.size > 0 ? events.filter((event) => crossing.has(event.type)) : [];
  const perStream = after.length > 0 ? events.filter((event) => !crossing.has(event.type)) : events;
  return { parts: partsByStream(perStream, count), after };
}

/**
 * Runs projections: each follows the event log with the gap-safe readAll and writes its
 * read model and its checkpoint in one transaction per batch. Projections of one name
 * take turns between processes through a lease on their checkpoint row; a process that
 * lost the lease writes nothing more, because each batch's checkpoint update is fenced
 * by the holder.
 */
export function startProjector(options: ProjectorOptions): Projector {
  const { client, store } = options;
  const holder = randomUUID();
  const batchSize = options.batchSize ?? 1_000;
  const leaseMs = options.leaseMs ?? 10_000;
  const idleMs = options.idleMs ?? 100;
  const busyPollMs = Math.min(idleMs, options.busyPollMs ?? 5);
  const rebuildConcurrency = Math.max(1, options.rebuildConcurrency ?? 4);
  const byName = new Map(options.projections.map((projection) => [projection.name, projection]));
  /** Where each followed projection stands in this process; a rebuild's swap moves it. */
  const positions = new Map<string, number>();
  const rebuilds = new Map<string, RebuildProgress>();
  /** Held while a projection's live batch or a rebuild's swap runs: they never overlap. */
  const locks = new Map<string, Promise<void>>();
  let stopped = false;
  /** One per followed projection: a wake reaches each of them. */
  const sleepers = options.projections.map(() => createSleeper());

  async function exclusively<T>(projection: string, work: () => Promise<T>): Promise<T> {
    const before = locks.get(projection) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    locks.set(projection, before.then(() => mine));
    await before;
    try {
      return await work();
    } finally {
      release();
    }
  }

  const relevant = (projection: Projection, events: readonly StoredEvent[]) =>
    projection.eventTypes ? events.filter((event) => projection.eventTypes!.includes(event.type)) : events;

  const liveTables = (projection: Projection): TableNames => Object.fromEntries(projection.tables.map((table) => [table, table]));

  /** Takes or renews the lease; the checkpoint when held, undefined when another process has it. */
  async function holdLease(name: string): Promise<number | undefined> {
    const rows = await client.query<{ position: string }>(
      `INSERT INTO mutuo_projections AS p (name, holder, lease_until) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET holder = $2, lease_until = now() + $3 * interval '1 millisecond'
        WHERE p.holder = $2 OR p.holder IS NULL OR p.lease_until < now()
       RETURNING p.position`,
      [name, holder, leaseMs],
    );
    return rows[0] ? Number(rows[0].position) : undefined;
  }

  /** One batch into the live tables, fenced by the lease; `lost` when another process holds the lease. */
  async function applyLive(projection: Projection, events: readonly StoredEvent[], last: number): Promise<{ applied: unknown } | 'lost'> {
    return client.transaction(async (tx) => {
      const moved = await tx.query(
        `UPDATE mutuo_projections SET position = $3, lease_until = now() + $4 * interval '1 millisecond', updated_at = now()
          WHERE name = $1 AND holder = $2 RETURNING name`,
        [projection.name, holder, last, leaseMs],
      );
      if (moved.length !== 1) return 'lost';
      const mine = relevant(projection, events);
      return { applied: mine.length > 0 ? await projection.apply(tx, mine, liveTables(projection), false) : undefined };
    });
  }

  async function follow(projection: Projection, pause: (ms: number) => Promise<void>): Promise<void> {
    let backoffMs = 100;
    while (!stopped) {
      try {
        const checkpoint = await holdLease(projection.name);
        if (checkpoint === undefined) {
          // Another process writes this projection: stand by.
          await pause(idleMs);
          continue;
        }
        let position = checkpoint;
        await projection.forgetHotCopy?.();
        positions.set(projection.name, position);
        let renewedAt = Date.now();
        // Commits in other processes do not wake this one: while events keep coming, look
        // again soon (busyPollMs); after a quiet second, settle back to idleMs.
        let busyUntil = 0;
        while (!stopped) {
          const applied = await exclusively(projection.name, async () => {
            // A rebuild may have swapped in tables with a checkpoint of their own meanwhile.
            position = positions.get(projection.name) ?? position;
            const events = await store.readAll(position, batchSize);
            if (events.length === 0) return 0;
            const last = events.at(-1)!.position;
            const outcome = await applyLive(projection, events, last);
            if (outcome === 'lost') return -1;
            position = last;
            if (outcome.applied !== undefined) {
              // The read model is committed: a failing hot copy is reported, never a reason to apply the batch again.
              try {
                await projection.afterCommit?.(outcome.applied);
              } catch (error) {
                options.onError?.(error, projection.name);
              }
            }
            positions.set(projection.name, position);
            return events.length;
          });
          if (applied < 0) break;
          if (applied > 0) {
            renewedAt = Date.now();
            busyUntil = renewedAt + 1_000;
            backoffMs = 100;
            continue;
          }
          if (Date.now() - renewedAt > leaseMs / 3) {
            if ((await holdLease(projection.name)) === undefined) break;
            renewedAt = Date.now();
          }
          await pause(Date.now() < busyUntil ? busyPollMs : idleMs);
        }
      } catch (error) {
        options.onError?.(error, projection.name);
        await pause(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5_000);
      }
    }
  }

  /**
   * Rebuild without downtime: the live projection keeps serving and following the log
   * while the shadow tables are filled from position 0; then, with the live batches
   * held, the shadow catches up with the log's head and one transaction renames it into
   * place and moves the checkpoint to where the shadow stopped. A crash during the
   * rebuild leaves the live tables as they were (the next rebuild starts over).
   */
  async function rebuild(name: string): Promise<RebuildProgress> {
    const projection = byName.get(name);
    if (!projection) throw new Error(`no projection named ${name}`);
    const running = rebuilds.get(name);
    if (running && (running.state === 'running' || running.state === 'swapping')) throw new RebuildRunningError(name);
    // Only where the projection is written: the swap must hold its live batches.
    const [lease] = await client.query<{ holder: string | null }>('SELECT holder FROM mutuo_projections WHERE name = $1', [name]);
    if (lease?.holder !== holder) throw new Error(`the projection ${name} is written by another process: rebuild it there`);
    const startedAt = new Date();
    const [count] = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM mutuo_events');
    let progress: RebuildProgress = {
      projection: name,
      state: 'running',
      applied: 0,
      total: Number(count?.n ?? 0),
      startedAt: startedAt.toISOString(),
      eventsPerSecond: 0,
      etaSeconds: null,
    };
    const update = (changes: Partial<RebuildProgress>) => {
      progress = { ...progress, ...changes };
      const elapsed = (Date.now() - startedAt.getTime()) / 1000;
      const eventsPerSecond = elapsed > 0 ? progress.applied / elapsed : 0;
      const left = Math.max(0, progress.total - progress.applied);
      progress = { ...progress, eventsPerSecond, etaSeconds: eventsPerSecond > 0 ? left / eventsPerSecond : null };
      rebuilds.set(name, progress);
    };
    update({});
    const shadows: TableNames = Object.fromEntries(projection.tables.map((table) => [table, shadowOf(table)]));
    try {
      for (const table of projection.tables) {
        await client.exec(`DROP TABLE IF EXISTS ${shadowOf(table)}; CREATE TABLE ${shadowOf(table)} (LIKE ${table} INCLUDING ALL)`);
      }
      let position = 0;
      // Large batches: a read model row touched by several events of one batch is written
      // once, and an application's few events mostly fall in the same batch.
      const rebuildBatch = Math.max(batchSize, options.rebuildBatchSize ?? 100_000);
      const fill = async (untilCaughtUp: boolean) => {
        // The next batch is read while this one is applied: reading and writing overlap
        // on a server (on PGlite's one connection they simply take turns).
        let next = store.readAll(position, rebuildBatch);
        for (;;) {
          const events = await next;
          if (events.length === 0) return;
          position = events.at(-1)!.position;
          const more = untilCaughtUp || events.length === rebuildBatch;
          if (more) {
            next = store.readAll(position, rebuildBatch);
            // Should this batch fail, the read in flight is abandoned: it must not become an unhandled rejection.
            next.catch(() => undefined);
          }
          const mine = relevant(projection, events);
          // A batch is written in several transactions at once where rows are per stream: a
          // server's cores share the writing (PostgreSQL's, not Node's, is the rebuild's limit),
          // and each part's rows are its own, so the parts cannot wait on one another. They
          // need not commit together: a rebuild that fails is dropped and starts over.
          const { parts, after } = rebuildSplit(projection, mine, rebuildConcurrency);
          await Promise.all(parts.map((part) => client.transaction((tx) => projection.apply(tx, part, shadows, true))));
          if (after.length > 0) await client.transaction((tx) => projection.apply(tx, after, shadows, true));
          update({ applied: progress.applied + events.length, total: Math.max(progress.total, progress.applied + events.length) });
          if (!more) return;
          if (stopped) throw new Error('the projector stopped during the rebuild');
        }
      };
      await fill(false);
      update({ state: 'swapping' });
      await exclusively(name, async () => {
        await fill(true);
        await client.transaction(async (tx) => {
          for (const table of projection.tables) {
            await tx.exec(`DROP TABLE ${table}; ALTER TABLE ${shadowOf(table)} RENAME TO ${table}`);
          }
          await tx.query(`UPDATE mutuo_projections SET position = $2, updated_at = now() WHERE name = $1`, [name, position]);
        });
        positions.set(name, position);
        await projection.forgetHotCopy?.();
      });
      update({ state: 'done', total: progress.applied });
    } catch (error) {
      update({ state: 'failed', error: errorMessage(error) });
      for (const table of projection.tables) await client.exec(`DROP TABLE IF EXISTS ${shadowOf(table)}`).catch(() => undefined);
    }
    return progress;
  }

  const following = options.projections.map((projection, i) => follow(projection, sleepers[i]!.sleep));

  return {
    wake: () => {
      for (const sleeper of sleepers) sleeper.wake();
    },
    status: async () => {
      // From the table: a standby process reports the projections another one writes.
      const [head] = await client.query<{ position: string | null }>('SELECT max(position)::text AS position FROM mutuo_events');
      const headPosition = Number(head?.position ?? 0);
      const checkpoints = new Map(
        (await client.query<{ name: string; position: string }>('SELECT name, position FROM mutuo_projections')).map((row) => [row.name, Number(row.position)]),
      );
      return Promise.all(
        options.projections.map(async (projection) => {
          const position = checkpoints.get(projection.name) ?? 0;
          // Counted up to a million: past that, "very far behind" is what matters.
          const [pending] =
            position < headPosition
              ? await client.query<{ n: string; oldest: Date | string | null }>(
                  `SELECT count(*)::text AS n, min(recorded_at) AS oldest
                     FROM (SELECT recorded_at FROM mutuo_events WHERE position > $1 ORDER BY position LIMIT 1000000) AS pending`,
                  [position],
                )
              : [];
          const rebuildProgress = rebuilds.get(projection.name);
          return {
            name: projection.name,
            position,
            headPosition,
            behindEvents: Number(pending?.n ?? 0),
            lagMs: pending?.oldest ? Math.max(0, Date.now() - new Date(pending.oldest).getTime()) : 0,
            ...(rebuildProgress ? { rebuild: rebuildProgress } : {}),
          };
        }),
      );
    },
    rebuild,
    progress: (projection) => rebuilds.get(projection),
    stop: async () => {
      stopped = true;
      for (const sleeper of sleepers) sleeper.wake();
      await Promise.all(following);
      // Hand the projections over at once rather than when the lease lapses.
      await client.query('UPDATE mutuo_projections SET holder = NULL, lease_until = NULL WHERE holder = $1', [holder]).catch(() => undefined);
    },
  };
}

export class RebuildRunningError extends Error {
  constructor(readonly projection: string) {
    super(`a rebuild of ${projection} is already running`);
    this.name = 'RebuildRunningError';
  }
}
