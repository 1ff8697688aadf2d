import type { EventDefinition } from '../platform/eventstore/event-definition.ts';
import type { SqlQueryable } from '../platform/sql/sql-client.ts';
import type { PersonalDataPort, SealRequest, SubjectRow, SubjectsToWrite } from '../platform/eventstore/personal-data.ts';
import type { NewEvent } from '../platform/eventstore/types.ts';
import { isSealed, sealedSubject, sealValue, unsealValue, type Sealed } from './sealing.ts';
import type { SealingRequest, Subject, SubjectKeys } from './subject-keys.ts';

/**
 * Seals personal data on its way into the event store and reveals it on its way out: the
 * store's PersonalDataPort (see there for what each method does), and what the platform's
 * services need besides.
 */
export type PersonalDataVault = Omit<PersonalDataPort, 'within'> & {
  /** Opens sealed values kept out of events (one keysOf query for the list): each value, or undefined where its subject was erased (or none was given). */
  open(values: readonly (Sealed | undefined)[]): Promise<unknown[]>;
  /** The subject a stored event's sealed fields belong to, if any (read from the sealed value, no I/O). */
  subjectOf(data: unknown): string | undefined;
  readonly keys: SubjectKeys;
  /** The same vault with its keys read and written in the caller's transaction (see SubjectKeys.within). */
  within(db: SqlQueryable): PersonalDataVault;
};

export type PersonalDataVaultOptions = {
  readonly keys: SubjectKeys;
  /** Every version of every event type the vault may meet (a catalog's `definitions`). */
  readonly definitions: readonly EventDefinition[];
};

type Personal = NonNullable<EventDefinition['personal']>;
type Fields = Readonly<Record<string, unknown>>;

function isFields(data: unknown): data is Fields {
  return typeof data === 'object' && data !== null && !Array.isArray(data);
}

/** The data's top-level fields that are sealed, or undefined when none is. */
function sealedFieldsOf(data: unknown): [field: string, sealed: Sealed][] | undefined {
  if (!isFields(data)) return undefined;
  let sealed: [string, Sealed][] | undefined;
  for (const [field, value] of Object.entries(data)) {
    if (isSealed(value)) (sealed ??= []).push([field, value]);
  }
  return sealed;
}

/**
 * Seals personal data on its way into the event store and reveals it on its way out.
 * Sealed fields no longer match their schema: check events against the catalog before
 * sealing them, and reveal stored events before decoding them.
 */
