import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import { startFollower } from '../runtime/follower.ts';

/**
 * The read horizon: readAll returns only positions below the reader snapshot's xmin (see
 * store.ts), the oldest transaction id still running anywhere in the PostgreSQL cluster.
 * A transaction that holds an xid holds it back, whatever database it runs in: every event
 * committed after it began waits, for the relay, the projector and every consumer alike.
 *
 * The holder is found exactly, not guessed from locks: a snapshot's xmin is the xid of a
 * running transaction (PostgreSQL leaves out only logical decoding and lazy vacuum, which
 * hold none that counts), and that transaction is either a backend, whose xid
 * pg_stat_activity shows as backend_xid, or a prepared transaction, in pg_prepared_xacts.
 * When nothing holds an xid, xmin equals xmax, and there is no holder.
 */
export type HorizonHolder =
  | {
      readonly kind: 'backend';
      readonly xid: string;
      readonly pid: number;
      /** Null for a background process attached to no database. */
      readonly database: string | null;
      readonly user: string | null;
      readonly applicationName: string | null;
      /**
       * Whether the rest was hidden: pg_stat_activity shows another role's state, times and
       * query only to a superuser or a member of pg_read_all_stats (pg_monitor has it).
       */
      readonly detailsHidden: boolean;
      readonly backendType: string | null;
      readonly state: string | null;
      readonly transactionStartedAt: Date | null;
      readonly stateChangedAt: Date | null;
      /** Its current or last statement, whitespace folded, quoted literals left out, cut short (see shownQuery). */
      readonly query: string | null;
    }
  | {
      readonly kind: 'prepared';
      readonly xid: string;
      /** The name it was prepared under: `COMMIT PREPARED 'gid'` or `ROLLBACK PREPARED 'gid'` ends it. */
      readonly gid: string;
      readonly database: string;
      readonly owner: string;
      readonly preparedAt: Date;
    }
  | {
      /**
       * On a standby, the snapshot is made of the primary's transactions: the holder runs
       * there, and is looked up there.
       */
      readonly kind: 'primary';
      readonly xid: string;
    };

export type HorizonReading = {
  /** The database's clock when the snapshot was taken: every age is measured on it. */
  readonly observedAt: Date;
  /** The snapshot's xmin and xmax (transaction ids with their epoch, as decimal text). */
  readonly xmin: string;
  readonly xmax: string;
  /**
   * Who holds the horizon. None when xmin equals xmax (nothing holds an xid), or when the
   * holder ended between the snapshot and the look at who it was: it holds nothing any more.
   */
  readonly holder?: HorizonHolder;
};

/** How much of a blocker's query is shown. */
const queryShownChars = 200;

/**
 * A statement as the log and `mutuo status` show it: whitespace folded, cut to 200
 * characters, and its quoted literals left out ('…'), since another session's query may
 * hold the values of a row (a person's name) where the platform's own use parameters.
 */
