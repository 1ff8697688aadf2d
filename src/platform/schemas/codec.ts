import type avsc from 'avsc';
import type { EventDefinition } from '../eventstore/event-definition.ts';
import { AvroEncodingError, avroEventType, eventNamespace, parseAvroSchema, schemaVersionProperty, type AvroEventType } from './avro.ts';
import { canonicalJson } from './canonical-json.ts';
import { eventSchemaKey } from './event-schemas.ts';
import type { SchemaRegistry } from './registry.ts';

/** An event's data as it is stored, published and consumed: at the version it was written at, its personal fields sealed. */
export type WireEvent = { readonly type: string; readonly schemaVersion: number; readonly data: unknown };

/** Bytes that are not an event in Confluent's wire format, or whose schema is none of the catalog's. */
export class AvroDecodingError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AvroDecodingError';
  }
}

export type AvroEventCodec = {
  /**
   * The event's data in Confluent's wire format: a zero byte, the id of its schema in the
   * registry (4 bytes, big-endian), then the Avro binary. What the rest of the message says
   * (event id, stream, position, metadata, time) travels in the message's headers.
   */
  encodeEvent(event: WireEvent): Buffer;
  /** The event these bytes hold, at the version it was written at; the catalog then upcasts it like a stored one. */
  decodeEvent(bytes: Uint8Array): Promise<WireEvent>;
};

const magicByte = 0;
const headerBytes = 5;

/** How the bytes of one schema id are read: the definition they hold, and how to resolve them to its schema as this process knows it. */
type Reader = { readonly avro: AvroEventType; readonly resolver: avsc.Resolver | undefined };

export type AvroEventCodecOptions = {
  readonly registry: SchemaRegistry;
  readonly definitions: readonly EventDefinition[];
  /** The id of each definition's schema, as registering them at start-up found them (see registerEventSchemas). */
  readonly schemaIds: ReadonlyMap<string, number>;
};

/**
 * Encodes with the ids registered at start-up, without a round trip; decodes an id it does
 * not know (written by another version of Mutuo, or by anyone with a schema of the catalog's
 * events) by asking the registry for its schema once, then reads it by Avro's resolution
 * into the definition's schema as this process knows it.
 */
export function createAvroEventCodec({ registry, definitions, schemaIds }: AvroEventCodecOptions): AvroEventCodec {
  const byKey = new Map<string, { readonly avro: AvroEventType; readonly id: number }>();
  const readers = new Map<number, Reader | Promise<Reader>>();
  for (const definition of definitions) {
    const key = eventSchemaKey(definition.type, definition.schemaVersion);
    const id = schemaIds.get(key);
    if (id === undefined) throw new Error(`${key} has no registered Avro schema: register the catalog's schemas first`);
    const avro = avroEventType(definition);
    byKey.set(key, { avro, id });
    readers.set(id, { avro, resolver: undefined });
  }

  async function readerOf(id: number): Promise<Reader> {
    const text = await registry.schemaById(id);
    const written = JSON.parse(text) as { readonly [key: string]: unknown };
    const fullName =
      typeof written.namespace === 'string' && typeof written.name === 'string' && !written.name.includes('.')
        ? `${written.namespace}.${written.name}`
        : written.name;
    const version = written[schemaVersionProperty];
    const type = typeof fullName === 'string' && fullName.startsWith(`${eventNamespace}.`) ? fullName.slice(eventNamespace.length + 1) : undefined;
    const known = type !== undefined && typeof version === 'number' ? byKey.get(eventSchemaKey(type, version)) : undefined;
    if (!known) throw new AvroDecodingError(`schema ${id} (${String(fullName)} v${String(version)}) is not a schema of an event this process knows`);
    const same = canonicalJson(written) === canonicalJson(known.avro.schema);
    return { avro: known.avro, resolver: same ? undefined : known.avro.type.createResolver(parseAvroSchema(written)) };
  }

  return {
    encodeEvent: ({ type, schemaVersion, data }) => {
      const known = byKey.get(eventSchemaKey(type, schemaVersion));
      if (!known) throw new AvroEncodingError(`${eventSchemaKey(type, schemaVersion)} is not an event of the catalog`);
      const body = known.avro.type.toBuffer(known.avro.toAvro(data));
      const header = Buffer.alloc(headerBytes);
      header.writeUInt8(magicByte, 0);
      header.writeUInt32BE(known.id, 1);
      return Buffer.concat([header, body]);
    },
    decodeEvent: async (bytes) => {
      const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (buffer.length < headerBytes || buffer.readUInt8(0) !== magicByte)
        throw new AvroDecodingError('not in the Confluent wire format (a zero byte, a schema id, Avro)');
      const id = buffer.readUInt32BE(1);
      let reader = readers.get(id);
      if (reader === undefined) {
        // Asked once, however many messages of this id arrive meanwhile; a failed look is asked again next time.
        reader = readerOf(id);
        readers.set(id, reader);
        reader.then(
          (found) => readers.set(id, found),
          () => readers.delete(id),
        );
      }
      const { avro, resolver } = await reader;
      let value: unknown;
      try {
        value = avro.type.fromBuffer(buffer.subarray(headerBytes), resolver);
      } catch (error) {
        throw new AvroDecodingError(`the bytes of schema ${id} are not a ${avro.definition.type} v${avro.definition.schemaVersion}`, { cause: error });
      }
      return { type: avro.definition.type, schemaVersion: avro.definition.schemaVersion, data: avro.fromAvro(value) };
    },
  };
}
