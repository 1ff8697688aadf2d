import type { TSchema } from '@sinclair/typebox';
import type { EventDefinition } from '../eventstore/event-definition.ts';
import type { SqlClient } from '../sql/sql-client.ts';
import { avroEventType } from './avro.ts';
import { canonicalJson } from './canonical-json.ts';
import { RegistryError, sqlSchemaRegistry, withinTransaction, type SchemaRegistry } from './registry.ts';

type JsonSchema = { readonly [keyword: string]: unknown };

export class SchemaRegistryError extends Error {
  readonly code = 'SCHEMA_REGISTRY_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'SchemaRegistryError';
  }
}

const isRecord = (value: unknown): value is JsonSchema => typeof value === 'object' && value !== null && !Array.isArray(value);
const schemaAt = (value: unknown): JsonSchema => (isRecord(value) ? value : {});
const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
const named = (path: string): string => (path === '' ? '(root)' : path);

/** Keywords that say what a value is; a schema with none of them accepts anything. */
const shapeKeywords = ['type', 'const', 'enum', 'anyOf', 'oneOf', 'allOf', 'not', '$ref'];
const isUnconstrained = (schema: JsonSchema): boolean => shapeKeywords.every((keyword) => !(keyword in schema));

/** A union, an enum or a list of types as the single schemas it accepts one of. */
function alternatives(schema: JsonSchema): JsonSchema[] {
  const union = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(union)) return union.flatMap((branch) => alternatives(schemaAt(branch)));
  if (Array.isArray(schema.enum)) return schema.enum.map((value) => ({ const: value }));
  if (Array.isArray(schema.type)) return schema.type.map((type) => ({ ...schema, type }));
  return [schema];
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Every integer is a number: integer → number widens, and an integer const is a number. */
const typeAccepts = (next: unknown, previous: unknown): boolean => next === previous || (next === 'number' && previous === 'integer');

const describe = (schema: JsonSchema): string =>
  'const' in schema ? JSON.stringify(schema.const) : isUnconstrained(schema) ? 'any value' : String(schema.type ?? 'a value of another shape');

/** Constraints a new version may only keep or loosen: a lower bound may not rise, an upper one may not fall, the others may not change. */
const lowerBounds = ['minimum', 'exclusiveMinimum', 'minLength', 'minItems', 'minProperties'];
const upperBounds = ['maximum', 'exclusiveMaximum', 'maxLength', 'maxItems', 'maxProperties'];
const fixedConstraints = ['pattern', 'format', 'multipleOf'];

function tightenedConstraints(previous: JsonSchema, next: JsonSchema, path: string): string[] {
  const problems: string[] = [];
  const bound = (keyword: string, tighter: (was: number, now: number) => boolean) => {
    const now = next[keyword];
    if (typeof now !== 'number') return;
    const was = previous[keyword];
    if (typeof was !== 'number') problems.push(`${named(path)}: constraint ${keyword} ${now} added`);
    else if (tighter(was, now)) problems.push(`${named(path)}: constraint ${keyword} tightened from ${was} to ${now}`);
  };
  for (const keyword of lowerBounds) bound(keyword, (was, now) => now > was);
  for (const keyword of upperBounds) bound(keyword, (was, now) => now < was);
  for (const keyword of fixedConstraints) {
    if (keyword in next && canonicalJson(next[keyword]) !== canonicalJson(previous[keyword])) {
      problems.push(`${named(path)}: constraint ${keyword} ${keyword in previous ? 'changed' : 'added'} (${JSON.stringify(next[keyword])})`);
    }
  }
  if (next.uniqueItems === true && previous.uniqueItems !== true) problems.push(`${named(path)}: constraint uniqueItems added`);
  return problems;
}

function objectChanges(previous: JsonSchema, next: JsonSchema, path: string): string[] {
  const problems: string[] = [];
  const previousProperties = schemaAt(previous.properties);
  const nextProperties = schemaAt(next.properties);
  const previousRequired = new Set(Array.isArray(previous.required) ? previous.required : []);
  const nextRequired = new Set(Array.isArray(next.required) ? next.required : []);
  for (const key of Object.keys(previousProperties)) {
    if (!(key in nextProperties)) problems.push(`${join(path, key)}: removed`);
  }
  for (const [key, nextProperty] of Object.entries(nextProperties)) {
    const property = schemaAt(nextProperty);
    const keyPath = join(path, key);
    const withoutDefault = nextRequired.has(key) && !('default' in property);
    if (!(key in previousProperties)) {
      if (withoutDefault) problems.push(`${keyPath}: added as required without a default`);
      continue;
    }
    problems.push(...valueChanges(schemaAt(previousProperties[key]), property, keyPath));
    if (withoutDefault && !previousRequired.has(key)) problems.push(`${keyPath}: became required without a default`);
  }
  if ('patternProperties' in next && canonicalJson(previous.patternProperties) !== canonicalJson(next.patternProperties)) {
    problems.push(`${named(path)}: patternProperties changed in a way that cannot be checked`);
  }
  if (next.additionalProperties === false && previous.additionalProperties !== false) {
    problems.push(`${named(path)}: no longer accepts properties it does not name`);
  }
  return problems;
}

