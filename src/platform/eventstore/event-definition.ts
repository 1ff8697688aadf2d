import type { Static, TSchema } from '@sinclair/typebox';

/**
 * One definition per event type and schema version: it gives the TypeScript type
 * (`EventOf`), the runtime schema and the schema registry's entry.
 */
export type EventDefinition<Type extends string = string, Schema extends TSchema = TSchema, Version extends number = number> = {
  readonly type: Type;
  readonly schemaVersion: Version;
  readonly schema: Schema;
  /**
   * Turns data of version schemaVersion − 1 into this version's data. Without it, the
   * schema's defaults fill in what the previous version did not have.
   */
  readonly upcast?: (previous: unknown) => unknown;
  /**
   * The event's personal data: sealed with its subject's key when stored, read as `erased`
   * once that key is destroyed. Untyped here so that a definition of any schema is an
   * EventDefinition; defineEvent takes it typed by the schema.
   */
  readonly personal?: PersonalData<Readonly<Record<string, unknown>>>;
};

/**
 * Whose personal data an event holds, and which of its fields are that data. The subject is
 * either the person whose tax code (codice fiscale) the data names, made a data subject on
 * first use, or, for free text written about someone already known (an operator's note, a
 * reason), `ofStream`: the subject whose sealed data the stream already holds. Where that
 * subject was erased, or the stream holds nobody's data, the fields are written as their
 * erased values: free text is never stored in the clear.
 */
export type PersonalData<Data> = (
  | { readonly taxCode: (data: Data) => string; readonly ofStream?: never }
  | { readonly ofStream: true; readonly taxCode?: never }
) & {
  /** Each top-level field of the data that is personal, with the value it reads as after erasure (it must still pass the schema). */
  readonly erased: Partial<Data>;
};

export type EventDefinitionOptions<Schema extends TSchema> = {
  readonly upcast?: (previous: unknown) => Static<Schema>;
  /** The event's personal data: sealed with its subject's key when stored, read as `erased` once that key is destroyed. */
  readonly personal?: PersonalData<Static<Schema>>;
};

export function defineEvent<const Type extends string, Schema extends TSchema, const Version extends number>(
  type: Type,
  schemaVersion: Version,
  schema: Schema,
  options: EventDefinitionOptions<Schema> = {},
): EventDefinition<Type, Schema, Version> {
  return {
    type,
    schemaVersion,
    schema,
    ...(options.upcast ? { upcast: options.upcast } : {}),
    // Widened to any fields: whoever seals an event hands taxCode data of this schema.
    ...(options.personal ? { personal: options.personal as unknown as NonNullable<EventDefinition['personal']> } : {}),
  };
}

export type EventOf<Definition extends EventDefinition> = {
  readonly type: Definition['type'];
  readonly data: Static<Definition['schema']>;
};

/** N + 1 for a literal version (counted up to it); never for a version typed only as `number`. */
type NextVersion<N extends number, Counted extends unknown[] = []> = number extends N
  ? never
  : Counted['length'] extends N
    ? [...Counted, unknown]['length']
    : NextVersion<N, [...Counted, unknown]>;

type LatestOf<Definition, All extends EventDefinition> = Definition extends EventDefinition
  ? [Extract<All, { readonly type: Definition['type']; readonly schemaVersion: NextVersion<Definition['schemaVersion']> }>] extends [never]
    ? EventOf<Definition>
    : never
  : never;

/**
 * The events as a catalog of these definitions decodes them: one `EventOf` per type, at
 * its latest version (a definition is left out when the list also holds its next one).
 */
export type LatestEventOf<Definitions extends readonly EventDefinition[]> = LatestOf<Definitions[number], Definitions[number]>;
