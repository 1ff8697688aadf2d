import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { applicationEventHistory, PropertyDetailsUpdated } from '../../features/application/events.ts';
import { defineEvent, type EventDefinition } from '../eventstore/event-definition.ts';
import { breakingChanges, registerEventSchemas, SchemaRegistryError } from './event-schemas.ts';
import { openTestPglite, type TestDatabase } from '../sql/testing.ts';
import { sqlSchemaRegistry } from './registry.ts';

const allDefinitions: readonly EventDefinition[] = applicationEventHistory;

const byType = (definitions: readonly EventDefinition[]): Map<string, EventDefinition[]> => {
  const grouped = new Map<string, EventDefinition[]>();
  for (const definition of definitions) grouped.set(definition.type, [...(grouped.get(definition.type) ?? []), definition]);
  for (const versions of grouped.values()) versions.sort((a, b) => a.schemaVersion - b.schemaVersion);
  return grouped;
};

describe('the current event definitions', () => {
  for (const [type, versions] of byType(allDefinitions)) {
    it(`${type}: every version reads the one before it, by its schema or by its upcast`, () => {
      for (const [i, definition] of versions.entries()) assert.equal(definition.schemaVersion, i + 1, `${type} versions run 1, 2, …`);
      for (let i = 1; i < versions.length; i++) {
        // An upcast's own tests read the previous version's values through it (for the rate events, features/rates/rate-events.unit.test.ts).
        if (versions[i]!.upcast) continue;
        assert.deepEqual(breakingChanges(versions[i - 1]!.schema, versions[i]!.schema), [], `${type} v${i} → v${i + 1}`);
      }
    });
  }
});

describe('schema registry on PGlite', () => {
  let database: TestDatabase;
  const storedSchemas = () =>
    database.client.query<{ event_type: string; schema_version: number }>(
      'SELECT event_type, schema_version FROM mutuo_event_schemas ORDER BY event_type, schema_version',
    );

  before(async () => {
    database = await openTestPglite();
  });
  after(() => database.dispose());

  it('registers every current definition once, and again finds nothing to do', async () => {
    const first = await registerEventSchemas(database.client, allDefinitions);
    assert.equal(first.registered.length, allDefinitions.length);
    assert.ok(first.registered.includes('PropertyDetailsUpdated v1') && first.registered.includes('PropertyDetailsUpdated v2'));
    const again = await registerEventSchemas(database.client, allDefinitions);
    assert.deepEqual(again.registered, []);
    assert.equal((await storedSchemas()).length, allDefinitions.length);
    // The Avro schemas too: one per definition, each subject's versions in order, the same ids again.
    assert.equal(first.avroSchemaIds.size, allDefinitions.length);
    assert.deepEqual(again.avroSchemaIds, first.avroSchemaIds);
    const registry = sqlSchemaRegistry(database.client);
    assert.ok((await registry.subjects()).includes('mutuo.events.MortgageApplicationSubmitted'));
    assert.deepEqual(await registry.versions('mutuo.events.InterestRateLocked'), [1, 2]);
    const v2 = await registry.version('mutuo.events.InterestRateLocked', 2);
    assert.equal(v2.id, first.avroSchemaIds.get('InterestRateLocked v2'));
    assert.equal(JSON.parse(v2.schema)['mutuo.schemaVersion'], 2);
    // Registered across its upcast at NONE, and the subject's level put back as it was: none of its own.
    assert.equal(await registry.subjectCompatibility('mutuo.events.InterestRateLocked'), undefined);
  });

  it('refuses a schema changed under a registered version, and stores nothing', async () => {
    const before = await storedSchemas();
    const changed = defineEvent('ApplicationRejected', 1, Type.Object({ reason: Type.String(), rejectedAt: Type.String(), by: Type.Optional(Type.String()) }));
    // Registered in type order, so this one is inserted before the refusal, and rolled back.
    const newType = defineEvent('AccountClosed', 1, Type.Object({ at: Type.String() }));
    await assert.rejects(
      registerEventSchemas(database.client, [newType, ...allDefinitions.filter((d) => d.type !== 'ApplicationRejected'), changed]),
      (error) => error instanceof SchemaRegistryError && /ApplicationRejected v1 changed after it was registered: give it a new version/.test(error.message),
    );
    assert.deepEqual(await storedSchemas(), before, 'the new type before it was not kept either');
  });

  it('refuses a breaking new version, and stores nothing', async () => {
    const before = await storedSchemas();
    const compatible = defineEvent('AccountClosed', 1, Type.Object({ at: Type.String() }));
    const breaking = defineEvent(
      'PropertyDetailsUpdated',
      3,
      Type.Object({ property: Type.Object({ valueCents: Type.Integer(), floorAreaM2: Type.Number() }), updatedAt: Type.String() }),
    );
    await assert.rejects(registerEventSchemas(database.client, [...allDefinitions, compatible, breaking]), (error) => {
      assert.ok(error instanceof SchemaRegistryError);
      assert.match(error.message, /PropertyDetailsUpdated v3 is not backward compatible with v2/);
      assert.match(error.message, /property\.region: removed/);
      assert.match(error.message, /property\.floorAreaM2: added as required without a default/);
      return true;
    });
    assert.deepEqual(await storedSchemas(), before);
  });

  it('registers a new version that its schema alone could not read the previous one with, when it has an upcast', async () => {
    const renamed = Type.Object({ reason: Type.String(), rejectedAt: Type.String(), rejectedBy: Type.String() });
    const withoutUpcast = defineEvent('ApplicationRejected', 2, renamed);
    await assert.rejects(
      registerEventSchemas(database.client, [...allDefinitions, withoutUpcast]),
      /ApplicationRejected v2 is not backward compatible with v1: rejectedBy: added as required/,
    );
    const withUpcast = defineEvent('ApplicationRejected', 2, renamed, {
      upcast: (previous) => ({ ...(previous as { reason: string; rejectedAt: string }), rejectedBy: 'unknown' }),
    });
    assert.deepEqual((await registerEventSchemas(database.client, [...allDefinitions, withUpcast])).registered, ['ApplicationRejected v2']);
  });

  it('registers a compatible new version after the registered ones', async () => {
    const v3 = defineEvent(
      'PropertyDetailsUpdated',
      3,
      Type.Object({
        property: Type.Object({ ...PropertyDetailsUpdated.schema.properties.property.properties, floorAreaM2: Type.Optional(Type.Number()) }),
        updatedAt: Type.String({ format: 'date-time' }),
      }),
    );
    assert.deepEqual((await registerEventSchemas(database.client, [...allDefinitions, v3])).registered, ['PropertyDetailsUpdated v3']);
    assert.deepEqual(await sqlSchemaRegistry(database.client).versions('mutuo.events.PropertyDetailsUpdated'), [1, 2, 3]);
  });

  it('refuses a version whose previous one is nowhere', async () => {
    const orphan = defineEvent('TestOrphan', 2, Type.Object({}));
    await assert.rejects(registerEventSchemas(database.client, [orphan]), /TestOrphan v2 cannot be registered before TestOrphan v1/);
  });
});
