import type { EventDefinition } from '../eventstore/event-definition.ts';
import { randomUUID } from 'node:crypto';
import { DomainError } from '../../domain/errors.ts';
import { EventDecodeError } from '../eventstore/event-catalog.ts';
import { errorMessage, isSqlError, type SqlClient, type SqlQueryable } from '../sql/sql-client.ts';
import type { EventStore, StoredEvent } from '../eventstore/types.ts';
import { lagAfter } from '../eventstore/lag.ts';
import { startFollower, type Follower, type Lease, type Next } from '../runtime/follower.ts';

/** The physical name of each of a projection's tables: the live ones, or their shadows during a rebuild. */
export type TableNames = Readonly<Record<string, string>>;

/**
 * A read model fed by the event log. `apply` gets the next events in position order
 * (only those of `events`, if given) inside the transaction that also moves the
 * checkpoint, so a batch is applied exactly once or not at all. It must write only
 * through `tables`, which names the shadows while a rebuild fills them. A batch it
 * fails is handed to it again in parts (by stream, then a failing stream's events one
 * by one, in order: see isolate), so that the event at fault is parked and the rest applied.
 */
export type Projection<Applied = unknown> = {
  readonly name: string;
  /** Its tables' logical names; each is also its live physical name. */
  readonly tables: readonly string[];
  /** The events it follows, by their definitions; the projector hands it no other (all of them when not given). */
  readonly events?: readonly EventDefinition[];
  /**
   * Writes a batch; what it answers is handed to afterCommit once the batch committed.
   * `rebuilding` is true when it fills shadow tables (nothing to hand to a hot copy then).
   */
  readonly apply: (tx: SqlQueryable, events: readonly StoredEvent[], tables: TableNames, rebuilding: boolean) => Promise<Applied>;
  /**
   * Called after a batch committed into the live tables, before anyone waiting for its
   * position is answered (a hot copy, live updates), with what each apply of it answered
   * (several, if the batch was applied in parts). Never during a rebuild.
   */
  // A method, so that a projection of any Applied is a Projection (of unknown): the list of them is one type.
  afterCommit?(applied: Applied): Promise<void> | void;
  /**
   * Each of its rows holds what one stream's events made of it (never a total across
   * streams): a rebuild may then apply the events of different streams in concurrent
   * transactions, each on a connection of its own.
   */
  readonly rowsPerStream?: boolean;
  /**
   * Of a rowsPerStream projection: the events that change other streams' rows (an
   * erasure scrubs the applications it names). A rebuild applies them after the rest of
   * their batch, in a transaction of their own, so that they find the rows they change.
   */
  readonly crossStreamEvents?: readonly EventDefinition[];
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
  /** Events the rebuilt tables do not hold: they failed, or wait behind one of their stream that did. */
  readonly parked: number;
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
  /** Events passed over because the read model could not apply them, or held behind one of their stream that it could not. */
  readonly parkedEvents: number;
  /** The streams (applications) those events are of: the read model holds them as they were before. */
  readonly parkedStreams: number;
  readonly rebuild?: RebuildProgress;
};

/**
 * An event a projection could not apply, or one held behind it: once a stream has an
 * event parked, its later events wait behind it, in order, until it is redriven or
 * discarded. Only references to the event log, never the event's data.
 */
export type ParkedEvent = {
  readonly projection: string;
  readonly position: number;
  readonly streamId: string;
  readonly streamVersion: number;
  readonly eventId: string;
  readonly eventType: string;
  /** Of the event that failed: its error's code and message (see describeFailure); null for an event held behind it. */
  readonly errorCode: string | null;
  readonly error: string | null;
  readonly parkedAt: string;
};

/** What a redrive did: the events now in the read model, and those parked again (they still fail, or wait behind one that does). */
export type Redriven = { readonly redriven: number; readonly parked: number };

