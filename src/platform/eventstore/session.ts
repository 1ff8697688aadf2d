import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import type { PersonalDataPort } from './personal-data.ts';
import { appendInTransaction, selectStream } from './store.ts';
import type { AppendResult, ExpectedVersion, NewEvent, ReadStreamOptions, SealedFields, StoredEvent } from './types.ts';

/**
 * One unit of work: what a command, a consumer's handling of an event or a job's outcome
 * reads and writes, committed together. Personal data is sealed on every append and
 * revealed on every read, whoever the caller: the session does it, nobody opts in.
 */
export interface Session {
  /** The transaction, for the rows written with the events (an inbox row, a job, a service's own table). */
  readonly tx: SqlQueryable;
  readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
  /** A stream that has moved on throws WrongExpectedVersionError, which rolls the whole session back. */
  append(streamId: string, events: readonly NewEvent[], expectedVersion: ExpectedVersion): Promise<AppendResult>;
  /**
   * Names work this session gives someone once it commits (a job queue, see jobs.ts); an
   * append names `eventsAppended` itself. Nothing is signalled for a session rolled back.
   */
  signal(topic: string): void;
  /** Runs `effect` once the session committed (a count, a log line); never for a session rolled back. */
  afterCommit(effect: () => void): void;
}

/** The signal of a session that appended events: the relay has them to publish, the read side to follow. */
export const eventsAppended = 'events';

export type UnitOfWork = {
  /** Runs `work` in one transaction, then hands what it signalled to `onCommit`. */
  run<T>(work: (session: Session) => Promise<T>): Promise<T>;
  /** Reveals events read elsewhere (a message off the bus), with the keys read through `db` (default: the client). */
  reveal<E extends { readonly type: string; readonly schemaVersion: number; readonly data: unknown }>(
    events: readonly E[],
    db?: SqlQueryable,
  ): Promise<(E & { readonly sealed?: SealedFields })[]>;
};

export type UnitOfWorkOptions = {
  readonly client: SqlClient;
  readonly personalData: PersonalDataPort;
  /** After each commit that signalled something: wake whoever the signals name. */
  readonly onCommit?: (signals: ReadonlySet<string>) => void;
};

export function createUnitOfWork({ client, personalData, onCommit }: UnitOfWorkOptions): UnitOfWork {
  function openSession(tx: SqlQueryable, signals: Set<string>, effects: (() => void)[]): Session {
    let appended = 0;
    // Its keys read and written in this transaction: PGlite's one connection is busy with it until it ends.
    const vault = personalData.within(tx);
    return {
      tx,
      async readStream(streamId, options) {
        return vault.reveal(await selectStream(tx, streamId, options));
      },
      async append(streamId, events, expectedVersion) {
        const sealed = vault.hasPersonalData(events) ? await vault.seal(streamId, events) : events;
        const result = await appendInTransaction(tx, streamId, sealed, expectedVersion, appended);
        appended += events.length;
        signals.add(eventsAppended);
        return result;
      },
      signal: (topic) => signals.add(topic),
      afterCommit: (effect) => effects.push(effect),
    };
  }

  return {
    async run(work) {
      let signals = new Set<string>();
      let effects: (() => void)[] = [];
      const result = await client.transaction((tx) => {
        // Fresh ones for each attempt, should the client ever run `work` again.
        signals = new Set<string>();
        effects = [];
        return work(openSession(tx, signals, effects));
      });
      if (signals.size > 0) onCommit?.(signals);
      for (const effect of effects) effect();
      return result;
    },
    reveal: (events, db) => (db ? personalData.within(db) : personalData).reveal(events),
  };
}
