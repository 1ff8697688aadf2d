import { FormatRegistry } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import type { EventDefinition, LatestEventOf } from './event-definition.ts';

export type EventDecodeFailure = 'UNKNOWN_TYPE' | 'UNKNOWN_VERSION' | 'INVALID';

export class EventDecodeError extends Error {
  constructor(
    readonly reason: EventDecodeFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'EventDecodeError';
  }
}

/** An event's data at the latest version of its type, whatever version it was stored as. */
export type DecodedEvent<Event extends { readonly type: string; readonly data: unknown }> = Event & { readonly schemaVersion: number };

export type EventCatalog<Event extends { readonly type: string; readonly data: unknown } = { readonly type: string; readonly data: unknown }> = {
  /** Upcasts stored data step by step to the latest version of its type and validates it there. */
  decode(type: string, schemaVersion: number, data: unknown): DecodedEvent<Event>;
  /** Validates data about to be written against the latest version of its type. */
  check(type: string, data: unknown): void;
  latestVersion(type: string): number;
  /** Every version of every type. */
  readonly definitions: readonly EventDefinition[];
};

// TypeBox refuses any string with a format it has not been told about; these are the
// formats event schemas use. Whoever registered one first keeps theirs.
const formats: Record<string, (value: string) => boolean> = {
  'date-time': (value) => /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value)),
  date: (value) => /^\d{4}-\d{2}-\d{2}$/.test(value) && new Date(`${value}T00:00:00Z`).toISOString().startsWith(value),
  uuid: (value) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value),
};
for (const [format, check] of Object.entries(formats)) {
  if (!FormatRegistry.Has(format)) FormatRegistry.Set(format, check);
}

type TypeVersions = {
  /** Index i holds version i + 1. */
  readonly versions: readonly EventDefinition[];
  readonly latest: EventDefinition;
  readonly checker: TypeCheck<EventDefinition['schema']>;
};

/** `/property/energyClass` → `property.energyClass`. */
function dottedPath(pointer: string): string {
  if (pointer === '') return '(root)';
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'))
    .join('.');
}

/**
 * The versions of a set of event types. Refuses, when built, a type+version defined
 * twice and a type whose versions do not run 1, 2, … without a gap: an event stored at
 * a missing version could not be read.
 */
export function createEventCatalog<const Definitions extends readonly EventDefinition[]>(definitions: Definitions): EventCatalog<LatestEventOf<Definitions>> {
  const grouped = new Map<string, EventDefinition[]>();
  for (const definition of definitions) {
    const { type, schemaVersion } = definition;
    if (!Number.isInteger(schemaVersion) || schemaVersion < 1) throw new RangeError(`${type} has version ${schemaVersion}: versions start at 1`);
    const versions = grouped.get(type) ?? [];
    if (versions.some((other) => other.schemaVersion === schemaVersion)) throw new Error(`${type} v${schemaVersion} is defined twice`);
    versions.push(definition);
    grouped.set(type, versions);
  }
  const byType = new Map<string, TypeVersions>();
  for (const [type, unsorted] of grouped) {
    const versions = [...unsorted].sort((a, b) => a.schemaVersion - b.schemaVersion);
    versions.forEach((definition, i) => {
      if (definition.schemaVersion !== i + 1) {
        throw new Error(`${type} has v${definition.schemaVersion} but no v${i + 1}: every version stays defined so its events can be read`);
      }
    });
    const latest = versions.at(-1)!;
    byType.set(type, { versions, latest, checker: TypeCompiler.Compile(latest.schema) });
  }

  function typeVersions(type: string): TypeVersions {
    const found = byType.get(type);
    if (!found) throw new EventDecodeError('UNKNOWN_TYPE', `unknown event type ${type}`);
    return found;
  }

  function validate({ checker }: TypeVersions, data: unknown, described: string): void {
    if (checker.Check(data)) return;
    const error = checker.Errors(data).First();
    const where = error ? ` at ${dottedPath(error.path)}: ${error.message}` : '';
    throw new EventDecodeError('INVALID', `${described} is invalid${where}`);
  }

  function upcast(definition: EventDefinition, data: unknown): unknown {
    if (!definition.upcast) return Value.Default(definition.schema, data);
    try {
      return definition.upcast(data);
    } catch (error) {
      const message = `${definition.type} v${definition.schemaVersion - 1} could not be upcast to v${definition.schemaVersion}`;
      throw new EventDecodeError('INVALID', `${message}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  return {
    decode(type, schemaVersion, data) {
      const found = typeVersions(type);
      const latestVersion = found.latest.schemaVersion;
      if (!Number.isInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > latestVersion) {
        throw new EventDecodeError('UNKNOWN_VERSION', `${type} has no version ${schemaVersion} (latest is v${latestVersion})`);
      }
      // One clone up front: the steps may then fill it in place, and the caller's data
      // (often a stored event) is never touched.
      let current = schemaVersion < latestVersion ? Value.Clone(data) : data;
      for (const definition of found.versions.slice(schemaVersion)) current = upcast(definition, current);
      validate(found, current, schemaVersion === latestVersion ? `${type} v${schemaVersion}` : `${type} v${schemaVersion} (read as v${latestVersion})`);
      // Checked against the latest schema just above, which is what the type says.
      return { type, schemaVersion: latestVersion, data: current } as DecodedEvent<LatestEventOf<Definitions>>;
    },
    check(type, data) {
      const found = typeVersions(type);
      validate(found, data, `${type} v${found.latest.schemaVersion}`);
    },
    latestVersion: (type) => typeVersions(type).latest.schemaVersion,
    definitions,
  };
}
