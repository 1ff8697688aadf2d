import { createClient } from 'redis';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { customerViewAfter, customerViewAnswer, storedPersonalData, type CustomerViewDocument, type OpenedPersonalData } from './customer-view-document.ts';
import { erasedText } from '../../privacy/erased.ts';
import { erasedApplicant, type Applicant } from './events.ts';
import { isSealed } from '../../privacy/sealing.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import type { RedisErrors } from '../../platform/redis-errors.ts';
import { byApplication, decodeApplicationEvents, erasedApplications } from './application-events.ts';
import { applicationEventDefinitions } from './events.ts';
import { PersonalDataErased } from '../data-subjects/index.ts';
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

/**
 * Views in Redis (see redisValue), expiring after a day without a write (the database has
 * them all). Redis away is never a reader's failure: a read that fails is a miss (the
 * database answers), a fill that fails is skipped, and every error goes to `errors`. Views
 * the projector could not write meanwhile would leave older ones behind, so the copy is
 * cleared once Redis is back, and read past until then.
 */
export async function redisViewCache(
  url: string,
  { errors, ttlSeconds = 86_400 }: { readonly errors: RedisErrors; readonly ttlSeconds?: number },
): Promise<ViewCache> {
  // No per-command timeout: node-redis arms an AbortSignal timer for every command otherwise,
  // a measurable share of a query's CPU. Without the offline queue a command fails at once
  // while Redis is away, rather than waiting for it with the request.
  const redis = createClient({ url, commandOptions: { timeout: 0 }, disableOfflineQueue: true });
  /** Views were lost on the way to Redis: what it holds may be older than the database. */
  let behind = false;
  /** Empties the copy and trusts it again; while it cannot, the copy is read past. */
  async function clear() {
    try {
      for await (const keys of redis.scanIterator({ MATCH: `${redisPrefix}*`, COUNT: 1_000 })) {
        if (keys.length > 0) await redis.unlink(keys);
      }
      behind = false;
    } catch (error) {
      behind = true;
      errors.error(error);
    }
  }
  redis.on('error', errors.error);
  redis.on('ready', () => {
    errors.ready();
    if (behind) void clear();
  });
  await redis.connect();
  return {
    kind: 'Redis',
    async get(applicationId) {
      if (behind) return undefined;
      try {
        const value = await redis.get(redisPrefix + applicationId);
        return value ? fromRedisValue(value) : undefined;
      } catch (error) {
        errors.error(error);
        return undefined;
      }
    },
    async setMany(entries) {
      if (entries.size === 0) return;
      const batch = redis.multi();
      for (const [applicationId, view] of entries) batch.set(redisPrefix + applicationId, redisValue(view), { EX: ttlSeconds });
      try {
        // A pipeline waits for a reconnection whatever the offline queue says: it would hold the projector up.
        if (!redis.isReady) throw new Error('Redis is not connected: views not written to the hot copy');
        await batch.execAsPipeline();
      } catch (error) {
        behind = true;
        errors.error(error);
      }
    },
    async fill(applicationId, view) {
      try {
        await redis.set(redisPrefix + applicationId, redisValue(view), { NX: true, EX: ttlSeconds });
      } catch (error) {
        errors.error(error);
      }
    },
    clear,
    async close() {
      redis.destroy();
    },
  };
}

type Row = { application_id: string; document: CustomerViewDocument; version: number; owner: string | null };
type Written = Row & { status: string; position: number; updated_at: string };

/** The documents' personal data opened, or read as erased where the key is gone, with the keys `personalData` reads. */
export async function openPersonalData(
  personalData: Pick<PersonalDataVault, 'open'>,
  documents: readonly CustomerViewDocument[],
): Promise<OpenedPersonalData[]> {
  const stored = documents.map(storedPersonalData);
  const fields = stored.flatMap(({ applicant, reason }) => [applicant, reason]);
  const opened = await personalData.open(fields.map((value) => (isSealed(value) ? value : undefined)));
  /** A sealed field opened, or its erased form where the key is gone; any other value as it was stored. */
  const read = (i: number, erased: unknown) => (isSealed(fields[i]) ? (opened[i] ?? erased) : fields[i]);
  return stored.map((_, i) => ({
    applicant: read(2 * i, erasedApplicant) as Applicant,
    reason: (read(2 * i + 1, erasedText) ?? null) as string | null,
  }));
}

