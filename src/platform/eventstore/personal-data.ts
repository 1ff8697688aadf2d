import type { SqlQueryable } from '../sql/sql-client.ts';
import type { NewEvent, SealedFields } from './types.ts';

/** A subject as the keys' statement answers it, when the keys live in the store's database. */
export type SubjectRow = { readonly subject_id: string; readonly tax_code_digest: string; readonly data_key: unknown };

/** What a batch of sealed appends needs written with it (see sealedAppendSql in store.ts). */
export type SubjectsToWrite = {
  /** Per append, the subjects its events are sealed for. */
  readonly requires: readonly (readonly string[])[];
  /** The CTE that finds or makes them, reading its parameter as `$2`. */
  readonly cte: string;
  readonly param: unknown;
};

/** One append's events, about to be sealed. */
export type SealRequest = { readonly streamId: string; readonly events: readonly NewEvent[] };

/**
 * What the event store needs of whoever keeps personal data sealed (privacy's vault): the
 * store calls it on every append and every read, and knows nothing of keys or subjects.
 */
export interface PersonalDataPort {
  /** Whether any of these events has personal data to seal: the others are written without waiting for keys. */
  hasPersonalData(events: readonly { readonly type: string }[]): boolean;
  /** The events with their personal fields sealed, in the caller's transaction where `within` gave this port. */
  seal(streamId: string, events: readonly NewEvent[]): Promise<NewEvent[]>;
  /** seal, for several appends at once, each answered in its order. */
  sealAppends(appends: readonly SealRequest[]): Promise<NewEvent[][]>;
  /**
   * Where the keys live in the store's own database, the subjects are found or made in the
   * statement that appends (see sealInStatement); elsewhere (a KMS), sealAppends runs first.
   */
  readonly sealsInStatement: boolean;
  /** Seals and writes the appends, finding or making their subjects in the statement `write` runs. */
  sealInStatement<R>(
    appends: readonly SealRequest[],
    write: (sealed: SealRequest[], subjects: SubjectsToWrite) => Promise<{ results: (R | undefined)[]; subjects: SubjectRow[] }>,
  ): Promise<(R | undefined)[]>;
  /** Reveals the sealed fields of stored events, keeping them as stored in `sealed` (see StoredEvent.sealed). */
  reveal<E extends { readonly type: string; readonly schemaVersion: number; readonly data: unknown }>(
    events: readonly E[],
  ): Promise<(E & { readonly sealed?: SealedFields })[]>;
  /** The same port with its keys read and written in the caller's transaction. */
  within(db: SqlQueryable): PersonalDataPort;
}

/** A sealed value that cannot be opened, for good: tampered with, moved to another subject, malformed. */
export class SealedValueError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SealedValueError';
  }
}
