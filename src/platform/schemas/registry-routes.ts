import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { invalidInput } from '../../domain/errors.ts';
import { toProblem } from '../http/problem.ts';
import { RateLimitedError } from '../http/rate-limit.ts';
import { hostileTextIn } from '../http/text-input.ts';
import { registryContentType } from './registry-client.ts';
import { parseCompatibility, parseVersion, RegistryError, registryErrors, type ConfluentRegistry } from './registry.ts';

/** What Confluent's clients send and accept; plain JSON is taken too. */
const contentTypes = [registryContentType, 'application/vnd.schemaregistry+json', 'application/json'];

const Subject = Type.Object({ subject: Type.String({ minLength: 1, maxLength: 255 }) });
const SubjectVersion = Type.Object({ subject: Type.String({ minLength: 1, maxLength: 255 }), version: Type.String({ maxLength: 20 }) });
const SchemaId = Type.Object({ id: Type.String({ pattern: '^[1-9][0-9]{0,9}$' }) });
/** Confluent's body of a schema: newer clients send more (metadata, ruleSet), which is ignored. */
const SchemaBody = Type.Object({
  schema: Type.String({ minLength: 1 }),
  schemaType: Type.Optional(Type.String()),
  references: Type.Optional(Type.Array(Type.Unknown())),
});
const CompatibilityBody = Type.Object({ compatibility: Type.String() });

const tags = ['schema registry'];
const read = { permission: 'public' };
const write = { permission: 'operateSchemaRegistry' };

/** Avro only, each schema whole: a schema of another type, or one that names others by reference, is refused as invalid here. */
function avroSchemaOf(body: { schema: string; schemaType?: string | undefined; references?: unknown[] | undefined }): string {
  if (body.schemaType !== undefined && body.schemaType.toUpperCase() !== 'AVRO')
    throw registryErrors.invalidSchema(`schemaType ${body.schemaType}: this registry holds Avro only`);
  if (body.references !== undefined && body.references.length > 0) throw registryErrors.invalidSchema('schema references are not supported');
  return body.schema;
}

function schemaId(text: string): number {
  const id = Number(text);
  if (!(id <= 2 ** 31 - 1)) throw registryErrors.schemaNotFound();
  return id;
}

/**
 * The hostile-text rule, with the schema held to it as the JSON it is: its text may be
 * spread over lines (JSON's whitespace), which the rule refuses in a field, but the names,
 * docs and symbols in it are text like any other.
 */
function refusedText(body: unknown): Error | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { schema, ...rest } = body as { schema?: unknown };
  let parsedSchema: unknown = schema;
  if (typeof schema === 'string') {
    try {
      parsedSchema = JSON.parse(schema);
    } catch {
      // Not JSON: refused as an invalid schema, with the rule applied to its text.
    }
  }
  const errors = [...hostileTextIn(rest, ''), ...hostileTextIn(parsedSchema, 'schema')];
  return errors.length > 0 ? invalidInput(errors) : undefined;
}

/**
 * Confluent's error body, `{ error_code, message }`, for every refusal under /registry: the
 * registry's own with its codes, the others (401, 403, 429, a malformed body) with the
 * status and detail the platform's problem documents give them.
 */
function sendRegistryError(error: unknown, reply: FastifyReply): FastifyReply {
  let status: number;
  let body: { error_code: number; message: string; errors?: readonly { path: string; message: string }[] };
  if (error instanceof RegistryError) {
    status = error.status;
    body = { error_code: error.errorCode, message: error.message };
  } else {
    const problem = toProblem(error);
    status = problem.status;
    // The fields a refusal names ride along, as in the problem documents: Confluent's clients read only the two others.
    body = { error_code: problem.status, message: problem.detail, ...(problem.errors ? { errors: problem.errors } : {}) };
    if (error instanceof RateLimitedError) reply.header('retry-after', error.retryAfterSeconds);
    if (status >= 500) reply.log.error({ err: error }, 'schema registry request failed');
  }
  return reply.status(status).type(registryContentType).header('cache-control', 'no-store').send(body);
}

/**
 * The Confluent Schema Registry's REST API, the subset its clients use, under the prefix
 * it is registered at (/registry): a Confluent client's base URL is
 * http://<host>:<port>/registry. Reads are public, as Confluent's are by default: schemas
 * describe the events, they hold none of their data. Registering and setting levels is
 * for admins.
 */