/** What `next` refuses of the values `previous` accepted, each as "path: why". */
function valueChanges(previous: JsonSchema, next: JsonSchema, path: string): string[] {
  if (isUnconstrained(next)) return [];
  if (isUnconstrained(previous)) return [`${named(path)}: narrowed from any value to ${describe(next)}`];
  if (['allOf', 'not', '$ref'].some((keyword) => keyword in previous || keyword in next)) {
    // Shapes this check does not reason about are only safe unchanged.
    return canonicalJson(previous) === canonicalJson(next) ? [] : [`${named(path)}: changed in a way that cannot be checked`];
  }
  const previousAlternatives = alternatives(previous);
  const nextAlternatives = alternatives(next);
  if (previousAlternatives.length > 1 || nextAlternatives.length > 1) {
    return previousAlternatives.flatMap((was) => {
      const candidates = nextAlternatives.map((now) => valueChanges(was, now, path));
      if (candidates.some((problems) => problems.length === 0)) return [];
      // Where one branch is the same kind of value, its own problems say more than "no longer accepts".
      const sameKind = nextAlternatives.flatMap((now, i) => ('const' in was || 'const' in now || !typeAccepts(now.type, was.type) ? [] : [candidates[i]!]));
      return sameKind.length === 1 ? sameKind[0]! : [`${named(path)}: no longer accepts ${describe(was)}`];
    });
  }
  return singleValueChanges(previousAlternatives[0]!, nextAlternatives[0]!, path);
}

function singleValueChanges(previous: JsonSchema, next: JsonSchema, path: string): string[] {
  if ('const' in previous) {
    if ('const' in next) return canonicalJson(previous.const) === canonicalJson(next.const) ? [] : [`${named(path)}: no longer accepts ${describe(previous)}`];
    return typeAccepts(next.type, jsonType(previous.const)) ? [] : [`${named(path)}: no longer accepts ${describe(previous)}`];
  }
  if ('const' in next) return [`${named(path)}: narrowed from every ${describe(previous)} to ${describe(next)}`];
  if (!typeAccepts(next.type, previous.type)) return [`${named(path)}: retyped from ${describe(previous)} to ${describe(next)}`];
  const problems = tightenedConstraints(previous, next, path);
  if (next.type === 'object') problems.push(...objectChanges(previous, next, path));
  if (next.type === 'array') {
    if (isRecord(next.items)) problems.push(...valueChanges(schemaAt(previous.items), next.items, `${path}[]`));
    else if ('items' in next && canonicalJson(previous.items) !== canonicalJson(next.items)) {
      problems.push(`${named(path)}: items changed in a way that cannot be checked`);
    }
  }
  return problems;
}

/**
 * What in `next` breaks backward compatibility with `previous`, as "path: why": every
 * event stored as the previous version must stay readable as the next one. Removing a
 * property, retyping it, narrowing what it accepts, tightening a constraint, or
 * requiring a property without a default breaks it; adding an optional property or one
 * with a default, loosening, and integer → number do not. Works on plain JSON Schema
 * (as stored), not only on TypeBox objects.
 */
export function breakingChanges(previous: TSchema, next: TSchema): string[] {
  return valueChanges(schemaAt(previous), schemaAt(next), '');
}

/** A TypeBox schema as the JSON stored for it (TypeBox's symbol keys dropped). */
const storedForm = (schema: TSchema): JsonSchema => schemaAt(JSON.parse(JSON.stringify(schema)));

/** An event type's version as the registries and their messages name it. */
export const eventSchemaKey = (type: string, version: number): string => `${type} v${version}`;

export type EventSchemaOptions = {
  /**
   * Where the events' Avro schemas are registered: a Confluent-compatible registry elsewhere
   * (SCHEMA_REGISTRY_URL). Without one, Mutuo's own registry, in the same transaction.
   */
  readonly avroRegistry?: SchemaRegistry;
};

