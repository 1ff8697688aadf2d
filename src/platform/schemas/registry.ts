import { createHash } from 'node:crypto';
import type avsc from 'avsc';
import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import { parseAvroSchema } from './avro.ts';
import { canonicalJson } from './canonical-json.ts';

/**
 * Confluent's compatibility levels: which versions of a subject a new schema is checked
 * against (the latest, or every one with _TRANSITIVE), and how, by Avro's own resolution
 * rules (avsc's resolver): BACKWARD, the new schema reads what the others wrote; FORWARD,
 * they read what it writes; FULL, both; NONE, no check.
 */
export const compatibilityLevels = ['BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE', 'NONE'] as const;
export type CompatibilityLevel = (typeof compatibilityLevels)[number];

/** What a subject is checked at when neither it nor the registry was given a level: Confluent's default. */
export const defaultCompatibility: CompatibilityLevel = 'BACKWARD';

/** A refusal of the registry, with Confluent's HTTP status and error code (40401 subject not found, 409 incompatible, …). */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

export const registryErrors = {
  subjectNotFound: (subject: string) => new RegistryError(404, 40401, `Subject '${subject}' not found.`),
  versionNotFound: (version: number | 'latest') => new RegistryError(404, 40402, `Version ${version} not found.`),
  schemaNotFound: () => new RegistryError(404, 40403, 'Schema not found'),
  subjectLevelNotConfigured: (subject: string) => new RegistryError(404, 40408, `Subject '${subject}' does not have subject-level compatibility configured`),
  incompatible: (subject: string, messages: readonly string[]) =>
    new RegistryError(409, 409, `Schema being registered is incompatible with an earlier schema for subject "${subject}", details: ${messages.join('; ')}`),
  invalidSchema: (why: string) => new RegistryError(422, 42201, `Invalid schema: ${why}`),
  invalidVersion: (version: string) =>
    new RegistryError(
      422,
      42202,
      `The specified version '${version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
    ),
  invalidCompatibility: (level: unknown) =>
    new RegistryError(422, 42203, `Invalid compatibility level ${JSON.stringify(level)}: one of ${compatibilityLevels.join(', ')}`),
};

/** A version as the routes name it: a number from 1, `latest` or -1 (Confluent's spelling of latest). */
export function parseVersion(text: string): number | 'latest' {
  if (text === 'latest' || text === '-1') return 'latest';
  const version = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!(version <= 2 ** 31 - 1)) throw registryErrors.invalidVersion(text);
  return version;
}

/** A level as a request spells it (Confluent takes any case). */
export function parseCompatibility(level: unknown): CompatibilityLevel {
  const upper = typeof level === 'string' ? level.toUpperCase() : undefined;
  const found = compatibilityLevels.find((candidate) => candidate === upper);
  if (!found) throw registryErrors.invalidCompatibility(level);
  return found;
}

/** A schema's text parsed and checked as Avro: its avsc type and its canonical text (one id for one schema however it is spelled). */
export function readSchema(text: string): { readonly type: avsc.Type; readonly canonical: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw registryErrors.invalidSchema('not JSON');
  }
  try {
    return { type: parseAvroSchema(parsed as string), canonical: canonicalJson(parsed) };
  } catch (error) {
    throw registryErrors.invalidSchema(error instanceof Error ? error.message : String(error));
  }
}

type Version = { readonly version: number; readonly type: avsc.Type };

/** Whether `reader` reads what `writer` wrote, by Avro's resolution rules: undefined if so, else why not. */
function unreadable(reader: avsc.Type, writer: avsc.Type): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** Why `candidate` may not follow `earlier` (oldest first) at this level: none when it may. */
export function compatibilityProblems(level: CompatibilityLevel, candidate: avsc.Type, earlier: readonly Version[]): string[] {
  if (level === 'NONE') return [];
  const against = level.endsWith('_TRANSITIVE') ? earlier : earlier.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  return against.flatMap(({ version, type }) => {
    const problems: string[] = [];
    const reading = backward ? unreadable(candidate, type) : undefined;
    if (reading) problems.push(`the new schema cannot read data written with version ${version} (${reading})`);
    const read = forward ? unreadable(type, candidate) : undefined;
    if (read) problems.push(`version ${version} cannot read data written with the new schema (${read})`);
    return problems;
  });
}

/**
 * What Mutuo needs of a schema registry, its own or a Confluent-compatible one elsewhere
 * (SCHEMA_REGISTRY_URL): to register its events' schemas at start-up and find the schema of
 * an id it reads.
 */
export interface SchemaRegistry {
  /** Registers the schema under the subject, checked at its compatibility level: its id (a schema already there keeps its id, unchecked). */
  register(subject: string, schema: string): Promise<number>;
  /** The schema's id, if the subject holds it. */
  lookup(subject: string, schema: string): Promise<number | undefined>;
  /** The text of the schema of this id; a RegistryError (40403) if there is none. */
  schemaById(id: number): Promise<string>;
  /** The subject's own level, if it was given one. */
  subjectCompatibility(subject: string): Promise<CompatibilityLevel | undefined>;
  /** Gives the subject a level of its own, or (undefined) takes it away: the registry's level applies again. */
  setSubjectCompatibility(subject: string, level: CompatibilityLevel | undefined): Promise<void>;
}

export type SubjectVersion = { readonly subject: string; readonly version: number; readonly id: number; readonly schema: string };

/** The whole registry as its routes serve it. */
export interface ConfluentRegistry extends SchemaRegistry {
  subjects(): Promise<string[]>;
  /** A subject's versions, oldest first; 40401 for a subject with none. */
  versions(subject: string): Promise<number[]>;
  version(subject: string, version: number | 'latest'): Promise<SubjectVersion>;
  /** The subject's version that holds this schema; 40401, or 40403 where it holds another. */
  find(subject: string, schema: string): Promise<SubjectVersion>;
  /** Whether the subject would take the schema: against one version of it, or, without one, as registering would check it. */
  checkCompatibility(subject: string, schema: string, version?: number | 'latest'): Promise<{ compatible: boolean; messages: string[] }>;
  /** The level of the subject (its own, else the registry's), or of the registry without a subject. */
  compatibility(subject?: string): Promise<CompatibilityLevel>;
  setCompatibility(level: CompatibilityLevel): Promise<void>;
}

/** The subject the registry-wide level is kept under: no subject is named with nothing. */
const globalSubject = '';

const fingerprintOf = (canonical: string) => createHash('sha256').update(canonical).digest('hex');

/**
 * The registry in the platform's database (PGlite or PostgreSQL). Each registration runs in
 * a transaction of its own under one advisory lock, so that two registrations of a subject
 * are checked and numbered one after the other; where `client` is a transaction already
 * (start-up registers the events' schemas in the one that registers their JSON Schemas),
 * they run in it.
 */
export function sqlSchemaRegistry(client: Omit<SqlClient, 'close'>): ConfluentRegistry {
  const levelOf = async (db: SqlQueryable, subject: string): Promise<CompatibilityLevel | undefined> => {
    const [row] = await db.query<{ level: CompatibilityLevel }>('SELECT level FROM mutuo_registry_compatibility WHERE subject = $1', [subject]);
    return row?.level;
  };
  const effectiveLevel = async (db: SqlQueryable, subject: string) =>
    (await levelOf(db, subject)) ?? (await levelOf(db, globalSubject)) ?? defaultCompatibility;

  const versionRows = (db: SqlQueryable, subject: string) =>
    db.query<{ version: number; id: number; schema: string; fingerprint: string }>(
      `SELECT v.version, s.id, s.schema, s.fingerprint FROM mutuo_registry_versions v JOIN mutuo_registry_schemas s ON s.id = v.schema_id
        WHERE v.subject = $1 ORDER BY v.version`,
      [subject],
    );
  const earlierOf = (rows: readonly { version: number; schema: string }[]): Version[] =>
    rows.map((row) => ({ version: row.version, type: readSchema(row.schema).type }));

  const setLevel = async (subject: string, level: CompatibilityLevel | undefined) => {
    if (level === undefined) await client.query('DELETE FROM mutuo_registry_compatibility WHERE subject = $1', [subject]);
    else {
      await client.query(
        'INSERT INTO mutuo_registry_compatibility (subject, level) VALUES ($1, $2) ON CONFLICT (subject) DO UPDATE SET level = EXCLUDED.level',
        [subject, level],
      );
    }
  };

  const registry: ConfluentRegistry = {
    register: (subject, text) =>
      client.transaction(async (tx) => {
        const { type, canonical } = readSchema(text);
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext('mutuo.schema_registry'))`);
        const fingerprint = fingerprintOf(canonical);
        const rows = await versionRows(tx, subject);
        const registered = rows.find((row) => row.fingerprint === fingerprint);
        if (registered) return registered.id;
        const problems = compatibilityProblems(await effectiveLevel(tx, subject), type, earlierOf(rows));
        if (problems.length > 0) throw registryErrors.incompatible(subject, problems);
        const [known] = await tx.query<{ id: number }>('SELECT id FROM mutuo_registry_schemas WHERE fingerprint = $1', [fingerprint]);
        const id =
          known?.id ??
          (await tx.query<{ id: number }>('INSERT INTO mutuo_registry_schemas (fingerprint, schema) VALUES ($1, $2) RETURNING id', [fingerprint, text]))[0]!.id;
        await tx.query('INSERT INTO mutuo_registry_versions (subject, version, schema_id) VALUES ($1, $2, $3)', [subject, (rows.at(-1)?.version ?? 0) + 1, id]);
        return id;
      }),
    lookup: async (subject, text) => {
      const fingerprint = fingerprintOf(readSchema(text).canonical);
      const [row] = await client.query<{ id: number }>(
        `SELECT s.id FROM mutuo_registry_versions v JOIN mutuo_registry_schemas s ON s.id = v.schema_id WHERE v.subject = $1 AND s.fingerprint = $2`,
        [subject, fingerprint],
      );
      return row?.id;
    },
    schemaById: async (id) => {
      const [row] = await client.query<{ schema: string }>('SELECT schema FROM mutuo_registry_schemas WHERE id = $1', [id]);
      if (!row) throw registryErrors.schemaNotFound();
      return row.schema;
    },
    subjectCompatibility: (subject) => levelOf(client, subject),
    setSubjectCompatibility: setLevel,
    subjects: async () =>
      (await client.query<{ subject: string }>('SELECT DISTINCT subject FROM mutuo_registry_versions ORDER BY subject')).map((row) => row.subject),
    versions: async (subject) => {
      const rows = await client.query<{ version: number }>('SELECT version FROM mutuo_registry_versions WHERE subject = $1 ORDER BY version', [subject]);
      if (rows.length === 0) throw registryErrors.subjectNotFound(subject);
      return rows.map((row) => row.version);
    },
    version: async (subject, version) => {
      const rows = await versionRows(client, subject);
      if (rows.length === 0) throw registryErrors.subjectNotFound(subject);
      const row = version === 'latest' ? rows.at(-1) : rows.find((candidate) => candidate.version === version);
      if (!row) throw registryErrors.versionNotFound(version);
      return { subject, version: row.version, id: row.id, schema: row.schema };
    },
    find: async (subject, text) => {
      const fingerprint = fingerprintOf(readSchema(text).canonical);
      const rows = await versionRows(client, subject);
      if (rows.length === 0) throw registryErrors.subjectNotFound(subject);
      const row = rows.find((candidate) => candidate.fingerprint === fingerprint);
      if (!row) throw registryErrors.schemaNotFound();
      return { subject, version: row.version, id: row.id, schema: row.schema };
    },
    checkCompatibility: async (subject, text, version) => {
      const { type } = readSchema(text);
      const rows = await versionRows(client, subject);
      if (rows.length === 0) throw registryErrors.subjectNotFound(subject);
      const level = await effectiveLevel(client, subject);
      let earlier = earlierOf(rows);
      // Against a version named (latest too), that one alone; without one, as registering would.
      if (version !== undefined) {
        const chosen = version === 'latest' ? earlier.at(-1) : earlier.find((candidate) => candidate.version === version);
        if (!chosen) throw registryErrors.versionNotFound(version);
        earlier = [chosen];
      }
      const messages = compatibilityProblems(level, type, earlier);
      return { compatible: messages.length === 0, messages };
    },
    compatibility: async (subject) =>
      subject === undefined ? ((await levelOf(client, globalSubject)) ?? defaultCompatibility) : effectiveLevel(client, subject),
    setCompatibility: (level) => setLevel(globalSubject, level),
  };
  return registry;
}

/** A registry on a transaction in hand: its registrations run in it, as part of the caller's work. */
export const withinTransaction = (tx: SqlQueryable): Omit<SqlClient, 'close'> => ({
  query: tx.query.bind(tx),
  exec: tx.exec.bind(tx),
  transaction: (work) => work(tx),
});
