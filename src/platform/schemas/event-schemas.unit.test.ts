import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Type, type TSchema } from '@sinclair/typebox';
import { createEventCatalog, EventDecodeError } from '../eventstore/event-catalog.ts';
import { defineEvent } from '../eventstore/event-definition.ts';
import { breakingChanges } from './event-schemas.ts';

const object = (properties: Parameters<typeof Type.Object>[0]) => Type.Object(properties);
/** A schema as it comes back from the registry's table: plain JSON, no TypeBox symbols. */
const asStored = (schema: TSchema): TSchema => JSON.parse(JSON.stringify(schema)) as TSchema;

describe('breakingChanges', () => {
  const refused: [string, TSchema, TSchema, string[]][] = [
    ['a removed property', object({ a: Type.String(), b: Type.String() }), object({ a: Type.String() }), ['b: removed']],
    ['a removed optional property', object({ a: Type.Optional(Type.String()) }), object({}), ['a: removed']],
    ['a retyped property', object({ a: Type.String() }), object({ a: Type.Number() }), ['a: retyped from string to number']],
    ['number narrowed to integer', object({ a: Type.Number() }), object({ a: Type.Integer() }), ['a: retyped from number to integer']],
    ['a property added as required', object({}), object({ energyClass: Type.String() }), ['energyClass: added as required without a default']],
    ['an optional property made required', object({ a: Type.Optional(Type.String()) }), object({ a: Type.String() }), ['a: became required without a default']],
    [
      'a union that drops a literal',
      object({ kind: Type.Union([Type.Literal('a'), Type.Literal('b')]) }),
      object({ kind: Type.Union([Type.Literal('a'), Type.Literal('c')]) }),
      ['kind: no longer accepts "b"'],
    ],
    ['a nullable made non-null', object({ note: Type.Union([Type.String(), Type.Null()]) }), object({ note: Type.String() }), ['note: no longer accepts null']],
    ['a string narrowed to a const', object({ a: Type.String() }), object({ a: Type.Literal('x') }), ['a: narrowed from every string to "x"']],
    ['a const changed', object({ a: Type.Literal('x') }), object({ a: Type.Literal('y') }), ['a: no longer accepts "x"']],
    [
      'an enum that drops a value',
      object({ a: Type.Unsafe<string>({ type: 'string', enum: ['x', 'y'] }) }),
      object({ a: Type.Unsafe<string>({ type: 'string', enum: ['x'] }) }),
      ['a: no longer accepts "y"'],
    ],
    [
      'a raised minimum',
      object({ a: Type.Integer({ minimum: 0 }) }),
      object({ a: Type.Integer({ minimum: 1 }) }),
      ['a: constraint minimum tightened from 0 to 1'],
    ],
    ['an added format', object({ a: Type.String() }), object({ a: Type.String({ format: 'uuid' }) }), ['a: constraint format added ("uuid")']],
    [
      'a property removed in a nested object',
      object({ property: object({ valueCents: Type.Integer(), region: Type.String() }) }),
      object({ property: object({ valueCents: Type.Integer() }) }),
      ['property.region: removed'],
    ],
    [
      'a required property added in a nested object',
      object({ property: object({ valueCents: Type.Integer() }) }),
      object({ property: object({ valueCents: Type.Integer(), energyClass: Type.String() }) }),
      ['property.energyClass: added as required without a default'],
    ],
    [
      'a retyped property inside array items',
      object({ items: Type.Array(object({ amount: Type.Integer() })) }),
      object({ items: Type.Array(object({ amount: Type.String() })) }),
      ['items[].amount: retyped from integer to string'],
    ],
    [
      'a change inside a nullable object',
      object({ guarantor: Type.Union([object({ name: Type.String() }), Type.Null()]) }),
      object({ guarantor: Type.Union([object({ name: Type.String(), taxCode: Type.String() }), Type.Null()]) }),
      ['guarantor.taxCode: added as required without a default'],
    ],
    [
      'an object closed to unknown properties',
      object({}),
      Type.Object({}, { additionalProperties: false }),
      ['(root): no longer accepts properties it does not name'],
    ],
    ['the root retyped', object({}), Type.String(), ['(root): retyped from object to string']],
  ];
  for (const [name, previous, next, expected] of refused) {
    it(`refuses ${name}`, () => {
      assert.deepEqual(breakingChanges(previous, next), expected);
      assert.deepEqual(breakingChanges(asStored(previous), asStored(next)), expected, 'the same on the stored JSON');
    });
  }

  const allowed: [string, TSchema, TSchema][] = [
    ['no change', object({ a: Type.String() }), object({ a: Type.String() })],
    ['an optional property added', object({ a: Type.String() }), object({ a: Type.String(), b: Type.Optional(Type.String()) })],
    ['a required property added with a default', object({}), object({ energyClass: Type.String({ default: 'unknown' }) })],
    ['an optional property made required with a default', object({ a: Type.Optional(Type.String()) }), object({ a: Type.String({ default: '' }) })],
    ['a required property made optional', object({ a: Type.String() }), object({ a: Type.Optional(Type.String()) })],
    ['integer widened to number', object({ a: Type.Integer() }), object({ a: Type.Number() })],
    [
      'a union that gains a literal',
      object({ kind: Type.Union([Type.Literal('a'), Type.Literal('b')]) }),
      object({ kind: Type.Union([Type.Literal('a'), Type.Literal('b'), Type.Literal('c')]) }),
    ],
    ['a literal widened to its type', object({ a: Type.Literal('x') }), object({ a: Type.String() })],
    ['a type made nullable', object({ a: Type.String() }), object({ a: Type.Union([Type.String(), Type.Null()]) })],
    ['a loosened constraint', object({ a: Type.Integer({ minimum: 1, maximum: 9 }) }), object({ a: Type.Integer({ minimum: 0 }) })],
    ['a format dropped', object({ a: Type.String({ format: 'uuid' }) }), object({ a: Type.String() })],
    ['anything accepted', object({ a: Type.String() }), object({ a: Type.Unknown() })],
    [
      'an optional property added in a nested object',
      object({ property: object({ valueCents: Type.Integer() }) }),
      object({ property: object({ valueCents: Type.Integer(), floorAreaM2: Type.Optional(Type.Number()) }) }),
    ],
    [
      'a property with a default added inside array items',
      object({ items: Type.Array(object({ amount: Type.Integer() })) }),
      object({ items: Type.Array(object({ amount: Type.Integer(), currency: Type.String({ default: 'EUR' }) })) }),
    ],
    [
      'a nested union with a default added (PropertyDetailsUpdated v1 → v2)',
      object({ property: object({ valueCents: Type.Integer() }) }),
      object({
        property: object({ valueCents: Type.Integer(), energyClass: Type.Union([Type.Literal('A'), Type.Literal('unknown')], { default: 'unknown' }) }),
      }),
    ],
  ];
  for (const [name, previous, next] of allowed) {
    it(`accepts ${name}`, () => {
      assert.deepEqual(breakingChanges(previous, next), []);
      assert.deepEqual(breakingChanges(asStored(previous), asStored(next)), [], 'the same on the stored JSON');
    });
  }
});

