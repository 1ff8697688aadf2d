import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KindGuard, Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { platformEventHistory } from '../../app/catalog.ts';
import { PropertyDetailsUpdated, PropertyDetailsUpdatedV1 } from '../../features/application/events.ts';
import { defineEvent, type EventDefinition } from '../eventstore/event-definition.ts';
import { AvroEncodingError, AvroMappingError, avroEventType, maxExactLong, parseAvroSchema } from './avro.ts';

/** Any value the TypeBox schema accepts (strings well-formed: JSON in PostgreSQL and UTF-8 both refuse a lone surrogate). */
function anyValueOf(schema: TSchema): fc.Arbitrary<unknown> {
  if (KindGuard.IsUnion(schema)) return fc.oneof(...schema.anyOf.map(anyValueOf));
  if (KindGuard.IsLiteral(schema)) return fc.constant(schema.const);
  if (KindGuard.IsNull(schema)) return fc.constant(null);
  if (KindGuard.IsString(schema)) {
    const instant = fc.date({ min: new Date('1900-01-01'), max: new Date('2999-12-31'), noInvalidDate: true });
    if (schema.format === 'uuid') return fc.uuid();
    if (schema.format === 'date-time') return instant.map((date) => date.toISOString());
    if (schema.format === 'date') return instant.map((date) => date.toISOString().slice(0, 10));
    if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
    return fc.string({ unit: 'grapheme', maxLength: 20 });
  }
  if (KindGuard.IsInteger(schema)) return fc.integer({ min: schema.minimum ?? -maxExactLong, max: schema.maximum ?? maxExactLong });
  if (KindGuard.IsNumber(schema)) return fc.double({ noNaN: true, noDefaultInfinity: true });
  if (KindGuard.IsBoolean(schema)) return fc.boolean();
  if (KindGuard.IsArray(schema)) return fc.array(anyValueOf(schema.items), { minLength: schema.minItems ?? 0, maxLength: 4 });
  if (KindGuard.IsObject(schema)) {
    const properties = Object.fromEntries(Object.entries(schema.properties).map(([name, property]) => [name, anyValueOf(property)]));
    return fc.record(properties, { requiredKeys: [...(schema.required ?? [])], noNullPrototype: true });
  }
  throw new Error(`no generator for ${JSON.stringify(schema)}`);
}

const sealed = fc.base64String({ minLength: 4, maxLength: 40 }).map((text) => ({ $sealed: `v1.${text}` }));

/** An event's data as it is stored and published: any valid data, its personal fields sometimes sealed. */
function storedDataOf(definition: EventDefinition): fc.Arbitrary<Record<string, unknown>> {
  const personal = Object.keys(definition.personal?.erased ?? {});
  return anyValueOf(definition.schema).chain((data) => {
    const fields = data as Record<string, unknown>;
    const sealable = personal.filter((field) => fields[field] !== undefined && fields[field] !== null);
    return fc
      .subarray(sealable)
      .chain((toSeal) =>
        fc.tuple(...toSeal.map(() => sealed)).map((seals) => ({ ...fields, ...Object.fromEntries(toSeal.map((field, i) => [field, seals[i]])) })),
      );
  });
}

const isAvroSymbol = (value: unknown) => typeof value === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(value);

/**
 * The schema without what Avro cannot say (formats, patterns, bounds, string values that
 * are not Avro symbols and so no enum): what every value of the Avro schema must pass.
 */
function structureOf(schema: TSchema): TSchema {
  const constraints = new Set([
    'format',
    'pattern',
    'minimum',
    'maximum',
    'exclusiveMinimum',
    'exclusiveMaximum',
    'minLength',
    'maxLength',
    'minItems',
    'maxItems',
  ]);
  const copy = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(copy);
    if (typeof value !== 'object' || value === null) return value;
    if (KindGuard.IsUnion(value) && value.anyOf.every(KindGuard.IsLiteralString) && !value.anyOf.every((member) => isAvroSymbol(member.const))) {
      return Type.String();
    }
    const result: Record<string | symbol, unknown> = {};
    for (const key of Reflect.ownKeys(value)) {
      if (typeof key === 'string' && constraints.has(key)) continue;
      result[key] = copy((value as Record<string | symbol, unknown>)[key]);
    }
    return result;
  };
  return copy(schema) as TSchema;
}

const isSealedValue = (value: unknown) => typeof value === 'object' && value !== null && Object.keys(value).join() === '$sealed';

describe('the Avro form of every event definition in the catalog', () => {
  for (const definition of platformEventHistory) {
    const name = `${definition.type} v${definition.schemaVersion}`;

    it(`${name}: any valid data, sealed or not, reads back from Avro as it was written`, () => {
      const avro = avroEventType(definition);
      assert.equal(avro.subject, `mutuo.events.${definition.type}`);
      fc.assert(
        fc.property(storedDataOf(definition), (data) => {
          const written = avro.type.toBuffer(avro.toAvro(data));
          const read = avro.fromAvro(avro.type.fromBuffer(written));
          assert.deepStrictEqual(read, data);
        }),
        { numRuns: 150 },
      );
    });

    it(`${name}: every value its Avro schema holds is one its TypeBox schema takes, but for the constraints Avro cannot say`, () => {
      const avro = avroEventType(definition);
      const structure = structureOf(definition.schema);
      const personal = new Set(Object.keys(definition.personal?.erased ?? {}));
      for (let i = 0; i < 150; i++) {
        const data = avro.fromAvro(avro.type.random()) as Record<string, unknown>;
        // A sealed personal field stands for a value of the schema that only its subject's key opens.
        const opened = Object.fromEntries(Object.entries(data).filter(([field, value]) => !(personal.has(field) && isSealedValue(value))));
        const unsealedFields = Object.keys(data).filter((field) => !isSealedValue(data[field]));
        const check = Type.Object(
          Object.fromEntries(unsealedFields.map((field) => [field, (structure as unknown as { properties: Record<string, TSchema> }).properties[field]!])),
          { additionalProperties: false },
        );
        assert.ok(Value.Check(check, opened), `${JSON.stringify(data)}: ${[...Value.Errors(check, opened)].map((e) => `${e.path} ${e.message}`).join('; ')}`);
      }
    });
  }
});

