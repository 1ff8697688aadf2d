import avsc from 'avsc';
import { KindGuard, type TSchema } from '@sinclair/typebox';
import type { EventDefinition } from '../eventstore/event-definition.ts';

/** The namespace of every event's record: with the record name strategy, an event type's subject is `mutuo.events.<type>`. */
export const eventNamespace = 'mutuo.events';

/** The property of an event's record schema that names the definition's version it was made from. */
export const schemaVersionProperty = 'mutuo.schemaVersion';

/** The subject an event type's schemas are registered under (Confluent's RecordNameStrategy: the record's full name). */
export const subjectOf = (eventType: string): string => `${eventNamespace}.${eventType}`;

/** An Avro schema as JSON. */
export type AvroSchema = string | readonly AvroSchema[] | { readonly [key: string]: unknown };

/** An event definition whose schema has a shape this mapping does not give an Avro form: found at start-up, never at the first event. */
export class AvroMappingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AvroMappingError';
  }
}

/** Data its event's Avro schema cannot hold exactly (a missing field, a field the schema does not name, a wrong type). */
export class AvroEncodingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AvroEncodingError';
  }
}

/**
 * An event definition's Avro form: its record schema, the avsc type that reads and writes
 * it, and the conversions between the event's data as Mutuo keeps it (JSON: an optional
 * field absent, a sealed field `{ $sealed }`) and the values avsc takes (unions wrapped).
 */
export type AvroEventType = {
  readonly definition: EventDefinition;
  readonly subject: string;
  readonly schema: { readonly [key: string]: unknown };
  readonly type: avsc.Type;
  /** The data as avsc writes it; throws AvroEncodingError naming the first field that does not fit. */
  readonly toAvro: (data: unknown) => unknown;
  /** What avsc read, as the event's data. */
  readonly fromAvro: (value: unknown) => unknown;
};

/**
 * An Avro schema as avsc reads and writes it, or a throw where it is not valid Avro. Unions
 * are always wrapped (`{ string: "…" }`): which branch a value takes is then never avsc's
 * guess, and a record beside a sealed value is no ambiguity. (avsc keeps the names it
 * defines in the options it is given: each schema gets options of its own.)
 */
export const parseAvroSchema = (schema: AvroSchema): avsc.Type => avsc.Type.forSchema(schema as avsc.Schema, { wrapUnions: true });

/** What kind of JSON value a branch of a union holds: a value goes to the branch of its kind. */
type ValueKind = 'null' | 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object' | 'sealed';

type Branch = {
  readonly schema: AvroSchema;
  /** The branch's name in a wrapped union: its type's name, or a named type's full name. */
  readonly key: string;
  readonly kind: ValueKind;
  /** A default this branch can hold, as it is written in the schema (undefined where it cannot). */
  readonly defaultOf: (value: unknown) => unknown;
  readonly toAvro: (value: unknown, path: string) => unknown;
  readonly fromAvro: (value: unknown) => unknown;
};

/** A value as a field holds it: one branch, or a union of several. */
type Shape = {
  readonly schema: AvroSchema;
  readonly toAvro: (value: unknown, path: string) => unknown;
  readonly fromAvro: (value: unknown) => unknown;
};

const avroName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A personal field as it travels once sealed with its subject's key (privacy's format: `{ $sealed: "v1.<subject>.<iv>.<ciphertext>" }`). */
const sealedKey = '$sealed';
const sealedName = `${eventNamespace}.Sealed`;

function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSealedValue(value: unknown): value is { readonly $sealed: string } {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === sealedKey && typeof value[sealedKey] === 'string';
}

function kindOf(value: unknown): ValueKind | undefined {
  if (value === null) return 'null';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (Array.isArray(value)) return 'array';
  if (isPlainObject(value)) return isSealedValue(value) ? 'sealed' : 'object';
  return undefined;
}

const fits = (branch: Branch, value: unknown): boolean => {
  const kind = kindOf(value);
  return branch.kind === kind || (branch.kind === 'number' && kind === 'integer');
};

const describe = (value: unknown): string => (value === undefined ? 'nothing' : (kindOf(value) ?? typeof value));

/** `applicant.taxCode` → `ApplicantTaxCode`: the name of a record or enum within its event's namespace. */
const pascalCase = (segments: readonly string[]): string => segments.map((segment) => segment.charAt(0).toUpperCase() + segment.slice(1)).join('');

/** What one walk over an event's schema shares: where it is, and the named types it defined (a name is defined once per schema). */
type Walk = { readonly eventType: string; readonly defined: Set<string> };

const identity = (value: unknown) => value;

