import { isSqlError, type SqlClient } from './sql-client.ts';
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

const eventColumns =
  'position, stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at';

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
  if (!Number.isInteger(expected) || expected < 1) throw new RangeError(`expected version must be >= 1, got ${expected}`);
  return expected;
}

/** The event store over any PostgreSQL connection: the same SQL runs on a server (pg) and embedded (PGlite). */
export class SqlEventStore implements EventStore {
  constructor(private readonly client: SqlClient) {}

  async appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    expectedVersion: ExpectedVersion,
  ): Promise<AppendResult> {
    if (events.length === 0) throw new RangeError('an append needs at least one event');
    const batch = JSON.stringify(
      events.map((event) => ({
        eventId: event.eventId,
        type: event.type,
        schemaVersion: event.schemaVersion ?? 1,
        data: event.data,
        metadata: event.metadata,
      })),
    );
    try {
      const rows = await this.client.query<{
        next_version: number;
        first_position: string | number | bigint;
        last_position: string | number | bigint;
      }>('SELECT * FROM mutuo_append($1, $2, $3::jsonb)', [streamId, expectedVersionParam(expectedVersion), batch]);
      const row = rows[0];
      if (!row) throw new Error('mutuo_append returned no row');
      return {
        nextVersion: row.next_version,
        firstPosition: toPosition(row.first_position),
        lastPosition: toPosition(row.last_position),
      };
    } catch (error) {
      throw translateAppendError(error, streamId, expectedVersion);
    }
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    const rows = await this.client.query<EventRow>(
      `SELECT ${eventColumns} FROM mutuo_events
        WHERE stream_id = $1 AND stream_version >= $2
          AND ($3::integer IS NULL OR stream_version <= $3)
          AND ($4::timestamptz IS NULL OR recorded_at <= $4)
        ORDER BY stream_version`,
      [streamId, options.fromVersion ?? 1, options.toVersion ?? null, options.asOf ?? null],
    );
    return rows.map(toStoredEvent);
  }

  async readAll(afterPosition: number, limit = 1000): Promise<StoredEvent[]> {
    // Positions start with the transaction id, so stopping below the snapshot's xmin
    // (the oldest transaction still running) never passes over an event that is yet
    // to commit: every later commit gets a position above the bound.
    const rows = await this.client.query<EventRow>(
      `SELECT ${eventColumns} FROM mutuo_events
        WHERE position > $1
          AND position < pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 65536
        ORDER BY position
        LIMIT $2`,
      [afterPosition, limit],
    );
    return rows.map(toStoredEvent);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

function translateAppendError(error: unknown, streamId: string, expected: ExpectedVersion): unknown {
  if (!isSqlError(error)) return error;
  if (error.code === 'MU409') return new WrongExpectedVersionError(streamId, expected, Number(error.detail ?? 0));
  if (error.code === 'MU410') return new DuplicateEventIdError(streamId);
  // Two appends racing with the same event ids: the unique index is the last word.
  if (error.code === '23505' && error.constraint === 'mutuo_events_event_id_key') return new DuplicateEventIdError(streamId);
  return error;
}
