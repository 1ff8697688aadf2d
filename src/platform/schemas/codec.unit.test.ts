import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { platformEventHistory } from '../../app/catalog.ts';
import { PropertyDetailsUpdated } from '../../features/application/events.ts';
import { avroEventType, parseAvroSchema } from './avro.ts';
import { AvroDecodingError, createAvroEventCodec } from './codec.ts';
import { eventSchemaKey } from './event-schemas.ts';
import { registryErrors, type SchemaRegistry } from './registry.ts';

/** A registry that holds these schemas by id, and nothing else. */
function registryOf(schemas: ReadonlyMap<number, unknown>): SchemaRegistry {
  const refuse = () => Promise.reject(new Error('not in this test'));
  return {
    register: refuse,
    lookup: refuse,
    schemaById: async (id) => {
      const schema = schemas.get(id);
      if (schema === undefined) throw registryErrors.schemaNotFound();
      return JSON.stringify(schema);
    },
    subjectCompatibility: refuse,
    setSubjectCompatibility: refuse,
  };
}

const schemaIds = new Map(platformEventHistory.map((definition, i) => [eventSchemaKey(definition.type, definition.schemaVersion), i + 1]));
const property = { valueCents: 30_000_000, region: 'Lombardia', energyClass: 'B' };

describe('the Avro codec', () => {
  it("writes Confluent's wire format: a zero byte, the schema id big-endian, the Avro binary; and reads it back", async () => {
    const codec = createAvroEventCodec({ registry: registryOf(new Map()), definitions: platformEventHistory, schemaIds });
    const event = { type: 'PropertyDetailsUpdated', schemaVersion: 2, data: { property, updatedAt: '2026-03-01T10:00:00.000Z' } };
    const bytes = codec.encodeEvent(event);
    const id = schemaIds.get('PropertyDetailsUpdated v2')!;
    assert.deepEqual([...bytes.subarray(0, 5)], [0, 0, 0, id >> 8, id & 0xff]);
    const avro = avroEventType(PropertyDetailsUpdated);
    assert.deepEqual(bytes.subarray(5), avro.type.toBuffer(avro.toAvro(event.data)));
    assert.deepEqual(await codec.decodeEvent(bytes), event);
  });

  it("reads an id it did not register by the registry's schema, resolved to its own", async () => {
    // The writer's schema of another process: PropertyDetailsUpdated v2 before energyClass (as a mapping of old might have made it).
    const own = avroEventType(PropertyDetailsUpdated).schema as { fields: { name: string; type: unknown }[] };
    const { fields: propertyFields, ...propertyRecord } = own.fields[0]!.type as { fields: { name: string }[] };
    const writerSchema = {
      ...own,
      fields: [{ ...own.fields[0], type: { ...propertyRecord, fields: propertyFields.filter((f) => f.name !== 'energyClass') } }, own.fields[1]],
    };
    const writer = parseAvroSchema(writerSchema);
    const payload = writer.toBuffer({ property: { valueCents: 1, region: 'Lazio', province: null, type: null }, updatedAt: 'x' });
    const codec = createAvroEventCodec({ registry: registryOf(new Map([[900, writerSchema]])), definitions: platformEventHistory, schemaIds });
    const bytes = Buffer.concat([Buffer.from([0, 0, 0, 0x03, 0x84]), payload]);
    assert.deepEqual(await codec.decodeEvent(bytes), {
      type: 'PropertyDetailsUpdated',
      schemaVersion: 2,
      data: { property: { valueCents: 1, region: 'Lazio', energyClass: 'unknown' }, updatedAt: 'x' },
    });
  });

  it('refuses bytes that are not an event of the catalog in the wire format', async () => {
    const foreign = { type: 'record', name: 'com.example.Other', fields: [] };
    const codec = createAvroEventCodec({ registry: registryOf(new Map([[901, foreign]])), definitions: platformEventHistory, schemaIds });
    await assert.rejects(codec.decodeEvent(Buffer.from([1, 0, 0, 0, 1])), AvroDecodingError);
    await assert.rejects(codec.decodeEvent(Buffer.from([0, 0, 0])), AvroDecodingError);
    await assert.rejects(
      codec.decodeEvent(Buffer.from([0, 0, 0, 0x03, 0x85])),
      /schema 901 \(com\.example\.Other vundefined\) is not a schema of an event this process knows/,
    );
    await assert.rejects(codec.decodeEvent(Buffer.from([0, 0, 0, 0x7f, 0x7f])), (error) => (error as { errorCode?: number }).errorCode === 40403);
    const id = schemaIds.get('ApplicationApproved v1')!;
    await assert.rejects(codec.decodeEvent(Buffer.from([0, 0, 0, 0, id, 0x80])), /the bytes of schema \d+ are not a ApplicationApproved v1/);
    assert.throws(() => codec.encodeEvent({ type: 'ApplicationApproved', schemaVersion: 1, data: { contractNumber: 'C-1' } }), /approvedAt: missing/);
  });
});