function primitive(type: 'string' | 'long' | 'double' | 'boolean' | 'null', kind: ValueKind, schema: AvroSchema = type): Branch {
  return {
    schema,
    key: type,
    kind,
    defaultOf: identity,
    toAvro: (value, path) => {
      if (!fits({ kind } as Branch, value)) throw new AvroEncodingError(`${path}: ${describe(value)} where a ${type} belongs`);
      return value;
    },
    fromAvro: identity,
  };
}

/**
 * The integers a long holds here: avsc reads and writes longs as JavaScript numbers, and
 * writes those below -2^52 wrong without a word (the property test over the catalog found
 * -2^52 - 1 read back as 2^52). 2^52 cents is some 45 thousand billion euros.
 */
export const maxExactLong = 2 ** 52;

const longBranch: Branch = {
  ...primitive('long', 'integer'),
  toAvro: (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) throw new AvroEncodingError(`${path}: ${describe(value)} where a long belongs`);
    if (Math.abs(value) > maxExactLong)
      throw new AvroEncodingError(`${path}: ${value} is past ±2^52, which Avro longs are read and written exactly within here`);
    return value;
  },
};

/** String literals: an Avro enum where every one is a valid Avro symbol, else a string (with the values it may take as a property). */
function stringLiterals(values: readonly string[], defaultValue: unknown, walk: Walk, path: readonly string[]): Branch {
  if (!values.every((value) => avroName.test(value))) {
    return { ...primitive('string', 'string', { type: 'string', 'mutuo.values': values }), toAvro: stringIn(values) };
  }
  const name = `${eventNamespace}.${walk.eventType}.${pascalCase(path)}`;
  if (walk.defined.has(name)) throw new AvroMappingError(`${path.join('.')}: the name ${name} is taken`);
  walk.defined.add(name);
  const schema = {
    type: 'enum',
    name,
    symbols: values,
    // A reader meeting a symbol it does not know (a newer writer's) reads the default instead of failing.
    ...(typeof defaultValue === 'string' ? { default: defaultValue } : {}),
  };
  return { schema, key: name, kind: 'string', defaultOf: identity, toAvro: stringIn(values), fromAvro: identity };
}

const stringIn =
  (values: readonly string[]) =>
  (value: unknown, path: string): unknown => {
    if (typeof value !== 'string' || !values.includes(value)) {
      throw new AvroEncodingError(`${path}: ${typeof value === 'string' ? JSON.stringify(value) : describe(value)} is none of ${values.join(', ')}`);
    }
    return value;
  };

function sealedBranch(walk: Walk): Branch {
  const schema = walk.defined.has(sealedName)
    ? sealedName
    : {
        type: 'record',
        name: sealedName,
        doc: "Personal data sealed with its data subject's key (v1.<subject>.<iv>.<ciphertext>); it reads as the field's erased value once the key is destroyed.",
        fields: [{ name: 'sealed', type: 'string' }],
      };
  walk.defined.add(sealedName);
  return {
    schema,
    key: sealedName,
    kind: 'sealed',
    defaultOf: () => undefined,
    toAvro: (value) => ({ sealed: (value as { $sealed: string }).$sealed }),
    fromAvro: (value) => ({ [sealedKey]: (value as { sealed: string }).sealed }),
  };
}

function unsupported(schema: TSchema, path: readonly string[], why = ''): AvroMappingError {
  const at = path.length === 0 ? '(root)' : path.join('.');
  return new AvroMappingError(`${at}: ${JSON.stringify(schema)} has no Avro form here${why ? ` (${why})` : ''}`);
}

/** The branches a value of this schema may take: one, or each of a union's. */
function branchesOf(schema: TSchema, walk: Walk, path: readonly string[]): Branch[] {
  if (KindGuard.IsUnion(schema)) {
    const members = schema.anyOf;
    const literals = members.filter((member) => KindGuard.IsLiteralString(member)).map((member) => member.const as string);
    const others = members.filter((member) => !KindGuard.IsLiteralString(member));
    const branches = others.flatMap((member) => {
      if (KindGuard.IsUnion(member)) return branchesOf(member, walk, path);
      return [singleBranch(member, walk, path)];
    });
    if (literals.length > 0) branches.push(stringLiterals(literals, schema.default, walk, path));
    const kinds = branches.map((branch) => (branch.kind === 'integer' ? 'number' : branch.kind));
    if (new Set(kinds).size !== kinds.length) throw unsupported(schema, path, 'two members take the same kind of value');
    return branches;
  }
  return [singleBranch(schema, walk, path)];
}

