import type { PersonalDataPort, SubjectRow, SubjectsToWrite } from './personal-data.ts';
import { isSqlError, type SqlClient, type SqlQueryable } from '../sql/sql-client.ts';
import {
  DuplicateEventIdError,
  WrongExpectedVersionError,
  type AppendResult,
  type EventMetadata,
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  type ReadStreamOptions,
  type StoredEvent,
} from './types.ts';

type EventRow = {
  position: string | number | bigint;
  stream_id: string;
  stream_version: number;
  event_id: string;
  event_type: string;
  schema_version: number;
  data: unknown;
  metadata: EventMetadata;
  recorded_at: Date;
};

const eventColumns = 'position, stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at';

function toPosition(value: string | number | bigint): number {
  const position = Number(value);
  if (!Number.isSafeInteger(position)) throw new RangeError(`position ${String(value)} exceeds the safe integer range`);
  return position;
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    position: toPosition(row.position),
    streamId: row.stream_id,
    streamVersion: row.stream_version,
    eventId: row.event_id,
    type: row.event_type,
    schemaVersion: row.schema_version,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
  };
}

function expectedVersionParam(expected: ExpectedVersion): number | null {
  if (expected === 'any') return null;
  if (expected === 'no_stream') return 0;
  // 0, the version of a stream that has no event, is no_stream: a caller may pass the length of what it read.
  if (!Number.isInteger(expected) || expected < 0) throw new RangeError(`expected version must be >= 0, got ${expected}`);
  return expected;
}

/**
 * One statement appends to one or more streams (a JSON array of appends). Positions are
 * the transaction id × 65536 plus the event's index inside its transaction; versions
 * follow each stream's current one, which is only looked up when it must be checked or
 * continued. An append whose stream is not at its expected version inserts nothing.
 * Writers racing for one version collide on the unique (stream_id, stream_version)
 * index, and a reused event id on the event_id one (23505 both).
 */
const insertEventsSql = (condition: string) => `
  INSERT INTO mutuo_events (position, stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
  SELECT pg_current_xact_id()::text::bigint * 65536 + (a.value->>'firstIndex')::integer + x.ord - 1,
         a.value->>'streamId', stream.version + x.ord::integer,
         (x.e->>'eventId')::uuid, x.e->>'type', (x.e->>'schemaVersion')::integer, x.e->'data', x.e->'metadata'
    FROM jsonb_array_elements($1::jsonb) AS a
   CROSS JOIN LATERAL (
         SELECT CASE WHEN a.value->'expected' = '0'::jsonb THEN 0
                     ELSE (SELECT coalesce(max(e.stream_version), 0) FROM mutuo_events e WHERE e.stream_id = a.value->>'streamId')
                END AS version) stream
   CROSS JOIN LATERAL jsonb_array_elements(a.value->'events') WITH ORDINALITY AS x(e, ord)
   WHERE (a.value->'expected' = 'null'::jsonb OR (a.value->>'expected')::integer = stream.version)${condition}
  RETURNING stream_id, position, stream_version`;

const appendSql = insertEventsSql('');

/**
 * The append with the subjects of its personal data found or made in the same statement
 * (`subjects`: a data-modifying CTE from the keys, see SubjectKeys.inDatabase): an append
 * is written only if every subject its events were sealed for is among those the CTE
 * answers; the others insert nothing, and are sealed again for the subjects answered.
 */
const sealedAppendSql = (subjectsCte: string) => `
  WITH subjects AS (${subjectsCte}),
       inserted AS (${insertEventsSql(`
     AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(a.value->'requires') AS r(id)
                      WHERE r.id::uuid NOT IN (SELECT subject_id FROM subjects))`)})
  SELECT stream_id, position, stream_version, NULL::text AS subject_id, NULL::text AS tax_code_digest, NULL::bytea AS data_key FROM inserted
  UNION ALL
  SELECT NULL, NULL, NULL, subject_id::text, tax_code_digest, data_key FROM subjects`;

export type AppendRequest = {
  readonly streamId: string;
  readonly events: readonly NewEvent[];
  readonly expectedVersion: ExpectedVersion;
};

/**
 * Appends to several distinct streams inside whatever transaction `db` is in.
 * `eventsBefore` is how many events this transaction has appended already (0 for a
 * transaction of its own), so positions stay unique within it. Each result is
 * undefined where that stream was not at its expected version.
 */