export const registryRoutes: FastifyPluginAsyncTypebox<{ registry: ConfluentRegistry }> = async (app, { registry }) => {
  app.setErrorHandler((error, _request, reply) => sendRegistryError(error, reply));
  // This plugin's own JSON parser (Fastify keeps it to the plugin's routes): Confluent's media types, the schema checked as JSON.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(contentTypes, { parseAs: 'string' }, (request, body, done) => {
    parseJson(request, body as string, (error: Error | null, parsed?: unknown) => done(error ?? refusedText(parsed) ?? null, parsed));
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('application/json')) reply.type(registryContentType);
    return payload;
  });

  app.get('/subjects', { config: read, schema: { summary: 'The subjects', tags } }, () => registry.subjects());

  app.get('/subjects/:subject/versions', { config: read, schema: { summary: "A subject's versions", tags, params: Subject } }, (request) =>
    registry.versions(request.params.subject),
  );

  app.get(
    '/subjects/:subject/versions/:version',
    { config: read, schema: { summary: 'A version of a subject (a number, or latest)', tags, params: SubjectVersion } },
    (request) => registry.version(request.params.subject, parseVersion(request.params.version)),
  );

  app.get(
    '/subjects/:subject/versions/:version/schema',
    { config: read, schema: { summary: 'The schema of a version of a subject, alone', tags, params: SubjectVersion } },
    async (request, reply) =>
      reply.type(registryContentType).send((await registry.version(request.params.subject, parseVersion(request.params.version))).schema),
  );

  app.post(
    '/subjects/:subject/versions',
    { config: write, schema: { summary: 'Register a schema under a subject (the same schema again keeps its id)', tags, params: Subject, body: SchemaBody } },
    async (request) => ({ id: await registry.register(request.params.subject, avroSchemaOf(request.body)) }),
  );

  app.post(
    '/subjects/:subject',
    { config: read, schema: { summary: 'Whether a subject holds a schema, and as which version', tags, params: Subject, body: SchemaBody } },
    (request) => registry.find(request.params.subject, avroSchemaOf(request.body)),
  );

  app.get('/schemas/ids/:id', { config: read, schema: { summary: 'The schema of an id', tags, params: SchemaId } }, async (request) => ({
    schema: await registry.schemaById(schemaId(request.params.id)),
  }));

  app.get('/schemas/ids/:id/schema', { config: read, schema: { summary: 'The schema of an id, alone', tags, params: SchemaId } }, async (request, reply) =>
    reply.type(registryContentType).send(await registry.schemaById(schemaId(request.params.id))),
  );

  const compatibilityAnswer = (result: { compatible: boolean; messages: string[] }, verbose: string | undefined) => ({
    is_compatible: result.compatible,
    ...(verbose === 'true' ? { messages: result.messages } : {}),
  });
  const Verbose = Type.Object({ verbose: Type.Optional(Type.String({ maxLength: 5 })) });

  app.post(
    '/compatibility/subjects/:subject/versions/:version',
    {
      config: read,
      schema: {
        summary: "Whether a schema is compatible with a version of a subject, at the subject's level",
        tags,
        params: SubjectVersion,
        querystring: Verbose,
        body: SchemaBody,
      },
    },
    async (request) =>
      compatibilityAnswer(
        await registry.checkCompatibility(request.params.subject, avroSchemaOf(request.body), parseVersion(request.params.version)),
        request.query.verbose,
      ),
  );

  app.post(
    '/compatibility/subjects/:subject/versions',
    {
      config: read,
      schema: {
        summary: 'Whether a subject would take a schema (the versions its level names)',
        tags,
        params: Subject,
        querystring: Verbose,
        body: SchemaBody,
      },
    },
    async (request) => compatibilityAnswer(await registry.checkCompatibility(request.params.subject, avroSchemaOf(request.body)), request.query.verbose),
  );

  app.get('/config', { config: read, schema: { summary: "The registry's compatibility level", tags } }, async () => ({
    compatibilityLevel: await registry.compatibility(),
  }));

  app.put('/config', { config: write, schema: { summary: "Set the registry's compatibility level", tags, body: CompatibilityBody } }, async (request) => {
    const level = parseCompatibility(request.body.compatibility);
    await registry.setCompatibility(level);
    return { compatibility: level };
  });

  app.get(
    '/config/:subject',
    {
      config: read,
      schema: {
        summary: "A subject's own compatibility level (40408 without one, unless defaultToGlobal=true)",
        tags,
        params: Subject,
        querystring: Type.Object({ defaultToGlobal: Type.Optional(Type.String({ maxLength: 5 })) }),
      },
    },
    async (request) => {
      const { subject } = request.params;
      const own = await registry.subjectCompatibility(subject);
      if (own) return { compatibilityLevel: own };
      if (request.query.defaultToGlobal === 'true') return { compatibilityLevel: await registry.compatibility() };
      throw registryErrors.subjectLevelNotConfigured(subject);
    },
  );

  app.put(
    '/config/:subject',
    { config: write, schema: { summary: "Set a subject's own compatibility level", tags, params: Subject, body: CompatibilityBody } },
    async (request) => {
      const level = parseCompatibility(request.body.compatibility);
      await registry.setSubjectCompatibility(request.params.subject, level);
      return { compatibility: level };
    },
  );

  app.delete(
    '/config/:subject',
    { config: write, schema: { summary: "Take a subject's own level away: the registry's applies", tags, params: Subject } },
    async (request) => {
      const { subject } = request.params;
      const own = await registry.subjectCompatibility(subject);
      if (!own) throw registryErrors.subjectLevelNotConfigured(subject);
      await registry.setSubjectCompatibility(subject, undefined);
      return { compatibilityLevel: own };
    },
  );
};