export function createPersonalDataVault(options: PersonalDataVaultOptions): PersonalDataVault {
  const latestByType = new Map<string, EventDefinition>();
  const byTypeAndVersion = new Map<string, EventDefinition>();
  for (const definition of options.definitions) {
    byTypeAndVersion.set(`${definition.type}@${definition.schemaVersion}`, definition);
    const latest = latestByType.get(definition.type);
    if (!latest || latest.schemaVersion < definition.schemaVersion) latestByType.set(definition.type, definition);
  }

  function erasedValue(type: string, schemaVersion: number, field: string): unknown {
    const erased = byTypeAndVersion.get(`${type}@${schemaVersion}`)?.personal?.erased;
    // A copy: the caller may fill defaults into what it reads, and this value is shared.
    return erased && Object.hasOwn(erased, field) ? structuredClone(erased[field]) : null;
  }

  type Sealing = { readonly personal: Personal; readonly taxCode: string };

  /** The events with personal data to seal, each with its definition's fields and its subject's tax code. */
  function planSealing(appends: readonly SealRequest[]): Map<NewEvent, Sealing> {
    const toSeal = new Map<NewEvent, Sealing>();
    for (const { events } of appends) {
      for (const event of events) {
        const personal = latestByType.get(event.type)?.personal;
        if (!personal?.taxCode) continue;
        if (!isFields(event.data)) throw new TypeError(`${event.type} declares personal data but its data is not an object`);
        const taxCode = personal.taxCode(event.data);
        if (typeof taxCode !== 'string' || taxCode.trim() === '') throw new TypeError(`${event.type} names no data subject: its tax code is empty`);
        toSeal.set(event, { personal, taxCode });
      }
    }
    return toSeal;
  }

  /** One per tax code and stream of the appends. */
  function sealingRequests(appends: readonly SealRequest[], toSeal: ReadonlyMap<NewEvent, Sealing>): SealingRequest[] {
    const requests = new Map<string, SealingRequest>();
    for (const { streamId, events } of appends) {
      for (const event of events) {
        const sealing = toSeal.get(event);
        if (sealing) requests.set(`${sealing.taxCode}\n${streamId}`, { taxCode: sealing.taxCode, streamId });
      }
    }
    return [...requests.values()];
  }

  function sealEvents(events: readonly NewEvent[], toSeal: ReadonlyMap<NewEvent, Sealing>, subjects: ReadonlyMap<string, Subject>): NewEvent[] {
    return events.map((event) => {
      const sealing = toSeal.get(event);
      return sealing ? sealFields(event, sealing.personal, subjects.get(sealing.taxCode)!) : event;
    });
  }

  /** The event with its personal fields sealed for the subject, or, with none (erased, unknown), written as their erased values. */
  function sealFields(event: NewEvent, personal: Personal, subject: Subject | undefined): NewEvent {
    const data: Record<string, unknown> = { ...(event.data as Fields) };
    for (const [field, erased] of Object.entries(personal.erased)) {
      const value = data[field];
      // An absent optional field, or a null one, holds nothing; a sealed one is already protected.
      if (value === undefined || value === null || isSealed(value)) continue;
      data[field] = subject ? sealValue(subject.key, subject.subjectId, value) : structuredClone(erased);
    }
    return { ...event, data };
  }

  /** The subject of a stream named for one (`subject-<id>`), else undefined: ask the keys which subject's data the stream holds. */
  function subjectNamedBy(streamId: string): string | undefined {
    const prefix = 'subject-';
    return streamId.startsWith(prefix) ? streamId.slice(prefix.length) : undefined;
  }

  /**
   * Seals the free text of `ofStream` events (a note, a reason) for the subject whose data
   * their stream holds: one look-up for every stream of the appends, then the keys. The
   * other events pass through unchanged (same object), for the tax-code sealing after this.
   */
  async function sealOwnedByStream(keys: SubjectKeys, appends: readonly SealRequest[]): Promise<SealRequest[]> {
    const owned = appends.filter(({ events }) => events.some((event) => latestByType.get(event.type)?.personal?.ofStream));
    if (owned.length === 0) return [...appends];
    const streams = owned.map(({ streamId }) => streamId);
    const named = new Map(
      streams.flatMap((streamId) => {
        const subjectId = subjectNamedBy(streamId);
        return subjectId ? [[streamId, subjectId] as const] : [];
      }),
    );
    const subjects = new Map<string, Subject | undefined>(await keys.subjectsOfStreams(streams.filter((streamId) => !named.has(streamId))));
    if (named.size > 0) {
      const namedKeys = await keys.keysOf([...named.values()]);
      for (const [streamId, subjectId] of named) {
        const key = namedKeys.get(subjectId);
        subjects.set(streamId, key ? { subjectId, key } : undefined);
      }
    }
    return appends.map((append) => {
      if (!owned.includes(append)) return append;
      const subject = subjects.get(append.streamId);
      const events = append.events.map((event) => {
        const personal = latestByType.get(event.type)?.personal;
        if (!personal?.ofStream) return event;
        if (!isFields(event.data)) throw new TypeError(`${event.type} declares personal data but its data is not an object`);
        return sealFields(event, personal, subject);
      });
      return { streamId: append.streamId, events };
    });
  }

  const tooManyAttempts = () => new Error('the subjects of these tax codes were erased or made elsewhere three times over while they were sealed for');

  /**
   * Seals the appends' personal data: the subjects of all their tax codes found or made,
   * and their streams recorded, in one statement. The streams are recorded before the
   * events are written (or in the transaction that writes them): a crash in between leaves
   * a stream listed that holds nothing of the person, never a stream of theirs that an
   * erasure would miss. A subject erased meanwhile gives way to a new one.
   */
  async function sealAppends(keys: SubjectKeys, given: readonly SealRequest[]): Promise<NewEvent[][]> {
    const appends = await sealOwnedByStream(keys, given);
    const toSeal = planSealing(appends);
    if (toSeal.size === 0) return appends.map(({ events }) => [...events]);
    const subjects = new Map<string, Subject>();
    let pending = sealingRequests(appends, toSeal);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === 3) throw tooManyAttempts();
      for (const [taxCode, subject] of await keys.subjectsSealing(pending)) subjects.set(taxCode, subject);
      pending = pending.filter(({ taxCode }) => !subjects.has(taxCode));
    }
    return appends.map(({ events }) => sealEvents(events, toSeal, subjects));
  }

  /**
   * Seals and writes in one statement per attempt (keys in the store's database): each
   * append is sealed for the subject already known for its tax code, else for a new one
   * made here; `write` runs the append with the keys' CTE, which writes only the appends
   * whose subjects it answers. The others (a returning person, or one erased meanwhile)
   * are sealed again for the subjects answered and written in the next statement.
   */
  async function sealInStatement<R>(
    keys: SubjectKeys,
    given: readonly SealRequest[],
    write: (sealed: SealRequest[], subjects: SubjectsToWrite) => Promise<{ results: (R | undefined)[]; subjects: SubjectRow[] }>,
  ): Promise<(R | undefined)[]> {
    const inDatabase = keys.inDatabase;
    if (!inDatabase) throw new Error("these keys are not in the event store's database");
    const appends = await sealOwnedByStream(keys, given);
    const toSeal = planSealing(appends);
    const known = new Map<string, Subject>();
    const results: (R | undefined)[] = new Array(appends.length);
    let pending = appends.map((_, i) => i);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === 3) throw tooManyAttempts();
      const mine = pending.map((i) => appends[i]!);
      const requests = sealingRequests(mine, toSeal);
      const made = inDatabase.candidates(requests);
      const chosen = new Map(requests.map(({ taxCode }) => [taxCode, known.get(taxCode) ?? made.byTaxCode.get(taxCode)!]));
      const requires = mine.map(({ events }) => [
        ...new Set(events.flatMap((event) => (toSeal.has(event) ? [chosen.get(toSeal.get(event)!.taxCode)!.subjectId] : []))),
      ]);
      const sealed = mine.map(({ streamId, events }) => ({ streamId, events: sealEvents(events, toSeal, chosen) }));
      const written = await write(sealed, { requires, cte: made.cte, param: made.param });
      const answered = inDatabase.answered([...chosen.keys()], written.subjects);
      const held = new Set([...answered.values()].map(({ subjectId }) => subjectId));
      const next: number[] = [];
      pending.forEach((i, j) => {
        if (requires[j]!.every((subjectId) => held.has(subjectId))) results[i] = written.results[j];
        else next.push(i);
      });
      for (const [taxCode, subject] of answered) known.set(taxCode, subject);
      pending = next;
    }
    return results;
  }

  const vaultWith = (keys: SubjectKeys): PersonalDataVault => ({
    keys,
    sealsInStatement: keys.inDatabase !== undefined,
    within: (db) => vaultWith(keys.within(db)),

    hasPersonalData: (events) => events.some((event) => latestByType.get(event.type)?.personal !== undefined),

    async seal(streamId, events) {
      return (await sealAppends(keys, [{ streamId, events }]))[0]!;
    },

    sealAppends: (appends) => sealAppends(keys, appends),

    sealInStatement: (appends, write) => sealInStatement(keys, appends, write),

    async reveal(events) {
      const sealedFields = events.map((event) => sealedFieldsOf(event.data));
      const subjectIds = new Set(sealedFields.flatMap((fields) => (fields ?? []).map(([, sealed]) => sealedSubject(sealed))));
      if (subjectIds.size === 0) return [...events];
      // Looked up at every read, never cached: a destroyed key must stop revealing at once.
      const subjectKeys = await keys.keysOf([...subjectIds]);
      return events.map((event, i) => {
        const fields = sealedFields[i];
        if (!fields) return event;
        const data: Record<string, unknown> = { ...(event.data as Fields) };
        for (const [field, sealed] of fields) {
          const key = subjectKeys.get(sealedSubject(sealed));
          data[field] = key ? unsealValue(key, sealed) : erasedValue(event.type, event.schemaVersion, field);
        }
        return { ...event, data, sealed: Object.fromEntries(fields) };
      });
    },

    async open(values) {
      const subjectIds = new Set(values.flatMap((value) => (value ? [sealedSubject(value)] : [])));
      if (subjectIds.size === 0) return values.map(() => undefined);
      // As for events, looked up at every read: a destroyed key stops revealing at once.
      const subjectKeys = await keys.keysOf([...subjectIds]);
      return values.map((value) => {
        const key = value ? subjectKeys.get(sealedSubject(value)) : undefined;
        return value && key ? unsealValue(key, value) : undefined;
      });
    },

    subjectOf(data) {
      for (const [, sealed] of sealedFieldsOf(data) ?? []) {
        try {
          return sealedSubject(sealed);
        } catch {
          // Malformed: it names no subject; another field may.
        }
      }
      return undefined;
    },
  });
  return vaultWith(options.keys);
}