export async function insertAppends(db: SqlQueryable, appends: readonly AppendRequest[], eventsBefore: number): Promise<(AppendResult | undefined)[]> {
  return (await insertAppendsWith(db, appends, eventsBefore)).results;
}

/** insertAppends, with the subjects of the appends' sealed data found or made in the same statement. */
export async function insertAppendsWith(
  db: SqlQueryable,
  appends: readonly AppendRequest[],
  eventsBefore: number,
  subjects?: SubjectsToWrite,
): Promise<{ results: (AppendResult | undefined)[]; subjects: SubjectRow[] }> {
  let index = eventsBefore;
  const batch = appends.map(({ streamId, events, expectedVersion }, i) => {
    if (events.length === 0) throw new RangeError('an append needs at least one event');
    const append = {
      streamId,
      expected: expectedVersionParam(expectedVersion),
      firstIndex: index,
      events: events.map((event) => ({
        eventId: event.eventId,
        type: event.type,
        schemaVersion: event.schemaVersion ?? 1,
        data: event.data,
        metadata: event.metadata,
      })),
      ...(subjects ? { requires: subjects.requires[i] ?? [] } : {}),
    };
    index += events.length;
    return append;
  });
  if (index > 65_536) throw new RangeError('more than 65536 events in one transaction');
  if (new Set(appends.map((append) => append.streamId)).size !== appends.length) {
    throw new RangeError('one statement appends to each stream at most once');
  }
  type Row = { stream_id: string | null; position: string | number | bigint | null; stream_version: number | null } & Partial<SubjectRow>;
  const rows = subjects
    ? await db.query<Row>(sealedAppendSql(subjects.cte), [JSON.stringify(batch), subjects.param])
    : await db.query<Row>(appendSql, [JSON.stringify(batch)]);
  const byStream = new Map<string, AppendResult>();
  const subjectRows: SubjectRow[] = [];
  for (const row of rows) {
    if (row.stream_id === null) {
      subjectRows.push({ subject_id: row.subject_id!, tax_code_digest: row.tax_code_digest!, data_key: row.data_key });
      continue;
    }
    const position = toPosition(row.position!);
    const seen = byStream.get(row.stream_id);
    byStream.set(row.stream_id, {
      nextVersion: Math.max(seen?.nextVersion ?? 0, row.stream_version!),
      firstPosition: Math.min(seen?.firstPosition ?? position, position),
      lastPosition: Math.max(seen?.lastPosition ?? position, position),
    });
  }
  return { results: appends.map((append) => byStream.get(append.streamId)), subjects: subjectRows };
}

/** One append inside whatever transaction `db` is in; see insertAppends. */
export async function insertEvents(
  db: SqlQueryable,
  streamId: string,
  events: readonly NewEvent[],
  expectedVersion: ExpectedVersion,
  eventsBefore: number,
): Promise<AppendResult | undefined> {
  const [result] = await insertAppends(db, [{ streamId, events, expectedVersion }], eventsBefore);
  return result;
}

/**
 * Events after a global position, in position order, as stored (personal data sealed).
 * Positions start with the transaction id, so stopping below the snapshot's xmin (the
 * oldest transaction still running) never passes over an event that is yet to commit:
 * every later commit gets a position above the bound.
 */
async function selectAll(db: SqlQueryable, afterPosition: number, limit: number): Promise<StoredEvent[]> {
  const rows = await db.query<EventRow>(
    `SELECT ${eventColumns} FROM mutuo_events
      WHERE position > $1
        AND position < pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 65536
      ORDER BY position
      LIMIT $2`,
    [afterPosition, limit],
  );
  return rows.map(toStoredEvent);
}

/** The log as stored, personal data sealed: what the outbox relay publishes, for each consumer to reveal. */
export function storedLog(client: SqlQueryable): Pick<EventStore, 'readAll'> {
  return { readAll: (afterPosition, limit = 1000) => selectAll(client, afterPosition, limit) };
}

/** A stream's events in version order, as stored, read through whatever transaction `db` is in. */
export async function selectStream(db: SqlQueryable, streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
  const rows = await db.query<EventRow>(
    `SELECT ${eventColumns} FROM mutuo_events
      WHERE stream_id = $1 AND stream_version >= $2
        AND ($3::integer IS NULL OR stream_version <= $3)
        AND ($4::timestamptz IS NULL OR recorded_at <= $4)
      ORDER BY stream_version`,
    [streamId, options.fromVersion ?? 1, options.toVersion ?? null, options.asOf ?? null],
  );
  return rows.map(toStoredEvent);
}

