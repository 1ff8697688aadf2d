import type { Static, TSchema } from '@sinclair/typebox';

/**
 * One definition per event type and schema version: it gives the TypeScript type
 * (`EventOf`), the runtime schema and, later, the schema registry's entry.
 */
export type EventDefinition<Type extends string = string, Schema extends TSchema = TSchema> = {
  readonly type: Type;
  readonly schemaVersion: number;
  readonly schema: Schema;
};

export function defineEvent<const Type extends string, Schema extends TSchema>(
  type: Type,
  schemaVersion: number,
  schema: Schema,
): EventDefinition<Type, Schema> {
  return { type, schemaVersion, schema };
}

export type EventOf<Definition extends EventDefinition> = {
  readonly type: Definition['type'];
  readonly data: Static<Definition['schema']>;
};
