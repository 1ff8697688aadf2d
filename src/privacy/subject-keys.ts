import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { SqlQueryable } from '../eventstore/sql-client.ts';
import { sealingKeyBytes } from './sealing.ts';

/** Where data subjects' keys are held: this SQL table, or an external KMS implementing the same port. */
export interface SubjectKeys {
  /** The subject of this tax code with its key; created (new random 32-byte key) on first use. Concurrency-safe: two callers at once get the same subject. */
  subjectFor(taxCode: string): Promise<{ subjectId: string; key: Uint8Array }>;
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
  /** Crypto-shredding: forgets the key and the tax code digest, in the caller's transaction (so it commits with the erasure's event). Answers false if the subject was already erased or is unknown. */
  destroy(tx: SqlQueryable, subjectId: string): Promise<boolean>;
  /**
   * The same keys, read and written in the caller's transaction: a key created there rolls
   * back with it, and (on PGlite's one connection) nothing waits for the transaction to end.
   * A KMS may hold the keys elsewhere, but records the streams in `db`.
   */
  within(db: SqlQueryable): SubjectKeys;
}

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

  async function heldSubject(digest: string): Promise<{ subjectId: string; key: Uint8Array } | undefined> {
    const [row] = await db.query<{ subject_id: string; data_key: unknown }>(
      'SELECT subject_id, data_key FROM mutuo_subject_keys WHERE tax_code_digest = $1',
      [digest],
    );
    return row ? { subjectId: row.subject_id, key: toKey(row.data_key) } : undefined;
  }

  return {
    async subjectFor(taxCode) {
      const digest = digestOf(taxCode);
      const held = await heldSubject(digest);
      if (held) return held;
      const [inserted] = await db.query<{ subject_id: string; data_key: unknown }>(
        `INSERT INTO mutuo_subject_keys (subject_id, tax_code_digest, data_key) VALUES ($1, $2, $3)
         ON CONFLICT (tax_code_digest) DO NOTHING
         RETURNING subject_id, data_key`,
        [randomUUID(), digest, randomBytes(sealingKeyBytes)],
      );
      if (inserted) return { subjectId: inserted.subject_id, key: toKey(inserted.data_key) };
      // Another caller inserted it first: ON CONFLICT waited for their commit, and this
      // second statement's snapshot, taken after, sees their row.
      const winner = await heldSubject(digest);
      if (!winner) throw new Error('the subject of a tax code was erased while it was being created');
      return winner;
    },

    async findSubject(taxCode) {
      const [row] = await db.query<{ subject_id: string }>(
        'SELECT subject_id FROM mutuo_subject_keys WHERE tax_code_digest = $1 AND erased_at IS NULL',
        [digestOf(taxCode)],
      );
      return row?.subject_id;
    },

    async keysOf(subjectIds) {
      const keys = new Map<string, Uint8Array | undefined>(subjectIds.map((subjectId) => [subjectId, undefined]));
      // A malformed id names no subject; leaving it out spares the query a cast error. The
      // ids travel as one JSON array, which both drivers pass alike.
      const wanted = [...new Set(subjectIds.filter((subjectId) => uuidPattern.test(subjectId)).map((subjectId) => subjectId.toLowerCase()))];
      if (wanted.length === 0) return keys;
      const rows = await db.query<{ subject_id: string; data_key: unknown }>(
        `SELECT subject_id, data_key FROM mutuo_subject_keys
          WHERE subject_id IN (SELECT value::uuid FROM jsonb_array_elements_text($1::jsonb)) AND data_key IS NOT NULL`,
        [JSON.stringify(wanted)],
      );
      const found = new Map(rows.map((row) => [row.subject_id, toKey(row.data_key)]));
      for (const subjectId of subjectIds) keys.set(subjectId, found.get(subjectId.toLowerCase()));
      return keys;
    },

    async recordStream(subjectId, streamId) {
      if (!uuidPattern.test(subjectId)) return false;
      // One statement: the share lock on the subject's row waits for an erasure holding it,
      // then sees it erased and inserts nothing.
      const [row] = await db.query<{ held: number }>(
        `WITH held AS (SELECT subject_id FROM mutuo_subject_keys WHERE subject_id = $1 AND erased_at IS NULL FOR SHARE),
              recorded AS (
                INSERT INTO mutuo_subject_streams (subject_id, stream_id) SELECT subject_id, $2 FROM held
                ON CONFLICT (subject_id, stream_id) DO NOTHING
              )
         SELECT count(*)::int AS held FROM held`,
        [subjectId, streamId],
      );
      return row?.held === 1;
    },

    async streamsOf(subjectId) {
      if (!uuidPattern.test(subjectId)) return [];
      const rows = await db.query<{ stream_id: string; recorded_at: Date | string }>(
        'SELECT stream_id, recorded_at FROM mutuo_subject_streams WHERE subject_id = $1 ORDER BY stream_id',
        [subjectId],
      );
      return rows.map((row) => ({ streamId: row.stream_id, recordedAt: new Date(row.recorded_at) }));
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
}