/**
 * One append inside whatever transaction `db` is in (a session's, see session.ts), its
 * events as they are to be stored. A stream that has moved on throws
 * WrongExpectedVersionError, which rolls the transaction back.
 */
export async function appendInTransaction(
  db: SqlQueryable,
  streamId: string,
  events: readonly NewEvent[],
  expectedVersion: ExpectedVersion,
  eventsBefore: number,
): Promise<AppendResult> {
  // `any` takes the stream's next version, whoever else writes to it: two transactions doing
  // so at once (two emails about one application, two uploads) would both take the same one,
  // and the later commit fail on the unique key. Locked for the transaction, the second
  // waits, and its insert (a statement after the lock, under READ COMMITTED) sees the first.
  if (expectedVersion === 'any') await db.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`mutuo.stream/${streamId}`]);
  const result = await insertEvents(db, streamId, events, expectedVersion, eventsBefore);
  if (result) return result;
  const [row] = await db.query<{ version: number }>('SELECT coalesce(max(stream_version), 0) AS version FROM mutuo_events WHERE stream_id = $1', [streamId]);
  throw new WrongExpectedVersionError(streamId, expectedVersion, row?.version ?? 0);
}

type PendingAppend = AppendRequest & {
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
  attempts: number;
};

export type SqlEventStoreOptions = {
  /**
   * Appends written at once. Appends that arrive meanwhile queue up and go out together
   * as one statement and one commit, which is what lets many concurrent writers share
   * the machine: a lone append still goes out at once.
   */
  readonly maxConcurrentWrites?: number;
  /** Seals personal data with its subject's key before it is written, and reveals it (or its erased form) when read. */
  readonly personalData: PersonalDataPort;
};

const maxBatchAppends = 256;
const maxBatchEvents = 4_096;

/** The event store over any PostgreSQL connection: the same SQL runs on a server (pg) and embedded (PGlite). */
export class SqlEventStore implements EventStore {
  private readonly queue: PendingAppend[] = [];
  private readonly appendListeners = new Set<() => void>();
  private readonly streamsBeingWritten = new Set<string>();
  private writing = 0;
  private readonly maxConcurrentWrites: number;
  private readonly personalData: PersonalDataPort;

  constructor(
    private readonly client: SqlClient,
    options: SqlEventStoreOptions,
  ) {
    this.maxConcurrentWrites = options.maxConcurrentWrites ?? 4;
    this.personalData = options.personalData;
  }

