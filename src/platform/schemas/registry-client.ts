import { RegistryError, type CompatibilityLevel, type SchemaRegistry } from './registry.ts';

export const registryContentType = 'application/vnd.schemaregistry.v1+json';

export type RegistryClientOptions = {
  /** The registry's base URL (`http://host:8081`, or Mutuo's own `http://host:3000/registry`); user and password in it are sent as basic auth. */
  readonly url: string;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
};

/**
 * A Confluent-compatible registry elsewhere, over its REST API: what SCHEMA_REGISTRY_URL
 * points Mutuo at instead of its own. Its refusals come back as RegistryErrors with the
 * registry's own error codes.
 */
export function httpSchemaRegistry({ url, timeoutMs = 10_000, fetch: send = fetch }: RegistryClientOptions): SchemaRegistry {
  const base = new URL(url);
  // fetch refuses a URL with credentials in it: they travel as a header instead.
  const authorization =
    base.username || base.password
      ? `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`
      : undefined;
  base.username = '';
  base.password = '';
  const root = base.href.replace(/\/+$/, '');

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await send(`${root}${path}`, {
      method,
      headers: {
        accept: `${registryContentType}, application/json`,
        ...(body === undefined ? {} : { 'content-type': registryContentType }),
        ...(authorization ? { authorization } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const { error_code: errorCode, message } = (parsed ?? {}) as { error_code?: unknown; message?: unknown };
      throw new RegistryError(
        response.status,
        typeof errorCode === 'number' ? errorCode : response.status,
        `the schema registry at ${root} answered ${method} ${path} with ${response.status}: ${typeof message === 'string' ? message : text.slice(0, 200)}`,
      );
    }
    return parsed as T;
  }

  const subjectPath = (subject: string) => `/subjects/${encodeURIComponent(subject)}`;
  const configPath = (subject: string) => `/config/${encodeURIComponent(subject)}`;
  const notFound = (error: unknown, code: number) => error instanceof RegistryError && error.errorCode === code;

  return {
    register: async (subject, schema) => (await call<{ id: number }>('POST', `${subjectPath(subject)}/versions`, { schema })).id,
    lookup: async (subject, schema) => {
      try {
        return (await call<{ id: number }>('POST', subjectPath(subject), { schema })).id;
      } catch (error) {
        if (notFound(error, 40401) || notFound(error, 40403)) return undefined;
        throw error;
      }
    },
    schemaById: async (id) => (await call<{ schema: string }>('GET', `/schemas/ids/${id}`)).schema,
    subjectCompatibility: async (subject) => {
      try {
        return (await call<{ compatibilityLevel: CompatibilityLevel }>('GET', configPath(subject))).compatibilityLevel;
      } catch (error) {
        // Confluent answers 40408 for a subject without a level of its own; older registries, 40401.
        if (notFound(error, 40408) || notFound(error, 40401)) return undefined;
        throw error;
      }
    },
    setSubjectCompatibility: async (subject, level) => {
      if (level === undefined) await call('DELETE', configPath(subject));
      else await call('PUT', configPath(subject), { compatibility: level });
    },
  };
}
