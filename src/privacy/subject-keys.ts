import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { SqlClient, SqlQueryable } from '../platform/sql/sql-client.ts';
import type { SubjectRow } from '../platform/eventstore/personal-data.ts';
import { sealingKeyBytes } from './sealing.ts';

/** Where data subjects' keys are held: this SQL table, or an external KMS implementing the same port. */
export interface SubjectKeys {
  /** The subject of this tax code with its key; created (new random 32-byte key) on first use. Concurrency-safe: two callers at once get the same subject. */
  subjectFor(taxCode: string): Promise<{ subjectId: string; key: Uint8Array }>;
  /**
   * What sealing needs, in one statement: the subject and key of each tax code (made on
   * first use), each with the given streams recorded for it, by tax code as given. A tax
   * code is missing from the answer where its subject was being erased, or made by another
   * caller, meanwhile: ask again for those (a new subject is then made, or theirs found).
   */
  subjectsSealing(requests: readonly SealingRequest[]): Promise<ReadonlyMap<string, { subjectId: string; key: Uint8Array }>>;
  /**
   * Keys kept in the event store's own database: the statement that finds or makes the
   * subjects can then be part of the statement that appends their events (SqlEventStore),
   * one per batch. A KMS leaves this out, and subjectsSealing is asked first instead.
   */
  readonly inDatabase?: {
    /**
     * A new subject and key for each tax code, made here, and the CTE (reading its
     * parameter as `$2`) that inserts each unless its tax code is held, answering the held
     * one then, with the streams recorded either way (as subjectsSealing does).
     */
    candidates(requests: readonly SealingRequest[]): { readonly byTaxCode: ReadonlyMap<string, Subject>; readonly cte: string; readonly param: unknown };
    /** The subjects such a CTE answered, by the tax codes asked (one missing was being made elsewhere: ask again). */
    answered(taxCodes: readonly string[], rows: readonly SubjectRow[]): ReadonlyMap<string, Subject>;
  };
  /**
   * For each stream, the held (not erased) subject whose data it holds, with their key; a
   * stream that holds nobody's data, or only an erased person's, maps to undefined.
   */
  subjectsOfStreams(streamIds: readonly string[]): Promise<ReadonlyMap<string, Subject | undefined>>;
  /** The subject of a tax code if one is held (not erased), else undefined. */
  findSubject(taxCode: string): Promise<string | undefined>;
  /** Keys of these subjects in one query; an erased or unknown subject maps to undefined. */
  keysOf(subjectIds: readonly string[]): Promise<ReadonlyMap<string, Uint8Array | undefined>>;
  /**
   * Records that a stream holds personal data of the subject (idempotent), before the data
   * is written. Answers false, recording nothing, when the subject was erased meanwhile:
   * the data must then be sealed for a new subject (subjectFor again). An erasure holding
   * the subject's row waits for this, and this for it, so one of them sees the other.
   */
  recordStream(subjectId: string, streamId: string): Promise<boolean>;
  /** The streams recorded for the subject, by stream id, with when each was first recorded. */
  streamsOf(subjectId: string): Promise<SubjectStream[]>;
  /**
   * Forgets destroyed keys for good, on disk too: an UPDATE leaves the row's old version,
   * key and all, in the table's pages until they are overwritten. Run outside a transaction,
   * after the erasures' commits; a KMS that deletes keys itself leaves this out.
   */
  readonly shredDestroyed?: () => Promise<void>;
  /** Crypto-shredding: forgets the key and the tax code digest, in the caller's transaction (so it commits with the erasure's event). Answers false if the subject was already erased or is unknown. */
  destroy(tx: SqlQueryable, subjectId: string): Promise<boolean>;
  /**
   * The same keys, read and written in the caller's transaction: a key created there rolls
   * back with it, and (on PGlite's one connection) nothing waits for the transaction to end.
   * A KMS may hold the keys elsewhere, but records the streams in `db`.
   */
  within(db: SqlQueryable): SubjectKeys;
}

export type Subject = { readonly subjectId: string; readonly key: Uint8Array };

export type SealingRequest = { readonly taxCode: string; readonly streamId: string };

export type SubjectStream = { readonly streamId: string; readonly recordedAt: Date };

export type SqlSubjectKeysOptions = {
  /** The HMAC secret of the tax code digests: without it, the lookup column cannot be matched against a list of tax codes. */
  readonly digestSecret: string;
};

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One spelling per tax code, whatever the case and spacing it was typed with. */
export function normalizeTaxCode(taxCode: string): string {
  return taxCode.replace(/\s+/g, '').toUpperCase();
}