function singleBranch(schema: TSchema, walk: Walk, path: readonly string[]): Branch {
  if (KindGuard.IsLiteralString(schema)) return stringLiterals([schema.const], schema.default, walk, path);
  if (KindGuard.IsString(schema)) {
    // Avro's one logical type on a string; the other formats and patterns stay the JSON Schema's to check.
    return primitive('string', 'string', schema.format === 'uuid' ? { type: 'string', logicalType: 'uuid' } : 'string');
  }
  if (KindGuard.IsInteger(schema)) return longBranch;
  if (KindGuard.IsNumber(schema)) return primitive('double', 'number');
  if (KindGuard.IsBoolean(schema)) return primitive('boolean', 'boolean');
  if (KindGuard.IsNull(schema)) return primitive('null', 'null');
  if (KindGuard.IsArray(schema)) {
    const items = shapeOf(branchesOf(schema.items, walk, [...path, 'item']));
    return {
      schema: { type: 'array', items: items.schema },
      key: 'array',
      kind: 'array',
      defaultOf: () => undefined,
      toAvro: (value, at) => {
        if (!Array.isArray(value)) throw new AvroEncodingError(`${at}: ${describe(value)} where an array belongs`);
        return value.map((item, i) => items.toAvro(item, `${at}[${i}]`));
      },
      fromAvro: (value) => (value as unknown[]).map(items.fromAvro),
    };
  }
  if (KindGuard.IsObject(schema)) {
    const name = path.length === 0 ? `${eventNamespace}.${walk.eventType}` : `${eventNamespace}.${walk.eventType}.${pascalCase(path)}`;
    if (walk.defined.has(name)) throw unsupported(schema, path, `the name ${name} is taken`);
    walk.defined.add(name);
    return record(name, schema, walk, path, new Set());
  }
  throw unsupported(schema, path);
}

/** A field's branches as one type: a single branch as itself, several as a wrapped union. */
function shapeOf(branches: readonly Branch[]): Shape {
  if (branches.length === 1) {
    const [only] = branches as [Branch];
    return { schema: only.schema, toAvro: only.toAvro, fromAvro: only.fromAvro };
  }
  const byKey = new Map(branches.map((branch) => [branch.key, branch]));
  return {
    schema: branches.map((branch) => branch.schema),
    toAvro: (value, path) => {
      const branch = branches.find((candidate) => fits(candidate, value));
      if (!branch) throw new AvroEncodingError(`${path}: ${describe(value)} is none of ${branches.map((b) => b.key).join(', ')}`);
      return branch.kind === 'null' ? null : { [branch.key]: branch.toAvro(value, path) };
    },
    fromAvro: (value) => {
      if (value === null) return null;
      const [key, inner] = Object.entries(value as Record<string, unknown>)[0]!;
      return byKey.get(key)!.fromAvro(inner);
    },
  };
}

type Field = { readonly name: string; readonly optional: boolean; readonly shape: Shape };

function record(
  name: string,
  schema: TSchema & { properties: Record<string, TSchema> },
  walk: Walk,
  path: readonly string[],
  personal: ReadonlySet<string>,
): Branch {
  const required = new Set<string>(Array.isArray(schema.required) ? schema.required : []);
  const avroFields: Record<string, unknown>[] = [];
  const fields: Field[] = [];
  for (const [fieldName, property] of Object.entries(schema.properties)) {
    const fieldPath = [...path, fieldName];
    if (!avroName.test(fieldName)) throw unsupported(property, fieldPath, 'not a valid Avro field name');
    const optional = !required.has(fieldName);
    let branches = branchesOf(property, walk, fieldPath);
    if (optional) {
      // Absent is written as null: a field that could also be null would read back as one or the other.
      if (branches.some((branch) => branch.kind === 'null')) throw unsupported(property, fieldPath, 'optional and nullable at once');
      branches = [primitive('null', 'null'), ...branches];
    }
    if (personal.has(fieldName)) branches = [...branches, sealedBranch(walk)];
    const avroDefault = fieldDefault(property, optional, branches, fieldPath);
    // Null leads a union by convention, unless a default of another branch must.
    const leading = avroDefault.branch ?? branches.find((branch) => branch.kind === 'null');
    if (leading) branches = [leading, ...branches.filter((branch) => branch !== leading)];
    const shape = shapeOf(branches);
    avroFields.push({
      name: fieldName,
      ...(typeof property.description === 'string' ? { doc: property.description } : {}),
      type: shape.schema,
      ...(avroDefault.branch ? { default: avroDefault.value } : {}),
    });
    fields.push({ name: fieldName, optional, shape });
  }
  const names = new Set(fields.map((field) => field.name));
  return {
    schema: {
      type: 'record',
      name,
      ...(typeof schema.description === 'string' ? { doc: schema.description } : {}),
      fields: avroFields,
    },
    key: name,
    kind: 'object',
    defaultOf: () => undefined,
    toAvro: (value, at) => {
      if (!isPlainObject(value)) throw new AvroEncodingError(`${at}: ${describe(value)} where an object belongs`);
      const unknown = Object.keys(value).find((key) => !names.has(key));
      // Avro would drop it without a word: the event would not read back as it was written.
      if (unknown !== undefined) throw new AvroEncodingError(`${joinPath(at, unknown)}: not a field of the schema`);
      const written: Record<string, unknown> = {};
      for (const field of fields) {
        const fieldValue = value[field.name];
        if (fieldValue === undefined && !field.optional) throw new AvroEncodingError(`${joinPath(at, field.name)}: missing`);
        written[field.name] = field.shape.toAvro(fieldValue === undefined ? null : fieldValue, joinPath(at, field.name));
      }
      return written;
    },
    fromAvro: (value) => {
      const read: Record<string, unknown> = {};
      for (const field of fields) {
        const fieldValue = field.shape.fromAvro((value as Record<string, unknown>)[field.name]);
        if (!(field.optional && fieldValue === null)) read[field.name] = fieldValue;
      }
      return read;
    },
  };
}

