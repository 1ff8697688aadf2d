import { createClient } from 'redis';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { applicationDecider, type ApplicationState } from './decider.ts';
import { customerView } from './view.ts';
import { erasedText } from '../../privacy/erased.ts';
import { erasedApplicant, type Applicant } from './events.ts';
import { isSealed } from '../../privacy/sealing.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import {
  applicationEventTypes,
  byApplication,
  decodeApplicationEvents,
  erasedApplications,
  erasureEventType,
  sealedApplicant,
  type ApplicationFact,
} from './application-events.ts';
import type { Projection } from '../../platform/projections/projector.ts';

/** A view ready to send: the JSON text, the version it is at (the ETag), and whom it belongs to. */
export type CachedView = {
  readonly version: number;
  readonly body: string;
  /** The subject who submitted the application; an applicant is shown their own views only. */
  readonly owner: string | null;
};

/**
 * The hot copy of the customer view, in front of its durable copy in PostgreSQL:
 * memory in one process, Redis when several query processes share it.
 */
export type ViewCache = {
  readonly kind: string;
  get(applicationId: string): Promise<CachedView | undefined> | CachedView | undefined;
  setMany(views: ReadonlyMap<string, CachedView>): Promise<void> | void;
  /**
   * After a miss, a reader puts what it read from the database, unless a view is there
   * already: the projector may have written a newer one meanwhile, which must win.
   */
  fill(applicationId: string, view: CachedView): Promise<void> | void;
  clear(): Promise<void>;
  close(): Promise<void>;
};

/** Keeps the most recently written views, up to `maxEntries`. */
export function memoryViewCache(maxEntries = 200_000): ViewCache {
  const views = new Map<string, CachedView>();
  return {
    kind: 'memory',
    get: (applicationId) => views.get(applicationId),
    setMany(entries) {
      for (const [applicationId, view] of entries) {
        // Re-inserting moves the key to the end: the oldest written go first when full.
        views.delete(applicationId);
        views.set(applicationId, view);
      }
      for (const oldest of views.keys()) {
        if (views.size <= maxEntries) break;
        views.delete(oldest);
      }
    },
    fill(applicationId, view) {
      const present = views.get(applicationId);
      if (!present || present.version < view.version) views.set(applicationId, view);
    },
    clear: async () => views.clear(),
    close: async () => views.clear(),
  };
}

const redisPrefix = 'mutuo:view:';

/** `<version>|<owner, URI-encoded>|<json>`: the first two bars are the separators, whatever the JSON holds. */
function redisValue(view: CachedView): string {
  return `${view.version}|${view.owner === null ? '' : encodeURIComponent(view.owner)}|${view.body}`;
}

function fromRedisValue(value: string): CachedView {
  const first = value.indexOf('|');
  const second = value.indexOf('|', first + 1);
  const owner = value.slice(first + 1, second);
  return { version: Number(value.slice(0, first)), owner: owner === '' ? null : decodeURIComponent(owner), body: value.slice(second + 1) };
}

/** Views in Redis (see redisValue), expiring after a day without a write (the database has them all). */
export async function redisViewCache(url: string, ttlSeconds = 86_400): Promise<ViewCache> {
  // No per-command timeout: node-redis arms an AbortSignal timer for every command otherwise,
  // a measurable share of a query's CPU; a lost connection still fails the command.
  const redis = createClient({ url, commandOptions: { timeout: 0 } });
  redis.on('error', () => undefined);
  await redis.connect();
  return {
    kind: 'Redis',
    async get(applicationId) {
      const value = await redis.get(redisPrefix + applicationId);
      return value ? fromRedisValue(value) : undefined;
    },
    async setMany(entries) {
      if (entries.size === 0) return;
      const batch = redis.multi();
      for (const [applicationId, view] of entries) batch.set(redisPrefix + applicationId, redisValue(view), { EX: ttlSeconds });
      await batch.execAsPipeline();
    },
    async fill(applicationId, view) {
      await redis.set(redisPrefix + applicationId, redisValue(view), { NX: true, EX: ttlSeconds });
    },
    async clear() {
      for await (const keys of redis.scanIterator({ MATCH: `${redisPrefix}*`, COUNT: 1_000 })) {
        if (keys.length > 0) await redis.unlink(keys);
      }
    },
    async close() {
      redis.destroy();
    },
  };
}