describe('event catalog', () => {
  // A test-only type: v2 adds `currency` through its default, v3 renames `amount` to
  // `amountCents` (in cents) through a custom upcast.
  const PaidV1 = defineEvent('TestPaid', 1, Type.Object({ amount: Type.Number() }));
  const PaidV2 = defineEvent('TestPaid', 2, Type.Object({ amount: Type.Number(), currency: Type.String({ default: 'EUR' }) }));
  const PaidV3 = defineEvent('TestPaid', 3, Type.Object({ amountCents: Type.Integer({ minimum: 0 }), currency: Type.String() }), {
    upcast: (previous) => {
      const { amount, currency } = previous as { amount: number; currency: string };
      return { amountCents: Math.round(amount * 100), currency };
    },
  });
  const Noted = defineEvent('TestNoted', 1, Type.Object({ note: Type.String(), at: Type.String({ format: 'date-time' }) }));
  // Out of order on purpose: the catalog sorts the versions of each type.
  const catalog = createEventCatalog([PaidV3, Noted, PaidV1, PaidV2]);

  it('upcasts v1 → v2 → v3, through the defaults and then the custom upcast', () => {
    assert.deepEqual(catalog.decode('TestPaid', 1, { amount: 12.5 }), { type: 'TestPaid', schemaVersion: 3, data: { amountCents: 1250, currency: 'EUR' } });
    assert.deepEqual(catalog.decode('TestPaid', 2, { amount: 3, currency: 'CHF' }), {
      type: 'TestPaid',
      schemaVersion: 3,
      data: { amountCents: 300, currency: 'CHF' },
    });
    assert.deepEqual(catalog.decode('TestPaid', 3, { amountCents: 7, currency: 'EUR' }).data, { amountCents: 7, currency: 'EUR' });
  });

  it('types a decoded event as the latest version of its type', () => {
    const event = catalog.decode('TestPaid', 1, { amount: 1 });
    if (event.type === 'TestPaid') {
      const cents: number = event.data.amountCents;
      assert.equal(cents, 100);
    }
  });

  it('never changes the data it is given', () => {
    const stored = { amount: 1 };
    catalog.decode('TestPaid', 1, stored);
    assert.deepEqual(stored, { amount: 1 });
    const nested = defineEvent('TestNested', 1, Type.Object({ inner: Type.Object({ a: Type.String() }) }));
    const nestedV2 = defineEvent('TestNested', 2, Type.Object({ inner: Type.Object({ a: Type.String(), b: Type.String({ default: 'b' }) }) }));
    const data = Object.freeze({ inner: Object.freeze({ a: 'a' }) });
    assert.deepEqual(createEventCatalog([nested, nestedV2]).decode('TestNested', 1, data).data, { inner: { a: 'a', b: 'b' } });
    assert.deepEqual(data, { inner: { a: 'a' } });
  });

  it('refuses an unknown type, an unknown version and invalid data', () => {
    const refusal = (reason: string, message: RegExp) => (error: unknown) =>
      error instanceof EventDecodeError && error.reason === reason && message.test(error.message);
    assert.throws(() => catalog.decode('TestRefunded', 1, {}), refusal('UNKNOWN_TYPE', /TestRefunded/));
    assert.throws(() => catalog.decode('TestPaid', 4, {}), refusal('UNKNOWN_VERSION', /TestPaid has no version 4/));
    assert.throws(() => catalog.decode('TestPaid', 0, {}), refusal('UNKNOWN_VERSION', /TestPaid/));
    assert.throws(() => catalog.decode('TestPaid', 3, { amountCents: -1, currency: 'EUR' }), refusal('INVALID', /TestPaid v3 is invalid at amountCents/));
    assert.throws(() => catalog.decode('TestPaid', 1, { amount: 'ten' }), refusal('INVALID', /TestPaid v1 \(read as v3\) is invalid at amountCents/));
    assert.throws(() => catalog.decode('TestPaid', 1, null), refusal('INVALID', /TestPaid v2 could not be upcast to v3/));
    assert.throws(() => catalog.decode('TestNoted', 1, { note: 'n', at: 'yesterday' }), refusal('INVALID', /TestNoted v1 is invalid at at:/));
    assert.equal(catalog.decode('TestNoted', 1, { note: 'n', at: '2026-11-10T09:00:00.000Z' }).type, 'TestNoted');
  });

  it('checks data about to be written against the latest version', () => {
    assert.doesNotThrow(() => catalog.check('TestPaid', { amountCents: 1, currency: 'EUR' }));
    assert.throws(
      () => catalog.check('TestPaid', { amount: 1, currency: 'EUR' }),
      (error) => error instanceof EventDecodeError && error.reason === 'INVALID' && /TestPaid v3 is invalid at amountCents/.test(error.message),
    );
    assert.throws(
      () => catalog.check('TestRefunded', {}),
      (error) => error instanceof EventDecodeError && error.reason === 'UNKNOWN_TYPE',
    );
  });

  it('tells the latest version of a type and lists every definition', () => {
    assert.equal(catalog.latestVersion('TestPaid'), 3);
    assert.equal(catalog.latestVersion('TestNoted'), 1);
    assert.equal(catalog.definitions.length, 4);
  });

  it('refuses at construction a version defined twice and a gap between versions', () => {
    assert.throws(() => createEventCatalog([PaidV1, PaidV2, defineEvent('TestPaid', 2, Type.Object({}))]), /TestPaid v2 is defined twice/);
    assert.throws(() => createEventCatalog([PaidV1, PaidV3]), /TestPaid has v3 but no v2/);
    assert.throws(() => createEventCatalog([PaidV2]), /TestPaid has v2 but no v1/);
  });
});