export function shownQuery(query: string): string {
  const folded = query
    .replace(/(?:[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|\$([A-Za-z_]\w*)?\$[\s\S]*?\$\1\$)/g, "'…'")
    .replace(/\s+/g, ' ')
    .trim();
  return folded.length > queryShownChars ? `${folded.slice(0, queryShownChars - 1)}…` : folded;
}

type HorizonRow = {
  xmin: string;
  xmax: string;
  observed_at: Date | string;
  in_recovery: boolean;
  pid: number | null;
  datname: string | null;
  usename: string | null;
  application_name: string | null;
  details_visible: boolean | null;
  backend_type: string | null;
  state: string | null;
  xact_start: Date | string | null;
  state_change: Date | string | null;
  query: string | null;
  gid: string | null;
  prepared_database: string | null;
  owner: string | null;
  prepared: Date | string | null;
};

const date = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

/**
 * One statement, one snapshot: the horizon and the backend or prepared transaction whose
 * xid it is. pg_stat_activity's xid is 32 bits (xid), the snapshot's carries the epoch
 * (xid8): the cast keeps the low 32 bits, which name one running transaction, since the
 * running ones span less than 2^31. The privilege test is PostgreSQL's own for showing a
 * backend's details (HAS_PGSTAT_PERMISSIONS): a superuser, a member of pg_read_all_stats,
 * or of the backend's role.
 */
const horizonSql = `
  WITH horizon AS (
    SELECT pg_snapshot_xmin(s) AS xmin, pg_snapshot_xmax(s) AS xmax, clock_timestamp() AS observed_at, pg_is_in_recovery() AS in_recovery
      FROM pg_current_snapshot() AS s
  )
  SELECT h.xmin::text AS xmin, h.xmax::text AS xmax, h.observed_at, h.in_recovery,
         a.pid, a.datname::text AS datname, a.usename::text AS usename, a.application_name,
         (pg_has_role('pg_read_all_stats', 'USAGE') OR coalesce(pg_has_role(a.usesysid, 'USAGE'), false)) AS details_visible,
         a.backend_type, a.state, a.xact_start, a.state_change, a.query,
         p.gid, p.database::text AS prepared_database, p.owner::text AS owner, p.prepared
    FROM horizon AS h
    LEFT JOIN pg_stat_activity AS a ON h.xmin <> h.xmax AND a.backend_xid = h.xmin::xid
    LEFT JOIN pg_prepared_xacts AS p ON h.xmin <> h.xmax AND p.transaction = h.xmin::xid`;

/** Reads the horizon and names its holder (see HorizonHolder). PostgreSQL only: PGlite has one connection, and no one else to hold it. */
export async function readHorizon(db: SqlQueryable): Promise<HorizonReading> {
  const [row] = await db.query<HorizonRow>(horizonSql);
  if (!row) throw new Error('the horizon query answered no row');
  const reading = { observedAt: new Date(row.observed_at), xmin: row.xmin, xmax: row.xmax };
  if (row.xmin === row.xmax) return reading;
  if (row.pid !== null) {
    const visible = row.details_visible === true;
    return {
      ...reading,
      holder: {
        kind: 'backend',
        xid: row.xmin,
        pid: row.pid,
        database: row.datname,
        user: row.usename,
        applicationName: row.application_name,
        detailsHidden: !visible,
        backendType: visible ? row.backend_type : null,
        state: visible ? row.state : null,
        transactionStartedAt: visible ? date(row.xact_start) : null,
        stateChangedAt: visible ? date(row.state_change) : null,
        query: visible && row.query !== null ? shownQuery(row.query) : null,
      },
    };
  }
  if (row.gid !== null) {
    return {
      ...reading,
      holder: { kind: 'prepared', xid: row.xmin, gid: row.gid, database: row.prepared_database!, owner: row.owner!, preparedAt: new Date(row.prepared!) },
    };
  }
  return row.in_recovery ? { ...reading, holder: { kind: 'primary', xid: row.xmin } } : reading;
}

/**
 * The latest time at which the holder certainly held its xid already, from what the
 * catalog says of it: a prepared transaction had it before it was prepared; a backend idle
 * in its transaction got it from a statement that ended at its last change of state. Of a
 * backend running a statement, nothing: the xid may be the statement's own, just taken
 * (its transaction's start says when the transaction began, not when it took an xid).
 */
function heldAtLatest(holder: HorizonHolder): Date | undefined {
  if (holder.kind === 'prepared') return holder.preparedAt;
  if (holder.kind === 'backend' && holder.state === 'idle in transaction' && holder.stateChangedAt) return holder.stateChangedAt;
  return undefined;
}

export type HorizonState = HorizonReading & {
  /**
   * Since when, at the latest, the holder has held the horizon: the first reading that
   * found it, or earlier where the catalog tells (heldAtLatest). Undefined without a holder.
   */
  readonly heldSince?: Date;
  /** How long the horizon has been held by its holder, at least, as of observedAt; 0 without one. */
  readonly heldMs: number;
  /** Held for thresholdMs or longer: readers have been stopped by it for that long. */
  readonly stalled: boolean;
};

/**
 * A change of the watch's verdict, seen by the reading of `at`: a stall began (with its
 * state), or ended (with the state it had last; it ended between that reading and `at`).
 */
export type HorizonChange = { readonly at: Date; readonly began?: HorizonState; readonly ended?: HorizonState };

/**
 * Judges successive readings. A horizon is held as long as the same transaction is its
 * holder; it is a stall once held for thresholdMs. So a busy database, whose oldest
 * transaction changes from one reading to the next, never stalls, and neither does one that
 * is idle (no holder), nor a transaction that took its xid late in a long life (its age
 * counts from when it was first seen holding, or from what the catalog proves).
 */
export function horizonJudge(thresholdMs: number) {
  let last: HorizonState | undefined;
  return {
    observe(reading: HorizonReading): { state: HorizonState; change: HorizonChange } {
      const { holder } = reading;
      let heldSince: Date | undefined;
      if (holder) {
        const sameHolder = last?.holder?.xid === holder.xid && last.heldSince !== undefined;
        const seen = sameHolder ? last!.heldSince! : reading.observedAt;
        const proven = heldAtLatest(holder);
        heldSince = proven && proven < seen ? proven : seen;
      }
      const heldMs = heldSince ? Math.max(0, reading.observedAt.getTime() - heldSince.getTime()) : 0;
      const state: HorizonState = { ...reading, ...(heldSince ? { heldSince } : {}), heldMs, stalled: holder !== undefined && heldMs >= thresholdMs };
      const before = last;
      last = state;
      const sameStall = before?.stalled && state.stalled && before.holder?.xid === state.holder?.xid;
      const change: HorizonChange = {
        at: reading.observedAt,
        ...(!sameStall && before?.stalled ? { ended: before } : {}),
        ...(!sameStall && state.stalled ? { began: state } : {}),
      };
      return { state, change };
    },
  };
}

export type HorizonWatchOptions = {
  readonly client: SqlClient;
  /** Held this long, the horizon is a stall (MUTUO_HORIZON_STALL_MS). */
  readonly thresholdMs: number;
  /** How often the horizon is read (MUTUO_HORIZON_CHECK_MS). */
  readonly intervalMs: number;
  /** Called once when a stall begins, and once when it ends (with the stall's last state). */
  readonly onChange: (change: HorizonChange) => void;
  /** A reading that failed (the database away): it is tried again with backoff. */
  readonly onError?: (error: unknown) => void;
};

export type HorizonWatch = {
  /** The latest judgement, undefined before the first reading. */
  readonly state: () => HorizonState | undefined;
  readonly stop: () => Promise<void>;
};

/** Reads the horizon every intervalMs and reports stalls as they begin and end (see horizonJudge). */
export function startHorizonWatch(options: HorizonWatchOptions): HorizonWatch {
  const judge = horizonJudge(options.thresholdMs);
  let current: HorizonState | undefined;
  const follower = startFollower({
    step: async () => {
      const { state, change } = judge.observe(await readHorizon(options.client));
      current = state;
      if (change.began || change.ended) options.onChange(change);
      return { sleepMs: options.intervalMs };
    },
    backoff: { firstMs: options.intervalMs, maxMs: Math.max(options.intervalMs, 10_000) },
    ...(options.onError ? { onError: options.onError } : {}),
  });
  return { state: () => current, stop: follower.stop };
}

/** The holder in words, for a log line or `mutuo status`. */
export function describeHolder(holder: HorizonHolder, observedAt: Date): string {
  const age = (since: Date | null) => (since ? `${((observedAt.getTime() - since.getTime()) / 1000).toFixed(1)} s` : 'unknown');
  if (holder.kind === 'prepared') {
    return `prepared transaction '${holder.gid}' (database ${holder.database}, owner ${holder.owner}, prepared ${age(holder.preparedAt)} ago): end it with COMMIT PREPARED or ROLLBACK PREPARED`;
  }
  if (holder.kind === 'primary') return `transaction ${holder.xid} of the primary (this database is a standby): look for it there`;
  const where = `database ${holder.database ?? '-'}, user ${holder.user ?? '-'}`;
  if (holder.detailsHidden) {
    return `backend pid ${holder.pid} (${where}; its state, age and query are hidden from this role: grant it pg_monitor or pg_read_all_stats to see them)`;
  }
  return `backend pid ${holder.pid} (${where}, ${holder.state ?? holder.backendType ?? 'no state'}, transaction ${age(holder.transactionStartedAt)} old): ${holder.query ?? ''}`;
}
