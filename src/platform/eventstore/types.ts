/** Who did it and why, carried on every stored event. */
export type EventMetadata = {
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly actor: string;
  readonly occurredAt: string;
};

export type NewEvent = {
  readonly eventId: string;
  readonly type: string;
  readonly schemaVersion?: number;
  readonly data: unknown;
  readonly metadata: EventMetadata;
};

export type StoredEvent = {
  readonly position: number;
  readonly streamId: string;
  readonly streamVersion: number;
  readonly eventId: string;
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly metadata: EventMetadata;
  readonly recordedAt: Date;
  /**
   * Of an event read with its personal data revealed: those fields as they are stored,
   * sealed. A copy of personal data made outside the event keeps this form, never the
   * clear one, so that the subject's erasure makes the copy unreadable too.
   */
  readonly sealed?: SealedFields;
};

/** Top-level fields of an event's data as they are stored, sealed with their subject's key. */
export type SealedFields = Readonly<Record<string, { readonly $sealed: string }>>;

/** `any`: no check; `no_stream` (or 0): the stream must not exist yet; N: the stream must be at version N. */
export type ExpectedVersion = 'any' | 'no_stream' | number;

export type AppendResult = {
  /** The stream's version after the append (the version of its last event). */
  readonly nextVersion: number;
  readonly firstPosition: number;
  readonly lastPosition: number;
};

export type ReadStreamOptions = {
  readonly fromVersion?: number;
  readonly toVersion?: number;
  /** Only events recorded at or before this instant. */
  readonly asOf?: Date;
};

export interface EventStore {
  appendToStream(streamId: string, events: readonly NewEvent[], expectedVersion: ExpectedVersion): Promise<AppendResult>;
  readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
  /**
   * Events after a global position, in position order, at most `limit` of them.
   * Gap-safe: an event not returned yet never gets a position below one already returned.
   */
  readAll(afterPosition: number, limit?: number): Promise<StoredEvent[]>;
  close(): Promise<void>;
}

export class WrongExpectedVersionError extends Error {
  readonly code = 'WRONG_EXPECTED_VERSION';
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    readonly currentVersion: number,
  ) {
    super(`stream ${streamId} is at version ${currentVersion}, expected ${String(expected)}`);
  }
}

export class DuplicateEventIdError extends Error {
  readonly code = 'DUPLICATE_EVENT_ID';
  constructor(readonly streamId: string) {
    super(`an event id of this append to ${streamId} is already stored with other events`);
  }
}