/**
 * The application's state as the read model stores it: the applicant, and the reason it
 * was rejected or withdrawn (free text about the person), kept as their events carried
 * them, sealed; opened when a view is made. The applicant's erasure leaves the row
 * unreadable where it held their data, with nothing to scrub.
 */
type StoredState = ApplicationState;

type Row = { application_id: string; state: StoredState; version: number; owner: string | null };
type Written = {
  application_id: string;
  status: string;
  version: number;
  state: StoredState;
  owner: string | null;
  position: number;
  updated_at: string;
};

/** Personal data an event puts in the state, as the event stored it: the sealed applicant, the sealed reason (or its erased form). */
function keepSealed(state: ApplicationState, fact: ApplicationFact): StoredState {
  if (state.status === 'none') return state;
  if (fact.event.type === 'MortgageApplicationSubmitted') {
    return { ...state, file: { ...state.file, applicant: sealedApplicant(fact.stored) as unknown as Applicant } };
  }
  if (
    (state.status === 'rejected' || state.status === 'withdrawn') &&
    (fact.event.type === 'ApplicationRejected' || fact.event.type === 'ApplicationWithdrawn')
  ) {
    const sealed = fact.stored.sealed?.reason;
    return sealed ? { ...state, reason: sealed as unknown as string } : state;
  }
  return state;
}

/** The stored state with its sealed fields opened, or read as erased where the key is gone: what a view is made from. */
export async function openStates(personalData: Pick<PersonalDataVault, 'open'>, states: readonly StoredState[]): Promise<ApplicationState[]> {
  const reasonOf = (state: StoredState): unknown => (state.status === 'rejected' || state.status === 'withdrawn' ? state.reason : undefined);
  const fields = states.flatMap((state) => (state.status === 'none' ? [undefined, undefined] : [state.file.applicant, reasonOf(state)]));
  const opened = await personalData.open(fields.map((value) => (isSealed(value) ? value : undefined)));
  /** A sealed field opened, or its erased form where the key is gone; any other value as it was stored. */
  const read = (i: number, erased: unknown) => (isSealed(fields[i]) ? (opened[i] ?? erased) : fields[i]);
  return states.map((state, i) => {
    if (state.status === 'none') return state;
    const file = { ...state.file, applicant: read(2 * i, erasedApplicant) as Applicant };
    if (state.status === 'rejected' || state.status === 'withdrawn') return { ...state, file, reason: read(2 * i + 1, erasedText) as string };
    return { ...state, file };
  });
}

const viewOf = (state: Exclude<ApplicationState, { status: 'none' }>, version: number, owner: string | null): CachedView => ({
  version,
  owner,
  body: JSON.stringify(customerView(state, version)),
});

/**
 * The customer view (GET /api/applications/:id): the application's state, evolved by
 * the aggregate's own evolve with each of its events, and the view of it the applicant
 * reads. A batch loads its applications' states in one query and writes them back in one
 * statement; the views for the hot copy are made with one look-up of the keys.
 */