/** Both drivers hand bytea back as bytes (pg a Buffer, PGlite a Uint8Array): a plain Uint8Array copy either way. */
function toKey(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== sealingKeyBytes) throw new Error(`a stored subject key is not ${sealingKeyBytes} bytes`);
  return new Uint8Array(value);
}

/**
 * Keys in the platform's own database (tables of migration 012), on PostgreSQL or PGlite.
 * A key destroyed here stays readable in backups and WAL archives taken before, until
 * they expire: their retention bounds how long an erasure takes to be complete.
 */
export function sqlSubjectKeys(db: SqlQueryable, options: SqlSubjectKeysOptions): SubjectKeys {
  if (options.digestSecret === '') throw new RangeError('the tax code digest secret must not be empty');
  const digestOf = (taxCode: string): string => createHmac('sha256', options.digestSecret).update(normalizeTaxCode(taxCode), 'utf8').digest('hex');

  type KeyRow = SubjectRow;

  /**
   * For each digest, a new subject and key with its streams recorded, or (ON CONFLICT)
   * the held subject's row with the streams added to it. An erasure holding that row
   * (FOR UPDATE) is waited for; the row it erased no longer has the digest, and the
   * statement then makes a new subject. A stream keeps the time it was first recorded.
   */
  const upsertSubjects = (param: string) => `
    INSERT INTO mutuo_subject_keys AS k (subject_id, tax_code_digest, data_key, streams)
    SELECT w.subject_id, w.digest, decode(w.data_key, 'base64'),
           (SELECT coalesce(jsonb_object_agg(stream, now()), '{}'::jsonb) FROM jsonb_array_elements_text(w.streams) AS stream)
      FROM jsonb_to_recordset(${param}::jsonb) AS w(digest text, subject_id uuid, data_key text, streams jsonb)
     ORDER BY w.digest
    ON CONFLICT (tax_code_digest) DO UPDATE SET streams = EXCLUDED.streams || k.streams
    RETURNING k.subject_id, k.tax_code_digest, k.data_key`;
  const inStatement = upsertSubjects('$2');

  /** The digests asked for, each with a new subject and key and the streams to record. */
  function candidates(requests: readonly { readonly taxCode: string; readonly streamId?: string }[]) {
    const digests = new Map<string, string>();
    const wanted = new Map<string, { digest: string; subject_id: string; key: Uint8Array; streams: string[] }>();
    for (const { taxCode, streamId } of requests) {
      const digest = digests.get(taxCode) ?? digestOf(taxCode);
      digests.set(taxCode, digest);
      let entry = wanted.get(digest);
      if (!entry) wanted.set(digest, (entry = { digest, subject_id: randomUUID(), key: randomBytes(sealingKeyBytes), streams: [] }));
      if (streamId !== undefined && !entry.streams.includes(streamId)) entry.streams.push(streamId);
    }
    const param = JSON.stringify(
      [...wanted.values()]
        .sort((a, b) => (a.digest < b.digest ? -1 : 1))
        .map(({ digest, subject_id, key, streams }) => ({ digest, subject_id, data_key: Buffer.from(key).toString('base64'), streams })),
    );
    const byTaxCode = new Map([...digests].map(([taxCode, digest]) => [taxCode, { subjectId: wanted.get(digest)!.subject_id, key: wanted.get(digest)!.key }]));
    return { digests, byTaxCode, param };
  }

  function answered(digests: ReadonlyMap<string, string>, rows: readonly KeyRow[]): Map<string, Subject> {
    const byDigest = new Map(rows.map((row) => [row.tax_code_digest, { subjectId: row.subject_id, key: toKey(row.data_key) }]));
    const found = new Map<string, Subject>();
    for (const [taxCode, digest] of digests) {
      const subject = byDigest.get(digest);
      if (subject) found.set(taxCode, subject);
    }
    return found;
  }

  const keys: SubjectKeys = {
    async subjectFor(taxCode) {
      for (let attempt = 0; attempt < 3; attempt++) {
        const { digests, param } = candidates([{ taxCode }]);
        const subject = answered(digests, await db.query<KeyRow>(upsertSubjects('$1'), [param])).get(taxCode);
        if (subject) return subject;
      }
      throw new Error('the subject of a tax code was erased or made elsewhere three times over while it was looked up');
    },

    async subjectsSealing(requests) {
      if (requests.length === 0) return new Map();
      const { digests, param } = candidates(requests);
      return answered(digests, await db.query<KeyRow>(upsertSubjects('$1'), [param]));
    },

    inDatabase: {
      candidates(requests) {
        const { byTaxCode, param } = candidates(requests);
        return { byTaxCode, cte: inStatement, param };
      },
      answered: (taxCodes, rows) => answered(new Map(taxCodes.map((taxCode) => [taxCode, digestOf(taxCode)])), rows),
    },

    async findSubject(taxCode) {
      const [row] = await db.query<{ subject_id: string }>('SELECT subject_id FROM mutuo_subject_keys WHERE tax_code_digest = $1 AND erased_at IS NULL', [
        digestOf(taxCode),
      ]);
      return row?.subject_id;
    },

    async subjectsOfStreams(streamIds) {
      const subjects = new Map<string, Subject | undefined>(streamIds.map((streamId) => [streamId, undefined]));
      if (streamIds.length === 0) return subjects;
      // The streams' GIN index (migration 018) finds each stream's subject without a scan.
      const rows = await db.query<{ stream_id: string; subject_id: string; data_key: unknown }>(
        `SELECT s.stream_id, k.subject_id, k.data_key
           FROM jsonb_array_elements_text($1::jsonb) AS s(stream_id)
           JOIN mutuo_subject_keys k ON k.streams ? s.stream_id AND k.erased_at IS NULL`,
        [JSON.stringify([...new Set(streamIds)])],
      );
      for (const row of rows) subjects.set(row.stream_id, { subjectId: row.subject_id, key: toKey(row.data_key) });
      return subjects;
    },

    async keysOf(subjectIds) {
      const keys = new Map<string, Uint8Array | undefined>(subjectIds.map((subjectId) => [subjectId, undefined]));
      // A malformed id names no subject; leaving it out spares the query a cast error. The
      // ids travel as one JSON array, which both drivers pass alike, made an array for
      // `= ANY` so that the primary key's index is used however many rows the table has.
      const wanted = [...new Set(subjectIds.filter((subjectId) => uuidPattern.test(subjectId)).map((subjectId) => subjectId.toLowerCase()))];
      if (wanted.length === 0) return keys;
      const rows = await db.query<{ subject_id: string; data_key: unknown }>(
        `SELECT subject_id, data_key FROM mutuo_subject_keys
          WHERE subject_id = ANY (ARRAY(SELECT value::uuid FROM jsonb_array_elements_text($1::jsonb))) AND data_key IS NOT NULL`,
        [JSON.stringify(wanted)],
      );
      const found = new Map(rows.map((row) => [row.subject_id, toKey(row.data_key)]));
      for (const subjectId of subjectIds) keys.set(subjectId, found.get(subjectId.toLowerCase()));
      return keys;
    },

    async recordStream(subjectId, streamId) {
      if (!uuidPattern.test(subjectId)) return false;
      // An update: it waits for an erasure holding the row (FOR UPDATE), then finds it erased.
      const rows = await db.query(
        `UPDATE mutuo_subject_keys SET streams = jsonb_build_object($2::text, now()) || streams
          WHERE subject_id = $1 AND erased_at IS NULL RETURNING 1`,
        [subjectId, streamId],
      );
      return rows.length === 1;
    },

    async streamsOf(subjectId) {
      if (!uuidPattern.test(subjectId)) return [];
      const [row] = await db.query<{ streams: Record<string, string> }>('SELECT streams FROM mutuo_subject_keys WHERE subject_id = $1', [subjectId]);
      return Object.entries(row?.streams ?? {})
        .map(([streamId, recordedAt]) => ({ streamId, recordedAt: new Date(recordedAt) }))
        .sort((a, b) => (a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : 0));
    },

    async destroy(tx, subjectId) {
      if (!uuidPattern.test(subjectId)) return false;
      const rows = await tx.query(
        `UPDATE mutuo_subject_keys SET data_key = NULL, tax_code_digest = NULL, erased_at = now()
          WHERE subject_id = $1 AND erased_at IS NULL
          RETURNING subject_id`,
        [subjectId],
      );
      return rows.length === 1;
    },

    within: (tx) => sqlSubjectKeys(tx, options),
  };
  // Only with a connection of its own: VACUUM cannot run inside a transaction.
  if ('transaction' in db) {
    // Rewritten into new files, and the old ones deleted: no page left holds a destroyed key
    // (only the WAL and backups taken before, until they expire). The table is locked while
    // it is rewritten: a few milliseconds per thousand people.
    return { ...keys, shredDestroyed: async () => (db as SqlClient).exec('VACUUM FULL mutuo_subject_keys') };
  }
  return keys;
}