describe('the Avro mapping', () => {
  const Example = defineEvent(
    'ExampleHappened',
    3,
    Type.Object({
      id: Type.String({ format: 'uuid' }),
      note: Type.Optional(Type.String({ description: 'a note' })),
      kind: Type.Union([Type.Literal('one'), Type.Literal('two')], { default: 'one' }),
      level: Type.Union([Type.Literal('low-ish'), Type.Literal('high')]),
      amount: Type.Number(),
      count: Type.Union([Type.Integer(), Type.Null()]),
      done: Type.Boolean(),
      tags: Type.Array(Type.Object({ name: Type.String() })),
    }),
  );

  it('names the record after the event type in mutuo.events, records its version, and maps each shape', () => {
    const { schema } = avroEventType(Example);
    assert.equal(schema.name, 'mutuo.events.ExampleHappened');
    assert.equal(schema['mutuo.schemaVersion'], 3);
    assert.deepEqual(schema.fields, [
      { name: 'id', type: { type: 'string', logicalType: 'uuid' } },
      { name: 'note', doc: 'a note', type: ['null', 'string'], default: null },
      { name: 'kind', type: { type: 'enum', name: 'mutuo.events.ExampleHappened.Kind', symbols: ['one', 'two'], default: 'one' }, default: 'one' },
      { name: 'level', type: { type: 'string', 'mutuo.values': ['low-ish', 'high'] } },
      { name: 'amount', type: 'double' },
      { name: 'count', type: ['null', 'long'] },
      { name: 'done', type: 'boolean' },
      {
        name: 'tags',
        type: { type: 'array', items: { type: 'record', name: 'mutuo.events.ExampleHappened.TagsItem', fields: [{ name: 'name', type: 'string' }] } },
      },
    ]);
  });

  it('refuses data it could not read back as written, naming the field', () => {
    const avro = avroEventType(Example);
    const valid = { id: '5b0ab7a4-3f57-4d8e-a0a5-6f6a8b3c2d1e', kind: 'two', level: 'high', amount: 1.5, count: null, done: true, tags: [{ name: 'a' }] };
    assert.deepEqual(avro.fromAvro(avro.type.fromBuffer(avro.type.toBuffer(avro.toAvro(valid)))), valid);
    const refusals: [unknown, RegExp][] = [
      [{ ...valid, extra: 1 }, /^extra: not a field of the schema$/],
      [{ ...valid, tags: [{ name: 'a', colour: 'red' }] }, /^tags\[0\]\.colour: not a field of the schema$/],
      [{ ...valid, done: undefined }, /^done: missing$/],
      [{ ...valid, level: 'medium' }, /^level: "medium" is none of low-ish, high$/],
      [{ ...valid, count: 'many' }, /^count: string is none of null, long$/],
      [{ ...valid, count: -(2 ** 52) - 1 }, /^count: -4503599627370497 is past ±2\^52/],
      [{ ...valid, count: 1.5 }, /^count: number is none of null, long$/],
      [{ ...valid, note: { $sealed: 'v1.x' } }, /^note: sealed is none of null, string$/],
    ];
    for (const [data, message] of refusals) {
      assert.throws(
        () => avro.toAvro(data),
        (error) => error instanceof AvroEncodingError && message.test(error.message),
        JSON.stringify(data),
      );
    }
  });

  it('fails loudly on a shape it has no Avro form for', () => {
    const shapes: [TSchema, RegExp][] = [
      [Type.Object({ any: Type.Any() }), /^any: .* has no Avro form here$/],
      [Type.Object({ map: Type.Record(Type.String(), Type.Integer()) }), /^map: /],
      [Type.Object({ n: Type.Union([Type.Integer(), Type.Number()]) }), /two members take the same kind of value/],
      [Type.Object({ n: Type.Optional(Type.Union([Type.String(), Type.Null()])) }), /optional and nullable at once/],
      [Type.Object({ 'not-a-name': Type.String() }), /not a valid Avro field name/],
      [Type.Object({ tuple: Type.Tuple([Type.String()]) }), /^tuple: /],
    ];
    for (const [schema, message] of shapes) {
      assert.throws(
        () => avroEventType(defineEvent('OddHappened', 1, schema)),
        (error) => error instanceof AvroMappingError && message.test(error.message),
        JSON.stringify(schema),
      );
    }
  });

  it('reads a v1 PropertyDetailsUpdated as v2 by Avro resolution, as the catalog does by its default', () => {
    const v1 = avroEventType(PropertyDetailsUpdatedV1);
    const v2 = avroEventType(PropertyDetailsUpdated);
    const data = { property: { valueCents: 30_000_000, region: 'Lombardia', province: 'MI' }, updatedAt: '2026-01-02T03:04:05.000Z' };
    const resolver = v2.type.createResolver(parseAvroSchema(v1.schema));
    const read = v2.fromAvro(v2.type.fromBuffer(v1.type.toBuffer(v1.toAvro(data)), resolver));
    assert.deepEqual(read, { ...data, property: { ...data.property, energyClass: 'unknown' } });
  });
});