export function customerViewProjection(
  cache: ViewCache | undefined,
  personalData: Pick<PersonalDataVault, 'within'>,
): Projection<ReadonlyMap<string, CachedView>> {
  /** The views of these rows, their personal data opened with the keys read in `tx` (on PGlite's one connection, nothing else can read them meanwhile). */
  async function views(
    tx: SqlQueryable,
    rows: readonly { application_id: string; state: StoredState; version: number; owner: string | null }[],
  ): Promise<Map<string, CachedView>> {
    const live = rows.filter((row) => row.state.status !== 'none');
    const states = await openStates(
      personalData.within(tx),
      live.map((row) => row.state),
    );
    const made = new Map<string, CachedView>();
    live.forEach((row, i) => {
      const state = states[i]!;
      if (state.status !== 'none') made.set(row.application_id, viewOf(state, row.version, row.owner));
    });
    return made;
  }

  return {
    name: 'customer-view',
    tables: ['rm_applications'],
    eventTypes: [...applicationEventTypes, erasureEventType],
    rowsPerStream: true,
    crossStreamTypes: [erasureEventType],
    async apply(tx, events, tables, rebuilding) {
      const groups = byApplication(decodeApplicationEvents(events));
      const ids = [...groups.keys()];
      const rows = await tx.query<Row>(
        `SELECT application_id::text, state, version, owner FROM ${tables.rm_applications} WHERE application_id = ANY($1::uuid[])`,
        [ids],
      );
      const known = new Map(rows.map((row) => [row.application_id, row]));
      const written: Written[] = [];
      for (const [applicationId, facts] of groups) {
        const before = known.get(applicationId);
        let current: StoredState = before?.state ?? applicationDecider.initialState;
        let version = before?.version ?? 0;
        let owner = before?.owner ?? null;
        let position = 0;
        for (const fact of facts) {
          // A batch never holds an event twice, but a version already applied is skipped all the same.
          if (fact.stored.streamVersion <= version) continue;
          // The application is its submitter's.
          if (fact.stored.streamVersion === 1) owner = fact.stored.metadata.actor;
          current = keepSealed(applicationDecider.evolve(current, fact.event), fact);
          version = fact.stored.streamVersion;
          position = fact.stored.position;
        }
        if (current.status === 'none' || position === 0) continue;
        written.push({ application_id: applicationId, status: current.status, version, state: current, owner, position, updated_at: current.file.updatedAt });
      }
      if (written.length > 0) await upsert(tx, tables.rm_applications!, written);
      if (rebuilding) return new Map();
      // An erasure in the batch: the views of the applications it names now read as erased (their key is gone).
      const erased = erasedApplications(events).filter((applicationId) => !written.some((row) => row.application_id === applicationId));
      const unchanged =
        erased.length === 0
          ? []
          : await tx.query<Row>(`SELECT application_id::text, state, version, owner FROM ${tables.rm_applications} WHERE application_id = ANY($1::uuid[])`, [
              erased,
            ]);
      return views(tx, [...written, ...unchanged]);
    },
    // After the commit: a crash in between leaves the hot copy behind, and the next
    // process to write the projection clears it before its first batch.
    afterCommit: (made) => cache?.setMany(made),
    forgetHotCopy: async () => cache?.clear(),
  };
}

async function upsert(tx: SqlQueryable, table: string, written: readonly Written[]): Promise<void> {
  // One json (not jsonb) document for the batch, and a json column: PostgreSQL only
  // checks and slices the text, where jsonb would convert it all and back again. Parsing
  // that document is most of the statement's time, so only the state is stored: the
  // view the applicant reads is made from it (customerView) when it is read.
  await tx.query(
    `INSERT INTO ${table} (application_id, status, version, state, owner, position, updated_at)
     SELECT application_id, status, version, state, owner, position, updated_at
       FROM json_to_recordset($1::json)
         AS r(application_id uuid, status text, version integer, state json, owner text, position bigint, updated_at timestamptz)
     ON CONFLICT (application_id) DO UPDATE
       SET status = EXCLUDED.status, version = EXCLUDED.version, state = EXCLUDED.state, owner = EXCLUDED.owner,
           position = EXCLUDED.position, updated_at = EXCLUDED.updated_at`,
    [JSON.stringify(written)],
  );
}

/** The durable copy, for a miss in the hot copy and for reads that must see a given position. */
export async function storedView(db: SqlQueryable, personalData: Pick<PersonalDataVault, 'open'>, applicationId: string): Promise<CachedView | undefined> {
  const [row] = await db.query<{ version: number; state: StoredState; owner: string | null }>(
    'SELECT version, state, owner FROM rm_applications WHERE application_id = $1',
    [applicationId],
  );
  if (!row || row.state.status === 'none') return undefined;
  const [state] = await openStates(personalData, [row.state]);
  return state && state.status !== 'none' ? viewOf(state, row.version, row.owner) : undefined;
}
