import { RateLimitedError } from '../../platform/http/rate-limit.ts';
import { startFollower, type Follower, type Next } from '../../platform/runtime/follower.ts';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import type { EventStore, StoredEvent } from '../../platform/eventstore/types.ts';
import { applicationDecider, type ApplicationState } from './decider.ts';
import { applicationStreamId } from './events.ts';
import { decodeApplicationEvents } from './application-events.ts';

/** One change of an application, as the live feed sends it; `position` is its SSE id. */
export type LiveChange = {
  readonly applicationId: string;
  readonly position: number;
  readonly version: number;
  readonly type: string;
  readonly status: string;
  readonly recordedAt: string;
  readonly reason?: string;
  readonly contractNumber?: string;
};

/** How long the tail sleeps while nobody follows: a new follower wakes it. */
const UNFOLLOWED_SLEEP_MS = 60_000;

/** Streams open at once: for one caller (an identity's subject), and in the whole process. */
export type LiveLimits = { readonly perCaller: number; readonly perProcess: number };

/** A caller turned away at a cap tries again after this: a slot frees when a stream closes, which no one can foretell. */
const RETRY_AFTER_SECONDS = 5;

export type LiveFeed = {
  /**
   * Takes a slot for one more stream of `caller`, or throws a RateLimitedError past a cap
   * (429 with Retry-After). The stream calls the answer once it has ended, to free it.
   */
  readonly admit: (caller: string) => () => void;
  /**
   * Every change of the application after `afterPosition` (all of them when undefined),
   * then each new one as it is committed, in order and once each, until the signal aborts.
   */
  readonly follow: (applicationId: string, afterPosition: number | undefined, signal: AbortSignal) => AsyncIterable<LiveChange>;
  readonly wake: () => void;
  /** Ends every stream (each `follow` returns) and resolves once each has freed its slot. */
  readonly close: () => Promise<void>;
};

function changesOf(events: readonly StoredEvent[], state: ApplicationState): { changes: LiveChange[]; state: ApplicationState } {
  const changes: LiveChange[] = [];
  for (const fact of decodeApplicationEvents(events)) {
    state = applicationDecider.evolve(state, fact.event);
    if (state.status === 'none') continue;
    changes.push({
      applicationId: fact.applicationId,
      position: fact.stored.position,
      version: fact.stored.streamVersion,
      type: fact.event.type,
      status: state.status,
      recordedAt: fact.stored.recordedAt.toISOString(),
      ...((state.status === 'rejected' || state.status === 'withdrawn') && state.reason ? { reason: state.reason } : {}),
      ...(state.status === 'approved' ? { contractNumber: state.contractNumber } : {}),
    });
  }
  return { changes, state };
}

/**
 * The applications' changes as they are committed, for Server-Sent Events. One tail of
 * the event log per process (the gap-safe readAll, woken by this process's commits and
 * polling for other processes') fans out to the subscribers of each application.
 */
export function startLiveFeed(store: EventStore, db: SqlQueryable, limits: LiveLimits, options: { readonly idleMs?: number } = {}): LiveFeed {
  const idleMs = options.idleMs ?? 200;
  const openByCaller = new Map<string, number>();
  let open = 0;
  let allFreed: (() => void) | undefined;
  const subscribers = new Map<string, Set<(events: readonly StoredEvent[]) => void>>();
  let head: number | undefined;
  let tail: Follower | undefined;
  let closed = false;

  /** One look at the log past `head`, its events handed to their applications' followers. */
  async function readTail(): Promise<Next> {
    if (subscribers.size === 0) return { sleepMs: UNFOLLOWED_SLEEP_MS };
    // From the log's end at the first subscription: what came before is read per application.
    head ??= await safeHead();
    const events = await store.readAll(head, 1_000);
    if (events.length === 0) return { sleepMs: idleMs };
    head = events.at(-1)!.position;
    const byStream = new Map<string, StoredEvent[]>();
    for (const event of events) {
      if (!subscribers.has(event.streamId)) continue;
      const list = byStream.get(event.streamId) ?? [];
      list.push(event);
      byStream.set(event.streamId, list);
    }
    for (const [streamId, list] of byStream) for (const deliver of subscribers.get(streamId) ?? []) deliver(list);
    return 'again';
  }

  /** The highest position below which nothing can commit any more (readAll's own bound). */
  async function safeHead(): Promise<number> {
    const [row] = await db.query<{ position: string }>(
      `SELECT coalesce(max(position), 0)::text AS position FROM mutuo_events
        WHERE position < pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 65536`,
    );
    return Number(row?.position ?? 0);
  }

  async function* follow(applicationId: string, afterPosition: number | undefined, signal: AbortSignal): AsyncIterable<LiveChange> {
    const streamId = applicationStreamId(applicationId);
    const queue: StoredEvent[] = [];
    let notify: (() => void) | undefined;
    const deliver = (events: readonly StoredEvent[]) => {
      queue.push(...events);
      notify?.();
    };
    // Subscribe before reading the history, so that nothing committed in between is missed; duplicates are dropped by position.
    const set = subscribers.get(streamId) ?? new Set();
    set.add(deliver);
    subscribers.set(streamId, set);
    // The database away for a moment: the tail tries again after a backoff, and the streams wait.
    tail ??= startFollower({ step: readTail, backoff: { firstMs: idleMs, maxMs: 5_000 } });
    tail.wake();
    const onAbort = () => notify?.();
    signal.addEventListener('abort', onAbort);
    try {
      const history = await store.readStream(streamId);
      let { changes, state } = changesOf(history, applicationDecider.initialState);
      let sent = afterPosition ?? -1;
      for (const change of changes) {
        if (change.position > sent) {
          sent = change.position;
          yield change;
        }
      }
      sent = Math.max(sent, history.at(-1)?.position ?? -1);
      while (!signal.aborted && !closed) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => (notify = resolve));
          notify = undefined;
          continue;
        }
        const fresh = queue.splice(0).filter((event) => event.position > sent);
        ({ changes, state } = changesOf(fresh, state));
        sent = Math.max(sent, fresh.at(-1)?.position ?? -1);
        for (const change of changes) yield change;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      set.delete(deliver);
      if (set.size === 0) subscribers.delete(streamId);
    }
  }

  function admit(caller: string): () => void {
    const callers = openByCaller.get(caller) ?? 0;
    if (callers >= limits.perCaller)
      throw new RateLimitedError(RETRY_AFTER_SECONDS, `you have ${callers} live streams open, as many as one caller may`, 'TOO_MANY_STREAMS');
    if (open >= limits.perProcess)
      throw new RateLimitedError(RETRY_AFTER_SECONDS, `this server has ${open} live streams open, as many as it takes`, 'TOO_MANY_STREAMS');
    open++;
    openByCaller.set(caller, callers + 1);
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      open--;
      const left = openByCaller.get(caller)! - 1;
      if (left === 0) openByCaller.delete(caller);
      else openByCaller.set(caller, left);
      if (open === 0) allFreed?.();
    };
  }

  return {
    admit,
    follow,
    wake: () => tail?.wake(),
    close: async () => {
      closed = true;
      const stopping = tail?.stop();
      // A follower waiting for changes is woken to find the feed closed.
      for (const followers of subscribers.values()) for (const deliver of followers) deliver([]);
      if (open > 0) await new Promise<void>((resolve) => (allFreed = resolve));
      await stopping;
    },
  };
}