/** The answers to these rows, their personal data opened with the keys `personalData` reads. */
async function viewsOf(personalData: Pick<PersonalDataVault, 'open'>, rows: readonly Row[]): Promise<Map<string, CachedView>> {
  const opened = await openPersonalData(
    personalData,
    rows.map((row) => row.document),
  );
  return new Map(
    rows.map((row, i) => [
      row.application_id,
      { version: row.version, owner: row.owner, body: JSON.stringify(customerViewAnswer(row.document, row.version, opened[i]!)) },
    ]),
  );
}

/**
 * The customer view (GET /api/applications/:id): the read model's own document of each
 * application (see CustomerViewDocument), folded from its events, and the answer the
 * applicant reads made from it. A batch loads its applications' documents in one query
 * and writes them back in one statement; the answers for the hot copy are made with one
 * look-up of the keys.
 */
export function customerViewProjection(
  cache: ViewCache | undefined,
  personalData: Pick<PersonalDataVault, 'within'>,
): Projection<ReadonlyMap<string, CachedView>> {
  return {
    name: 'customer-view',
    tables: ['rm_applications'],
    events: [...applicationEventDefinitions, PersonalDataErased],
    rowsPerStream: true,
    crossStreamEvents: [PersonalDataErased],
    async apply(tx, events, tables, rebuilding) {
      const groups = byApplication(decodeApplicationEvents(events));
      const ids = [...groups.keys()];
      const rows = await tx.query<Row>(
        `SELECT application_id::text, document, version, owner FROM ${tables.rm_applications} WHERE application_id = ANY($1::uuid[])`,
        [ids],
      );
      const known = new Map(rows.map((row) => [row.application_id, row]));
      const written: Written[] = [];
      for (const [applicationId, facts] of groups) {
        const before = known.get(applicationId);
        let document = before?.document;
        let version = before?.version ?? 0;
        let owner = before?.owner ?? null;
        let position = 0;
        for (const fact of facts) {
          // A batch never holds an event twice, but a version already applied is skipped all the same.
          if (fact.stored.streamVersion <= version) continue;
          // The application is its submitter's.
          if (fact.stored.streamVersion === 1) owner = fact.stored.metadata.actor;
          document = customerViewAfter(document, fact);
          version = fact.stored.streamVersion;
          position = fact.stored.position;
        }
        if (!document || position === 0) continue;
        written.push({ application_id: applicationId, status: document.status, version, document, owner, position, updated_at: document.updatedAt });
      }
      if (written.length > 0) await upsert(tx, tables.rm_applications!, written);
      if (rebuilding) return new Map();
      // An erasure in the batch: the views of the applications it names now read as erased (their key is gone).
      const erased = erasedApplications(events).filter((applicationId) => !written.some((row) => row.application_id === applicationId));
      const unchanged =
        erased.length === 0
          ? []
          : await tx.query<Row>(`SELECT application_id::text, document, version, owner FROM ${tables.rm_applications} WHERE application_id = ANY($1::uuid[])`, [
              erased,
            ]);
      // The keys are read in `tx`: on PGlite's one connection, nothing else can read them meanwhile.
      return viewsOf(personalData.within(tx), [...written, ...unchanged]);
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
  // that document is most of the statement's time, so only the read model's document is
  // stored: the answer the applicant reads is made from it (customerViewAnswer) when it is read.
  await tx.query(
    `INSERT INTO ${table} (application_id, status, version, document, owner, position, updated_at)
     SELECT application_id, status, version, document, owner, position, updated_at
       FROM json_to_recordset($1::json)
         AS r(application_id uuid, status text, version integer, document json, owner text, position bigint, updated_at timestamptz)
     ON CONFLICT (application_id) DO UPDATE
       SET status = EXCLUDED.status, version = EXCLUDED.version, document = EXCLUDED.document, owner = EXCLUDED.owner,
           position = EXCLUDED.position, updated_at = EXCLUDED.updated_at`,
    [JSON.stringify(written)],
  );
}

/** The durable copy, for a miss in the hot copy and for reads that must see a given position. */
export async function storedView(db: SqlQueryable, personalData: Pick<PersonalDataVault, 'open'>, applicationId: string): Promise<CachedView | undefined> {
  const [row] = await db.query<Row>('SELECT application_id::text, document, version, owner FROM rm_applications WHERE application_id = $1', [applicationId]);
  return row && (await viewsOf(personalData, [row])).get(row.application_id);
}