  appendToStream(streamId: string, events: readonly NewEvent[], expectedVersion: ExpectedVersion): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      if (events.length === 0) throw new RangeError('an append needs at least one event');
      expectedVersionParam(expectedVersion);
      this.queue.push({ streamId, events, expectedVersion, resolve, reject, attempts: 0 });
      this.writeQueued();
    });
  }

  /** Called after each commit of appends by this process (the relay wakes up on it). */
  onAppend(listener: () => void): () => void {
    this.appendListeners.add(listener);
    return () => this.appendListeners.delete(listener);
  }

  private writeQueued(): void {
    while (this.writing < this.maxConcurrentWrites) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.writing++;
      void this.write(batch).finally(() => {
        this.writing--;
        for (const pending of batch) this.streamsBeingWritten.delete(pending.streamId);
        this.writeQueued();
      });
    }
  }

  /**
   * The oldest queued appends, one per stream and none to a stream being written: a
   * later append to a stream waits for the earlier one, so each stream's appends from
   * this process are written in the order they arrived and never race each other.
   */
  private takeBatch(): PendingAppend[] {
    const batch: PendingAppend[] = [];
    let events = 0;
    for (let i = 0; i < this.queue.length && batch.length < maxBatchAppends; ) {
      const pending = this.queue[i]!;
      if (this.streamsBeingWritten.has(pending.streamId) || (batch.length > 0 && events + pending.events.length > maxBatchEvents)) {
        i++;
        continue;
      }
      this.streamsBeingWritten.add(pending.streamId);
      events += pending.events.length;
      batch.push(pending);
      this.queue.splice(i, 1);
    }
    return batch;
  }

  private async write(batch: PendingAppend[]): Promise<void> {
    let results: (AppendResult | undefined)[];
    try {
      results = await this.insertBatch(batch);
    } catch (error) {
      // The batch was one transaction and is rolled back whole: write each append alone
      // so that only the one at fault fails.
      if (batch.length > 1) {
        await Promise.all(batch.map((pending) => this.write([pending])));
        return;
      }
      await this.settleFailed(batch[0]!, error);
      return;
    }
    if (results.some(Boolean)) for (const listener of this.appendListeners) listener();
    await Promise.all(
      batch.map(async (pending, i) => {
        const result = results[i];
        if (result) return pending.resolve(result);
        try {
          pending.reject(await this.versionConflict(pending));
        } catch (error) {
          pending.reject(error);
        }
      }),
    );
  }

  /**
   * One statement. Where the batch holds personal data and the keys are in this database,
   * still one: the subjects found or made and their streams recorded by the keys' CTE in
   * the append's statement (a returning person's append takes a second one, sealed again
   * for the key it holds). With keys elsewhere (a KMS), one transaction: the subjects
   * first, then the sealed events, committed together. A batch retried is sealed again.
   */
  private async insertBatch(batch: readonly PendingAppend[]): Promise<(AppendResult | undefined)[]> {
    const vault = this.personalData;
    if (!batch.some((pending) => vault.hasPersonalData(pending.events))) return insertAppends(this.client, batch, 0);
    // A batch appends to each stream once: its stream names its expected version.
    const expected = new Map(batch.map((pending) => [pending.streamId, pending.expectedVersion]));
    const request = (sealed: readonly { readonly streamId: string; readonly events: readonly NewEvent[] }[]) =>
      sealed.map(({ streamId, events }) => ({ streamId, events, expectedVersion: expected.get(streamId)! }));
    if (vault.sealsInStatement) return vault.sealInStatement(batch, (sealed, subjects) => insertAppendsWith(this.client, request(sealed), 0, subjects));
    return this.client.transaction(async (tx) => {
      const sealed = await vault.within(tx).sealAppends(batch);
      return insertAppends(
        tx,
        batch.map((pending, i) => ({ streamId: pending.streamId, events: sealed[i]!, expectedVersion: pending.expectedVersion })),
        0,
      );
    });
  }

  private async settleFailed(pending: PendingAppend, error: unknown): Promise<void> {
    try {
      if (!isSqlError(error) || error.code !== '23505') throw error;
      const retried = await this.storedBatch(pending.streamId, pending.events);
      if (retried) return pending.resolve(retried);
      // `any` lost a race for the next version to another writer: take the one after.
      if (pending.expectedVersion === 'any' && ++pending.attempts < 5) {
        this.queue.unshift(pending);
        return;
      }
      throw await this.versionConflict(pending);
    } catch (failure) {
      pending.reject(failure);
    }
  }

  private async versionConflict(pending: PendingAppend): Promise<WrongExpectedVersionError> {
    return new WrongExpectedVersionError(pending.streamId, pending.expectedVersion, await this.streamVersion(pending.streamId));
  }

  /**
   * After a unique violation: the result of the first append if exactly this batch is
   * stored already (a client retrying after a lost answer); a DuplicateEventIdError if
   * some of its ids are stored otherwise; undefined if none is (a version race).
   */
  private async storedBatch(streamId: string, events: readonly NewEvent[]): Promise<AppendResult | undefined> {
    const rows = await this.client.query<{ stream_id: string; stream_version: number; position: string }>(
      `SELECT stream_id, stream_version, position FROM mutuo_events
        WHERE event_id = ANY($1::uuid[]) ORDER BY position`,
      [events.map((event) => event.eventId)],
    );
    if (rows.length === 0) return undefined;
    const sameBatch = rows.length === events.length && rows.every((row, i) => row.stream_id === streamId && row.stream_version === rows[0]!.stream_version + i);
    if (!sameBatch) throw new DuplicateEventIdError(streamId);
    return {
      nextVersion: rows.at(-1)!.stream_version,
      firstPosition: toPosition(rows[0]!.position),
      lastPosition: toPosition(rows.at(-1)!.position),
    };
  }

  private async streamVersion(streamId: string): Promise<number> {
    const rows = await this.client.query<{ version: number }>('SELECT coalesce(max(stream_version), 0) AS version FROM mutuo_events WHERE stream_id = $1', [
      streamId,
    ]);
    return rows[0]?.version ?? 0;
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    return this.personalData.reveal(await selectStream(this.client, streamId, options));
  }

  async readAll(afterPosition: number, limit = 1000): Promise<StoredEvent[]> {
    return this.personalData.reveal(await selectAll(this.client, afterPosition, limit));
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