/**
 * Each definition's Avro schema under its subject (`mutuo.events.<type>`), version after
 * version, unless the subject holds it already: the schema ids, by definition. A version
 * is checked at its subject's compatibility level by Avro's resolution, but for one with
 * an upcast, for the reason the JSON Schema check skips it: it is registered as Confluent's
 * users make a breaking change, at NONE for that one registration, the subject's level put
 * back after. (In Mutuo's own registry, all of it in one transaction. In a registry
 * elsewhere, a crash between leaves the subject at NONE, which an operator sets back.)
 * Mutuo's consumers read each event by the schema it was written with and upcast it; a
 * reader of the topic with a schema of its own cannot read across an upcast.
 */
async function registerAvroSchemas(registry: SchemaRegistry, ordered: readonly EventDefinition[]): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (const definition of ordered) {
    const name = eventSchemaKey(definition.type, definition.schemaVersion);
    const { subject, schema } = avroEventType(definition);
    const text = JSON.stringify(schema);
    try {
      let id = await registry.lookup(subject, text);
      if (id === undefined && definition.upcast && definition.schemaVersion > 1) {
        const level = await registry.subjectCompatibility(subject);
        await registry.setSubjectCompatibility(subject, 'NONE');
        id = await registry.register(subject, text);
        await registry.setSubjectCompatibility(subject, level);
      }
      ids.set(name, id ?? (await registry.register(subject, text)));
    } catch (error) {
      if (error instanceof RegistryError) throw new SchemaRegistryError(`${name}'s Avro schema was refused: ${error.message}`);
      throw error;
    }
  }
  return ids;
}

/**
 * Registers each definition's schemas unless they are already there, in one transaction:
 * its JSON Schema, and its Avro schema (see registerAvroSchemas), one definition, two
 * forms, one start-up step. A registered version must not have changed, and a new one
 * must be backward compatible with the version before it, unless it has an upcast: then
 * that function reads the events of the version before (a field renamed, a unit changed),
 * which no comparison of schemas can judge; the catalog checks each upcast event against
 * the new schema as it reads it, and the upcast's own tests check it over the old
 * version's values. Anything refused throws SchemaRegistryError and registers nothing
 * (in a registry elsewhere, the Avro versions before the refusal stay: they are valid).
 * Returns the Avro schema ids by definition (eventSchemaKey), for the codec.
 */
export async function registerEventSchemas(
  client: SqlClient,
  definitions: readonly EventDefinition[],
  options: EventSchemaOptions = {},
): Promise<{ registered: string[]; avroSchemaIds: ReadonlyMap<string, number> }> {
  const ordered = [...definitions].sort((a, b) => (a.type === b.type ? a.schemaVersion - b.schemaVersion : a.type < b.type ? -1 : 1));
  return client.transaction(async (tx) => {
    // Several processes may start at once: the first registers, the others then find it done.
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('mutuo.event_schemas'))`);
    const rows = await tx.query<{ event_type: string; schema_version: number; schema: unknown }>(
      'SELECT event_type, schema_version, schema FROM mutuo_event_schemas',
    );
    const key = eventSchemaKey;
    const known = new Map(rows.map((row) => [key(row.event_type, row.schema_version), schemaAt(row.schema)]));
    const registered: string[] = [];
    for (const { type, schemaVersion, schema, upcast } of ordered) {
      const name = key(type, schemaVersion);
      const candidate = storedForm(schema);
      const stored = known.get(name);
      if (stored) {
        if (canonicalJson(stored) !== canonicalJson(candidate)) {
          throw new SchemaRegistryError(`${name} changed after it was registered: give it a new version`);
        }
        continue;
      }
      if (schemaVersion > 1) {
        const previous = known.get(key(type, schemaVersion - 1));
        if (!previous) throw new SchemaRegistryError(`${name} cannot be registered before ${key(type, schemaVersion - 1)}`);
        const problems = upcast ? [] : valueChanges(previous, candidate, '');
        if (problems.length > 0) {
          throw new SchemaRegistryError(`${name} is not backward compatible with v${schemaVersion - 1}: ${problems.join('; ')}`);
        }
      }
      await tx.query('INSERT INTO mutuo_event_schemas (event_type, schema_version, schema) VALUES ($1, $2, $3::jsonb)', [
        type,
        schemaVersion,
        JSON.stringify(candidate),
      ]);
      known.set(name, candidate);
      registered.push(name);
    }
    const avroSchemaIds = await registerAvroSchemas(options.avroRegistry ?? sqlSchemaRegistry(withinTransaction(tx)), ordered);
    return { registered, avroSchemaIds };
  });
}