export type Projector = {
  /** The projections this projector runs. */
  readonly names: readonly string[];
  readonly wake: () => void;
  readonly status: () => Promise<ProjectionStatus[]>;
  /** Starts rebuilding a projection into shadow tables, swapping them in once caught up; resolves when it is done. */
  readonly rebuild: (projection: string) => Promise<RebuildProgress>;
  readonly progress: (projection: string) => RebuildProgress | undefined;
  /** A projection's parked events in position order, at most `limit`, and how many there are. */
  readonly parked: (projection: string, limit?: number) => Promise<{ items: ParkedEvent[]; total: number }>;
  /**
   * Applies a projection's parked events (of one stream, or of all) again, in their
   * stream's order; the streams that now apply follow the log again, an event that still
   * fails is parked again with its new error. Only where the projection is written.
   */
  readonly redrive: (projection: string, streamId?: string) => Promise<Redriven>;
  /** Gives a projection's parked events (of one stream, or of all) up: their streams follow the log again without them. */
  readonly discard: (projection: string, streamId?: string) => Promise<{ discarded: number }>;
  readonly stop: () => Promise<void>;
};

export type ProjectorOptions = {
  readonly client: SqlClient;
  readonly store: EventStore;
  readonly projections: readonly Projection[];
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
  /** A failure that stops a projection for a while (the database away): it is tried again after a pause. */
  readonly onError?: (error: unknown, projection: string) => void;
  /** Called once per event parked, after the transaction that parked it committed. */
  readonly onParked?: (parked: Omit<ParkedEvent, 'parkedAt'>) => void;
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
export function rebuildSplit(projection: Projection, events: readonly StoredEvent[], count: number): { parts: StoredEvent[][]; after: StoredEvent[] } {
  if (!projection.rowsPerStream) return { parts: events.length > 0 ? [[...events]] : [], after: [] };
  const crossing = new Set((projection.crossStreamEvents ?? []).map((event) => event.type));
  const after = crossing.size > 0 ? events.filter((event) => crossing.has(event.type)) : [];
  const perStream = after.length > 0 ? events.filter((event) => !crossing.has(event.type)) : events;
  return { parts: partsByStream(perStream, count), after };
}

/**
 * SQLSTATE classes that say the database cannot work right now, whatever the data: the
 * connection (08), a transaction rolled back for concurrency (40: serialization failure,
 * deadlock), resources (53: disk full, out of memory, too many connections), an operator
 * or a timeout (57: shutdown, cancel), the system (58: I/O).
 */
const outageClasses = new Set(['08', '40', '53', '57', '58']);

/**
 * Whether a failure is the database's rather than an event's: one of the classes above,
 * a lock wait given up (55P03), or the driver's socket failing (Node's system errors,
 * ECONNREFUSED, ECONNRESET..., name their system call). Such a failure pauses a
 * projection, which tries the batch again; it never parks an event.
 */
export function isDatabaseOutage(error: unknown): boolean {
  if (typeof (error as { syscall?: unknown } | null)?.syscall === 'string') return true;
  return isSqlError(error) && (outageClasses.has(error.code!.slice(0, 2)) || error.code === '55P03');
}

/**
 * Whether a failure comes from the event's own values: a data exception (22: a NUL in
 * text, a number out of range) or a constraint (23) on what it wrote, an event the
 * catalog cannot read, a domain rule broken by it.
 */
function isTiedToData(error: unknown): boolean {
  if (error instanceof DomainError || error instanceof EventDecodeError) return true;
  return isSqlError(error) && /^2[23]/.test(error.code!);
}

/**
 * What is kept and logged of a failure: its code (the SQLSTATE, or the error's name)
 * and its message as errorMessage gives it (the values a database error quotes left out);
 * never PostgreSQL's detail or where, which quote the row's values. Control characters are
 * blanked (a message may carry the NUL that failed).
 */
export function describeFailure(error: unknown): { code: string; message: string } {
  const code = isSqlError(error) ? error.code! : error instanceof Error ? error.name : 'Error';
  return {
    code,
    message: errorMessage(error)
      .replace(/[\p{Cc}\p{Cs}]/gu, ' ')
      .slice(0, 500),
  };
}

/** An event to park, with why it failed; an event held behind an earlier one of its stream has no failure. */
type Parking = { readonly event: StoredEvent; readonly failure?: { code: string; message: string } };

/** What a transaction of a projection's events did: what apply answered for each part it applied, and what it parked. */
type Outcome = { readonly applied: unknown[]; readonly parked: Parking[] };

const byPosition = (a: StoredEvent, b: StoredEvent) => a.position - b.position;

/** The events grouped by stream, each group in the events' order, the groups in the order their streams first appear. */
function byStream(events: readonly StoredEvent[]): StoredEvent[][] {
  const groups = new Map<string, StoredEvent[]>();
  for (const event of events) {
    const group = groups.get(event.streamId);
    if (group) group.push(event);
    else groups.set(event.streamId, [event]);
  }
  return [...groups.values()];
}

/** The part of the events that goes on, and the events of streams parked already, which wait behind them. */
function holdBehind(events: readonly StoredEvent[], parkedStreams: ReadonlySet<string>): { going: readonly StoredEvent[]; held: Parking[] } {
  if (parkedStreams.size === 0 || !events.some((event) => parkedStreams.has(event.streamId))) return { going: events, held: [] };
  return {
    going: events.filter((event) => !parkedStreams.has(event.streamId)),
    held: events.filter((event) => parkedStreams.has(event.streamId)).map((event) => ({ event })),
  };
}

/** What is recorded and reported of an event parked by a projection. */
function parkedBy(projection: string, { event, failure }: Parking): Omit<ParkedEvent, 'parkedAt'> {
  return {
    projection,
    position: event.position,
    streamId: event.streamId,
    streamVersion: event.streamVersion,
    eventId: event.eventId,
    eventType: event.type,
    errorCode: failure?.code ?? null,
    error: failure?.message ?? null,
  };
}

/** Parks events in the caller's transaction. */
async function insertParked(tx: SqlQueryable, projection: string, parked: readonly Parking[]): Promise<void> {
  if (parked.length === 0) return;
  await tx.query(
    `INSERT INTO mutuo_projection_parked (projection, position, stream_id, stream_version, event_id, event_type, error_code, error)
     SELECT projection, position, "streamId", "streamVersion", "eventId", "eventType", "errorCode", error
       FROM json_to_recordset($1::json)
         AS r(projection text, position bigint, "streamId" text, "streamVersion" integer, "eventId" uuid, "eventType" text, "errorCode" text, error text)
     ON CONFLICT (projection, position) DO NOTHING`,
    [JSON.stringify(parked.map((parking) => parkedBy(projection, parking)))],
  );
}

/**
 * Applies a projection's events again after they failed together, in the caller's
 * transaction: the streams are bisected, each half tried under a savepoint, down to the
 * streams that fail alone; the others stay applied. In a stream that fails, its events
 * are then tried one by one: those before the one that fails stay applied, that one and
 * the stream's later events are parked. The events that change other streams' rows
 * (crossStreamEvents) come after the rest, as in a rebuild, so that they find those rows.
 *
 * A failure of the database (isDatabaseOutage), or of a savepoint itself, is thrown:
 * the transaction is lost, and nothing is parked. So is, when `allFailingIsOutage`, a
 * failure of every one of several streams, unless one of them is tied to the event's
 * values (isTiedToData): what fails everything else is no event's doing (a table
 * missing, a broken deploy), and parking the whole log would hide it; but a batch made
 * only of hostile events (a thousand NULs) must not block the projection again.
 */
async function isolate(
  tx: SqlQueryable,
  projection: Projection,
  events: readonly StoredEvent[],
  tables: TableNames,
  rebuilding: boolean,
  allFailingIsOutage: boolean,
): Promise<Outcome> {
  const applied: unknown[] = [];
  const parked: Parking[] = [];
  const tried = new Set<string>();
  let firstError: unknown;
  let dataFailed = false;

  async function attempt(part: readonly StoredEvent[]): Promise<{ error: unknown } | undefined> {
    await tx.query('SAVEPOINT mutuo_projection_attempt');
    try {
      applied.push(await projection.apply(tx, part, tables, rebuilding));
      await tx.query('RELEASE SAVEPOINT mutuo_projection_attempt');
      return undefined;
    } catch (error) {
      if (isDatabaseOutage(error)) throw error;
      await tx.exec('ROLLBACK TO SAVEPOINT mutuo_projection_attempt; RELEASE SAVEPOINT mutuo_projection_attempt');
      firstError ??= error;
      dataFailed ||= isTiedToData(error);
      return { error };
    }
  }

  /** Applies what it can of the streams, and answers those that fail alone, with their error. */
  async function bisect(streams: StoredEvent[][]): Promise<{ stream: StoredEvent[]; error: unknown }[]> {
    if (streams.length === 0) return [];
    const failed = await attempt(streams.flat().sort(byPosition));
    if (!failed) return [];
    if (streams.length === 1) return [{ stream: streams[0]!, error: failed.error }];
    const half = Math.ceil(streams.length / 2);
    return [...(await bisect(streams.slice(0, half))), ...(await bisect(streams.slice(half)))];
  }

  async function settle(part: readonly StoredEvent[]): Promise<void> {
    const streams = byStream(part);
    for (const stream of streams) tried.add(stream[0]!.streamId);
    for (const { stream, error } of await bisect(streams)) {
      for (let i = 0; i < stream.length; i++) {
        // One event alone is the one that failed; in a longer stream, the first that fails alone.
        const failed = stream.length === 1 ? { error } : await attempt([stream[i]!]);
        if (!failed) continue;
        parked.push({ event: stream[i]!, failure: describeFailure(failed.error) }, ...stream.slice(i + 1).map((event) => ({ event })));
        break;
      }
    }
  }

  const crossing = new Set((projection.crossStreamEvents ?? []).map((event) => event.type));
  await settle(crossing.size > 0 ? events.filter((event) => !crossing.has(event.type)) : events);
  if (crossing.size > 0) {
    const { going, held } = holdBehind(
      events.filter((event) => crossing.has(event.type)),
      new Set(parked.map(({ event }) => event.streamId)),
    );
    await settle(going);
    parked.push(...held);
  }
  if (allFailingIsOutage && tried.size > 1 && applied.length === 0 && !dataFailed) throw firstError;
  return { applied, parked };
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
  /** Held while a projection's live batch, a rebuild's swap, a redrive or a discard runs: they never overlap. */
  const locks = new Map<string, Promise<void>>();
  /**
   * The streams each followed projection has events parked of: their later events are
   * parked behind them. Read from the table when this process takes the lease, then
   * changed only here (every change is made by the lease's holder).
   */
  const parkedStreams = new Map<string, Set<string>>();
  /** Set by stop: a rebuild in progress gives up. */
  let stopped = false;

  async function exclusively<T>(projection: string, work: () => Promise<T>): Promise<T> {
    const before = locks.get(projection) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    locks.set(
      projection,
      before.then(() => mine),
    );
    await before;
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Each projection's event types, looked up for every event of every batch. */
  const followedTypes = new Map(
    options.projections.flatMap((projection) => (projection.events ? [[projection.name, new Set(projection.events.map((event) => event.type))] as const] : [])),
  );
  const relevant = (projection: Projection, events: readonly StoredEvent[]) => {
    const types = followedTypes.get(projection.name);
    return types ? events.filter((event) => types.has(event.type)) : events;
  };

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

  /**
   * Renews the lease in the caller's transaction, and moves the checkpoint to `position`
   * if given: whatever the transaction writes is fenced by the lease. False when another
   * process holds it.
   */
  async function fence(tx: SqlQueryable, name: string, position?: number): Promise<boolean> {
    const moved = await tx.query(
      `UPDATE mutuo_projections SET position = coalesce($3, position), lease_until = now() + $4 * interval '1 millisecond', updated_at = now()
        WHERE name = $1 AND holder = $2 RETURNING name`,
      [name, holder, position ?? null, leaseMs],
    );
    return moved.length === 1;
  }

  /**
   * Applies a projection's events in one transaction, which `within` opens around `write`
   * (and in which it writes what goes with them: the checkpoint, the parked rows). Should
   * they fail for a reason that is not the database's, a second transaction applies them
   * again stream by stream (isolate) and parks the streams that fail.
   */
  async function applyOrPark<T>(
    projection: Projection,
    events: readonly StoredEvent[],
    tables: TableNames,
    rebuilding: boolean,
    within: (write: (tx: SqlQueryable) => Promise<Outcome>) => Promise<T>,
    allFailingIsOutage = true,
  ): Promise<T> {
    try {
      return await within(async (tx) => ({ applied: events.length > 0 ? [await projection.apply(tx, events, tables, rebuilding)] : [], parked: [] }));
    } catch (error) {
      if (events.length === 0 || isDatabaseOutage(error) || error instanceof WrittenElsewhereError) throw error;
      return within((tx) => isolate(tx, projection, events, tables, rebuilding, allFailingIsOutage));
    }
  }

  /** After the commit that parked them: each event parked is reported. */
  function reportParked(projection: Projection, parked: readonly Parking[]): void {
    for (const parking of parked) options.onParked?.(parkedBy(projection.name, parking));
  }

  /** After the commit into the live tables: the hot copy gets what was applied, and each event parked is reported. */
  async function committed(projection: Projection, outcome: Outcome): Promise<void> {
    reportParked(projection, outcome.parked);
    for (const applied of outcome.applied) {
      if (applied === undefined) continue;
      // The read model is committed: a failing hot copy is reported, never a reason to apply the batch again.
      try {
        await projection.afterCommit?.(applied);
      } catch (error) {
        options.onError?.(error, projection.name);
      }
    }
  }

  /**
   * One batch into the live tables, fenced by the lease; `lost` when another process
   * holds the lease. The checkpoint moves past the whole batch, parked events included.
   */
  async function applyLive(projection: Projection, events: readonly StoredEvent[], last: number): Promise<Outcome | 'lost'> {
    const parkedHere = parkedStreams.get(projection.name)!;
    const { going, held } = holdBehind(relevant(projection, events), parkedHere);
    const outcome = await applyOrPark(projection, going, liveTables(projection), false, (write) =>
      client.transaction(async (tx) => {
        if (!(await fence(tx, projection.name, last))) return 'lost' as const;
        const written = await write(tx);
        const parked = [...written.parked, ...held];
        await insertParked(tx, projection.name, parked);
        return { applied: written.applied, parked };
      }),
    );
    if (outcome !== 'lost') for (const { event } of outcome.parked) parkedHere.add(event.streamId);
    return outcome;
  }

  async function parkedStreamsOf(name: string): Promise<Set<string>> {
    const rows = await client.query<{ stream_id: string }>('SELECT DISTINCT stream_id FROM mutuo_projection_parked WHERE projection = $1', [name]);
    return new Set(rows.map((row) => row.stream_id));
  }

  /**
   * The log after a position, read once for every projection that asks for it at the same
   * moment: a commit wakes them all together, at the same checkpoint as a rule.
   */
  const reading = new Map<number, Promise<StoredEvent[]>>();
  function readAfter(position: number): Promise<StoredEvent[]> {
    let read = reading.get(position);
    if (!read) {
      read = store.readAll(position, batchSize).finally(() => reading.delete(position));
      reading.set(position, read);
    }
    return read;
  }

  /**
   * Follows the log for one projection while this process holds its lease. A commit in this
   * process wakes it; commits in other processes do not. So when it finds events that no
   * wake announced, others are writing: it looks again soon (busyPollMs) until a quiet
   * second has passed, then settles back to idleMs. A wake whose events it does not find yet
   * (a transaction still running holds the read horizon back) has it look again soon too,
   * for a tenth of a second.
   */
  function follow(projection: Projection): Follower {
    const { name } = projection;
    let busyUntil = 0;
    let announced = false;
    const lease: Lease = {
      durationMs: leaseMs,
      // Another process writes this projection: stand by.
      standbyMs: idleMs,
      acquire: async () => {
        const checkpoint = await holdLease(name);
        if (checkpoint === undefined) return false;
        await projection.forgetHotCopy?.();
        // Not while a redrive or a discard of this process changes them.
        await exclusively(name, async () => parkedStreams.set(name, await parkedStreamsOf(name)));
        positions.set(name, checkpoint);
        busyUntil = 0;
        return true;
      },
      renew: async () => (await holdLease(name)) !== undefined,
      release: async () => {
        // Hand the projection over at once rather than when the lease lapses.
        await client.query('UPDATE mutuo_projections SET holder = NULL, lease_until = NULL WHERE name = $1 AND holder = $2', [name, holder]);
      },
    };
    const applyNext = async (): Promise<Next> => {
      const wasAnnounced = announced;
      announced = false;
      const applied = await exclusively(name, async () => {
        // Read here: a rebuild may have swapped in tables with a checkpoint of their own meanwhile.
        const position = positions.get(name)!;
        const events = await readAfter(position);
        if (events.length === 0) return 0;
        const last = events.at(-1)!.position;
        const outcome = await applyLive(projection, events, last);
        if (outcome === 'lost') return -1;
        await committed(projection, outcome);
        positions.set(name, last);
        return events.length;
      });
      if (applied < 0) return 'lease-lost';
      if (applied > 0) {
        if (!wasAnnounced) busyUntil = Date.now() + 1_000;
        return 'again';
      }
      if (wasAnnounced) busyUntil = Math.max(busyUntil, Date.now() + 100);
      return { sleepMs: Date.now() < busyUntil ? busyPollMs : idleMs };
    };
    const follower = startFollower({ step: applyNext, lease, onError: (error) => options.onError?.(error, name) });
    return {
      ...follower,
      wake: () => {
        announced = true;
        follower.wake();
      },
    };
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
    if (lease?.holder !== holder) throw new WrittenElsewhereError(name, 'rebuild');
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
      parked: 0,
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
      // The rebuild tries every event again, those parked in the live tables too: what
      // still fails is parked here, its stream's later events behind it, and these
      // parked events replace the live ones when the shadows are swapped in.
      const parkedInRebuild: Parking[] = [];
      const streamsParked = new Set<string>();
      const park = (parked: readonly Parking[]) => {
        for (const parking of parked) streamsParked.add(parking.event.streamId);
        parkedInRebuild.push(...parked);
      };
      const intoShadows = async (part: readonly StoredEvent[]) => {
        const { going, held } = holdBehind(part, streamsParked);
        park(held);
        if (going.length > 0) park((await applyOrPark(projection, going, shadows, true, (write) => client.transaction(write))).parked);
      };
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
          const { going, held } = holdBehind(relevant(projection, events), streamsParked);
          park(held);
          // A batch is written in several transactions at once where rows are per stream: a
          // server's cores share the writing (PostgreSQL's, not Node's, is the rebuild's limit),
          // and each part's rows are its own, so the parts cannot wait on one another. They
          // need not commit together: a rebuild that fails is dropped and starts over.
          const { parts, after } = rebuildSplit(projection, going, rebuildConcurrency);
          await Promise.all(parts.map(intoShadows));
          if (after.length > 0) await intoShadows(after);
          update({
            applied: progress.applied + events.length,
            total: Math.max(progress.total, progress.applied + events.length),
            parked: parkedInRebuild.length,
          });
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
          await tx.query('DELETE FROM mutuo_projection_parked WHERE projection = $1', [name]);
          await insertParked(tx, name, parkedInRebuild);
        });
        positions.set(name, position);
        parkedStreams.set(name, streamsParked);
        reportParked(projection, parkedInRebuild);
        await projection.forgetHotCopy?.();
      });
      update({ state: 'done', total: progress.applied });
    } catch (error) {
      update({ state: 'failed', error: describeFailure(error).message });
      for (const table of projection.tables) await client.exec(`DROP TABLE IF EXISTS ${shadowOf(table)}`).catch(() => undefined);
    }
    return progress;
  }

  function projectionNamed(name: string): Projection {
    const projection = byName.get(name);
    if (!projection) throw new Error(`no projection named ${name}`);
    const running = rebuilds.get(name);
    // The swap replaces the parked events with those of the rebuild.
    if (running && (running.state === 'running' || running.state === 'swapping')) throw new RebuildRunningError(name);
    return projection;
  }

  async function redrive(name: string, streamId?: string): Promise<Redriven> {
    const projection = projectionNamed(name);
    return exclusively(name, async () => {
      const rows = await client.query<{ stream_id: string; position: string; stream_version: number }>(
        `SELECT stream_id, position::text AS position, stream_version FROM mutuo_projection_parked
          WHERE projection = $1 AND ($2::text IS NULL OR stream_id = $2) ORDER BY position`,
        [name, streamId ?? null],
      );
      if (rows.length === 0) return { redriven: 0, parked: 0 };
      // The events again from the log (revealed as they are now), each stream's from its first parked version.
      const fromVersion = new Map<string, number>();
      for (const row of rows) if (!fromVersion.has(row.stream_id)) fromVersion.set(row.stream_id, row.stream_version);
      const positions = new Set(rows.map((row) => Number(row.position)));
      const streams = await Promise.all([...fromVersion].map(([stream, version]) => store.readStream(stream, { fromVersion: version })));
      const events = streams
        .flat()
        .filter((event) => positions.has(event.position))
        .sort(byPosition);
      const outcome = await applyOrPark(
        projection,
        events,
        liveTables(projection),
        false,
        (write) =>
          client.transaction(async (tx) => {
            if (!(await fence(tx, name))) throw new WrittenElsewhereError(name, 'redrive');
            await tx.query('DELETE FROM mutuo_projection_parked WHERE projection = $1 AND position = ANY($2::bigint[])', [
              name,
              events.map((event) => event.position),
            ]);
            const written = await write(tx);
            await insertParked(tx, name, written.parked);
            return written;
          }),
        // Events that fail again are parked again, however many: that is what a redrive before the fix does.
        false,
      );
      const parkedHere = parkedStreams.get(name);
      if (parkedHere) {
        for (const stream of fromVersion.keys()) parkedHere.delete(stream);
        for (const { event } of outcome.parked) parkedHere.add(event.streamId);
      }
      await committed(projection, outcome);
      return { redriven: events.length - outcome.parked.length, parked: outcome.parked.length };
    });
  }

  async function discard(name: string, streamId?: string): Promise<{ discarded: number }> {
    projectionNamed(name);
    return exclusively(name, async () => {
      const discarded = await client.transaction(async (tx) => {
        if (!(await fence(tx, name))) throw new WrittenElsewhereError(name, 'discard');
        return tx.query<{ stream_id: string }>(
          'DELETE FROM mutuo_projection_parked WHERE projection = $1 AND ($2::text IS NULL OR stream_id = $2) RETURNING stream_id',
          [name, streamId ?? null],
        );
      });
      for (const { stream_id } of discarded) parkedStreams.get(name)?.delete(stream_id);
      return { discarded: discarded.length };
    });
  }

  async function parked(name: string, limit = 100): Promise<{ items: ParkedEvent[]; total: number }> {
    type Row = {
      position: string;
      stream_id: string;
      stream_version: number;
      event_id: string;
      event_type: string;
      error_code: string | null;
      error: string | null;
      parked_at: Date | string;
      total: string;
    };
    const rows = await client.query<Row>(
      `SELECT position::text AS position, stream_id, stream_version, event_id::text AS event_id, event_type, error_code, error, parked_at,
              count(*) OVER ()::text AS total
         FROM mutuo_projection_parked WHERE projection = $1 ORDER BY position LIMIT $2`,
      [name, limit],
    );
    return {
      items: rows.map((row) => ({
        projection: name,
        position: Number(row.position),
        streamId: row.stream_id,
        streamVersion: row.stream_version,
        eventId: row.event_id,
        eventType: row.event_type,
        errorCode: row.error_code,
        error: row.error,
        parkedAt: new Date(row.parked_at).toISOString(),
      })),
      total: Number(rows[0]?.total ?? 0),
    };
  }

  const followers = options.projections.map(follow);

  return {
    names: options.projections.map((projection) => projection.name),
    wake: () => {
      for (const follower of followers) follower.wake();
    },
    status: async () => {
      // From the table: a standby process reports the projections another one writes.
      const checkpoints = new Map(
        (await client.query<{ name: string; position: string }>('SELECT name, position FROM mutuo_projections')).map((row) => [row.name, Number(row.position)]),
      );
      const parkedCounts = new Map(
        (
          await client.query<{ projection: string; events: string; streams: string }>(
            `SELECT projection, count(*)::text AS events, count(DISTINCT stream_id)::text AS streams FROM mutuo_projection_parked GROUP BY projection`,
          )
        ).map((row) => [row.projection, { events: Number(row.events), streams: Number(row.streams) }]),
      );
      return Promise.all(
        options.projections.map(async (projection) => {
          const position = checkpoints.get(projection.name) ?? 0;
          const rebuildProgress = rebuilds.get(projection.name);
          return {
            name: projection.name,
            position,
            ...(await lagAfter(client, position)),
            parkedEvents: parkedCounts.get(projection.name)?.events ?? 0,
            parkedStreams: parkedCounts.get(projection.name)?.streams ?? 0,
            ...(rebuildProgress ? { rebuild: rebuildProgress } : {}),
          };
        }),
      );
    },
    rebuild,
    progress: (projection) => rebuilds.get(projection),
    parked,
    redrive,
    discard,
    stop: async () => {
      stopped = true;
      await Promise.all(followers.map((follower) => follower.stop()));
    },
  };
}

export class RebuildRunningError extends Error {
  constructor(readonly projection: string) {
    super(`a rebuild of ${projection} is already running`);
    this.name = 'RebuildRunningError';
  }
}

/** A rebuild, a redrive or a discard asked of a process that does not write the projection. */
export class WrittenElsewhereError extends Error {
  constructor(
    readonly projection: string,
    action: string,
  ) {
    super(`the projection ${projection} is written by another process: ${action} it there`);
    this.name = 'WrittenElsewhereError';
  }
}
