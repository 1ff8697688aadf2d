import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SchemaRegistry as ConfluentClient } from '@kafkajs/confluent-schema-registry';
import { loadConfig } from '../../app/config.ts';
import { openPlatform, type Platform } from '../../app/platform.ts';
import { ApplicationApproved } from '../../features/application/events.ts';
import { injectedBearer, type AuthHeaders } from '../../security/testing.ts';
import { avroEventType, parseAvroSchema } from './avro.ts';
import { httpSchemaRegistry } from './registry-client.ts';

const contentType = 'application/vnd.schemaregistry.v1+json';
const record = (fields: unknown[], name = 'Invoice') => JSON.stringify({ type: 'record', name, namespace: 'com.example', fields });
const v1 = record([{ name: 'number', type: 'string' }]);
const withOptionalNote = record([
  { name: 'number', type: 'string' },
  { name: 'note', type: ['null', 'string'], default: null },
]);
const withoutNumber = record([{ name: 'note', type: ['null', 'string'], default: null }]);
const retyped = record([{ name: 'number', type: 'long' }]);
const withRequiredDue = record([
  { name: 'number', type: 'string' },
  { name: 'note', type: ['null', 'string'], default: null },
  { name: 'due', type: 'string' },
]);

describe('the schema registry over HTTP (Confluent REST, on PGlite)', () => {
  let dataDir: string;
  let platform: Platform;
  let baseUrl: string;
  let admin: AuthHeaders;

  type Answer = { status: number; body: unknown; contentType: string | undefined };
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = admin): Promise<Answer> => {
    const response = await platform.server.inject({
      method,
      url: `/registry${path}`,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': contentType }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    return { status: response.statusCode, body: response.body === '' ? undefined : response.json(), contentType: response.headers['content-type'] as string };
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-registry-'));
    platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0' }), false, { services: [] });
    admin = await injectedBearer(platform.server, 'ada');
    baseUrl = await platform.server.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await platform.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("holds every event definition's Avro schema from start-up, under mutuo.events.<type>", async () => {
    const subjects = (await call('GET', '/subjects')).body as string[];
    assert.ok(subjects.includes('mutuo.events.MortgageApplicationSubmitted'));
    assert.deepEqual((await call('GET', '/subjects/mutuo.events.RateTablePublished/versions')).body, [1, 2]);
    const latest = await call('GET', '/subjects/mutuo.events.RateTablePublished/versions/latest');
    assert.match(String(latest.contentType), /^application\/vnd\.schemaregistry\.v1\+json/);
    const { id, version, schema } = latest.body as { id: number; version: number; schema: string };
    assert.equal(version, 2);
    assert.equal(JSON.parse(schema)['mutuo.schemaVersion'], 2);
    assert.deepEqual((await call('GET', `/schemas/ids/${id}`)).body, { schema });
    assert.deepEqual((await call('GET', '/config')).body, { compatibilityLevel: 'BACKWARD' });
  });

  it('registers a schema once: the same schema again, however spelled, keeps its id; reads are public, writes for admins', async () => {
    const first = await call('POST', '/subjects/invoices/versions', { schema: v1 });
    assert.equal(first.status, 200);
    const { id } = first.body as { id: number };
    // Another spelling (key order, spaces, line breaks) of the same schema.
    const respelled = JSON.stringify({ namespace: 'com.example', fields: [{ type: 'string', name: 'number' }], name: 'Invoice', type: 'record' }, null, 2);
    assert.deepEqual((await call('POST', '/subjects/invoices/versions', { schema: respelled, schemaType: 'AVRO' })).body, { id });
    assert.deepEqual((await call('GET', '/subjects/invoices/versions')).body, [1]);
    assert.deepEqual((await call('POST', '/subjects/invoices', { schema: respelled }, {})).body, { subject: 'invoices', version: 1, id, schema: v1 });
    // The same schema under another subject: the same global id, version 1 there.
    assert.deepEqual((await call('POST', '/subjects/invoices-copy/versions', { schema: v1 })).body, { id });
    assert.equal((await call('GET', '/subjects', undefined, {})).status, 200);
    assert.equal((await call('POST', '/subjects/invoices/versions', { schema: withOptionalNote }, {})).status, 401);
    const operator = await injectedBearer(platform.server, 'olivia');
    assert.equal((await call('POST', '/subjects/invoices/versions', { schema: withOptionalNote }, operator)).status, 403);
    assert.equal((await call('PUT', '/config', { compatibility: 'NONE' }, operator)).status, 403);
  });

  it("checks compatibility by Avro's resolution: BACKWARD takes a new optional field, refuses a new required one without a default or a retyped one with 409", async () => {
    const check = async (schema: string) => (await call('POST', '/compatibility/subjects/invoices/versions/latest?verbose=true', { schema })).body;
    assert.deepEqual(await check(withOptionalNote), { is_compatible: true, messages: [] });
    const required = (await check(withRequiredDue)) as { is_compatible: boolean; messages: string[] };
    assert.equal(required.is_compatible, false);
    assert.match(
      required.messages[0]!,
      /the new schema cannot read data written with version 1 \(no matching field for default-less com\.example\.Invoice\.due\)/,
    );
    for (const schema of [withRequiredDue, retyped]) {
      const refused = await call('POST', '/subjects/invoices/versions', { schema });
      assert.equal(refused.status, 409);
      assert.equal((refused.body as { error_code: number }).error_code, 409);
      assert.match((refused.body as { message: string }).message, /incompatible with an earlier schema for subject "invoices"/);
    }
    const added = await call('POST', '/subjects/invoices/versions', { schema: withOptionalNote });
    assert.equal(added.status, 200);
    assert.deepEqual((await call('GET', '/subjects/invoices/versions')).body, [1, 2]);
    // The old reader still reads what the new schema writes.
    const oldReader = parseAvroSchema(JSON.parse(v1));
    const newWriter = parseAvroSchema(JSON.parse(withOptionalNote));
    const written = newWriter.toBuffer({ number: 'INV-1', note: { string: 'paid' } });
    assert.deepEqual({ ...oldReader.fromBuffer(written, oldReader.createResolver(newWriter)) }, { number: 'INV-1' });
  });

  it('keeps compatibility levels: registry-wide and per subject, FORWARD and FULL checked the other way, NONE not at all', async () => {
    assert.equal((await call('GET', '/config/invoices')).status, 404);
    assert.equal(((await call('GET', '/config/invoices')).body as { error_code: number }).error_code, 40408);
    assert.deepEqual((await call('GET', '/config/invoices?defaultToGlobal=true')).body, { compatibilityLevel: 'BACKWARD' });
    assert.deepEqual((await call('PUT', '/config/invoices', { compatibility: 'forward' })).body, { compatibility: 'FORWARD' });
    assert.deepEqual((await call('GET', '/config/invoices')).body, { compatibilityLevel: 'FORWARD' });
    // FORWARD: the latest must read what the new one writes. A new required field is fine; removing a required one without a default is not.
    assert.deepEqual((await call('POST', '/compatibility/subjects/invoices/versions/latest', { schema: withRequiredDue })).body, { is_compatible: true });
    assert.deepEqual((await call('POST', '/compatibility/subjects/invoices/versions/latest', { schema: withoutNumber })).body, { is_compatible: false });
    assert.equal((await call('POST', '/subjects/invoices/versions', { schema: withoutNumber })).status, 409);
    await call('PUT', '/config/invoices', { compatibility: 'FULL' });
    assert.deepEqual((await call('POST', '/compatibility/subjects/invoices/versions/latest', { schema: withRequiredDue })).body, { is_compatible: false });
    await call('PUT', '/config/invoices', { compatibility: 'NONE' });
    assert.equal((await call('POST', '/subjects/invoices/versions', { schema: retyped })).status, 200);
    assert.deepEqual((await call('DELETE', '/config/invoices')).body, { compatibilityLevel: 'NONE' });
    assert.equal((await call('GET', '/config/invoices')).status, 404);
    const invalid = await call('PUT', '/config', { compatibility: 'SOMETIMES' });
    assert.deepEqual([invalid.status, (invalid.body as { error_code: number }).error_code], [422, 42203]);
  });

  it("answers Confluent's error codes", async () => {
    const codes: [Promise<Answer>, number, number][] = [
      [call('GET', '/subjects/nobody/versions'), 404, 40401],
      [call('GET', '/subjects/nobody/versions/1'), 404, 40401],
      [call('GET', '/subjects/invoices/versions/99'), 404, 40402],
      [call('GET', '/subjects/invoices/versions/first'), 422, 42202],
      [call('GET', '/subjects/invoices/versions/0'), 422, 42202],
      [call('GET', '/schemas/ids/999999'), 404, 40403],
      [call('POST', '/subjects/invoices', { schema: record([{ name: 'other', type: 'int' }]) }), 404, 40403],
      [call('POST', '/subjects/nobody', { schema: v1 }), 404, 40401],
      [call('POST', '/subjects/invoices/versions', { schema: '{"type":"record"' }), 422, 42201],
      [call('POST', '/subjects/invoices/versions', { schema: '{"type":"record","name":"bad-name","fields":[]}' }), 422, 42201],
      [call('POST', '/subjects/invoices/versions', { schema: '{"type":"object"}', schemaType: 'JSON' }), 422, 42201],
      [call('POST', '/compatibility/subjects/nobody/versions/latest', { schema: v1 }), 404, 40401],
      [call('PUT', '/config/invoices', { compatibility: 'BACKWARDS' }), 422, 42203],
    ];
    for (const [answer, status, errorCode] of codes) {
      const { status: got, body, contentType: type } = await answer;
      assert.deepEqual([got, (body as { error_code: number }).error_code], [status, errorCode], JSON.stringify(body));
      assert.match(String(type), /^application\/vnd\.schemaregistry\.v1\+json/);
    }
  });

  it('serves a standard Confluent client (@kafkajs/confluent-schema-registry): it registers, fetches and decodes what Mutuo encoded, and Mutuo decodes what it encoded', async () => {
    const client = new ConfluentClient({
      host: `${baseUrl}/registry`,
      retry: { retries: 0 },
      middlewares: [() => ({ request: (request) => request.enhance({ headers: { ...admin } }) })],
    });
    // Its register: GET /config/<subject> (404 at first), POST …/versions, PUT /config/<subject>.
    const { id } = await client.register({ type: 'record', name: 'Receipt', namespace: 'com.example', fields: [{ name: 'total', type: 'long' }] });
    assert.equal(await client.getLatestSchemaId('com.example.Receipt'), id);
    assert.deepEqual((await call('GET', '/config/com.example.Receipt')).body, { compatibilityLevel: 'BACKWARD' });
    const encoded = await client.encode(id, { total: 1250 });
    assert.deepEqual({ ...(await client.decode(encoded)) }, { total: 1250 });

    // An event Mutuo encoded, read by the Confluent client with the schema it fetches by id.
    const event = { type: 'ApplicationApproved', schemaVersion: 1, data: { contractNumber: 'MUT-2026-000042', approvedAt: '2026-04-01T09:30:00.000Z' } };
    const bytes = platform.avroCodec.encodeEvent(event);
    assert.deepEqual({ ...(await client.decode(bytes)) }, event.data);
    // And the other way: the client encodes by the subject's latest id, Mutuo decodes.
    const eventId = await client.getLatestSchemaId('mutuo.events.ApplicationApproved');
    assert.equal(eventId, bytes.readUInt32BE(1));
    assert.equal(await client.getRegistryIdBySchema('mutuo.events.ApplicationApproved', avroEventType(ApplicationApproved).schema as never), eventId);
    const fromClient = await client.encode(eventId, { contractNumber: 'MUT-2026-000043', approvedAt: '2026-04-02T09:30:00.000Z' });
    assert.deepEqual(await platform.avroCodec.decodeEvent(fromClient), {
      type: 'ApplicationApproved',
      schemaVersion: 1,
      data: { contractNumber: 'MUT-2026-000043', approvedAt: '2026-04-02T09:30:00.000Z' },
    });
  });

  it("is a registry Mutuo's own client (SCHEMA_REGISTRY_URL) works with: an instance pointed at another registers its schemas there", async () => {
    const remote = httpSchemaRegistry({ url: `${baseUrl}/registry` });
    const subjectVersion = (await call('GET', '/subjects/mutuo.events.ApplicationApproved/versions/latest')).body as { id: number; schema: string };
    assert.equal(await remote.lookup('mutuo.events.ApplicationApproved', subjectVersion.schema), subjectVersion.id);
    assert.equal(await remote.lookup('mutuo.events.NoSuchEvent', subjectVersion.schema), undefined);
    assert.equal(await remote.schemaById(subjectVersion.id), subjectVersion.schema);
    assert.equal(await remote.subjectCompatibility('mutuo.events.ApplicationApproved'), undefined);

    const otherDir = await mkdtemp(join(tmpdir(), 'mutuo-registry-client-'));
    // Looking a schema up is a public read: an instance of the same catalog finds every schema there and registers none, with no credentials.
    const other = await openPlatform(
      loadConfig({ MUTUO_DATA_DIR: otherDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0', SCHEMA_REGISTRY_URL: `${baseUrl}/registry` }),
      false,
      { services: [] },
    );
    try {
      // The registry it uses is the other one: it serves none of its own.
      assert.equal((await other.server.inject({ method: 'GET', url: '/registry/subjects' })).statusCode, 404);
      const bytes = other.avroCodec.encodeEvent({
        type: 'ApplicationApproved',
        schemaVersion: 1,
        data: { contractNumber: 'C-1', approvedAt: '2026-04-01T00:00:00.000Z' },
      });
      assert.equal(bytes.readUInt32BE(1), subjectVersion.id);
      assert.deepEqual((await platform.avroCodec.decodeEvent(bytes)).data, { contractNumber: 'C-1', approvedAt: '2026-04-01T00:00:00.000Z' });
    } finally {
      await other.close();
      await rm(otherDir, { recursive: true, force: true });
    }
  });
});