const joinPath = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/**
 * A field's Avro default: the JSON Schema's `default` where it has one (the value a reader
 * gives data written without the field, as the catalog's upcast by defaults does), null for
 * an optional field. Avro takes a union's default from its first branch: that branch leads.
 */
function fieldDefault(property: TSchema, optional: boolean, branches: readonly Branch[], path: readonly string[]): { branch?: Branch; value?: unknown } {
  if (property.default !== undefined) {
    const branch = branches.find((candidate) => fits(candidate, property.default));
    const value = branch?.defaultOf(property.default);
    if (!branch || value === undefined) throw unsupported(property, path, 'a default Avro cannot hold');
    return { branch, value };
  }
  if (optional) return { branch: branches.find((branch) => branch.kind === 'null')!, value: null };
  return {};
}

/**
 * The Avro record schema of an event definition, with the conversions of its data: the
 * record is named after the event type in `mutuo.events`, and records the definition's
 * version. Objects are records (nested ones named by their path: `Applicant`,
 * `BandsFixedItem`), strings strings (a uuid with Avro's logical type), integers longs,
 * numbers doubles, string literals enums (strings where a value is not a valid Avro symbol),
 * null and its union a union; an optional property is a union with null whose default is
 * null, and a JSON Schema default is the field's default. A personal field may also be
 * sealed: its union has `mutuo.events.Sealed` too, since the events travel as stored,
 * their personal data sealed. Any other shape throws AvroMappingError: the catalog's
 * test maps every definition, so a new shape is found before it is deployed.
 */
export function avroEventType(definition: EventDefinition): AvroEventType {
  // Made once per definition: start-up registers it and the codec encodes with it.
  let made = madeTypes.get(definition);
  if (!made) {
    made = makeAvroEventType(definition);
    madeTypes.set(definition, made);
  }
  return made;
}

const madeTypes = new WeakMap<EventDefinition, AvroEventType>();

function makeAvroEventType(definition: EventDefinition): AvroEventType {
  const { type, schemaVersion, schema, personal } = definition;
  if (!avroName.test(type)) throw new AvroMappingError(`${type}: an event type must be a valid Avro name`);
  if (!KindGuard.IsObject(schema)) throw unsupported(schema, [], "an event's data must be an object");
  const walk: Walk = { eventType: type, defined: new Set([`${eventNamespace}.${type}`]) };
  const fields = record(`${eventNamespace}.${type}`, schema, walk, [], new Set(Object.keys(personal?.erased ?? {})));
  const { fields: avroFields } = fields.schema as { fields: unknown };
  const recordSchema = {
    type: 'record',
    name: `${eventNamespace}.${type}`,
    doc: `${type} v${schemaVersion}, an event of Mutuo's catalog${typeof schema.description === 'string' ? `: ${schema.description}` : ''}`,
    [schemaVersionProperty]: schemaVersion,
    fields: avroFields,
  };
  const avroType = parseAvroSchema(recordSchema);
  return {
    definition,
    subject: subjectOf(type),
    schema: recordSchema,
    type: avroType,
    toAvro: (data) => {
      const value = fields.toAvro(data, '');
      let invalid: string | undefined;
      // The walk checks every field; this is the last word of avsc itself, should they ever differ.
      avroType.isValid(value, { errorHook: (path) => (invalid ??= path.join('.')) });
      if (invalid !== undefined) throw new AvroEncodingError(`${invalid || '(root)'}: not a value the ${type} v${schemaVersion} schema holds`);
      return value;
    },
    fromAvro: fields.fromAvro,
  };
}
