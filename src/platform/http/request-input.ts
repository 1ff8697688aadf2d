import type { FastifyRequest } from 'fastify';
import { DomainError, invalidInput } from '../../domain/errors.ts';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ifMatchPattern = /^(?:W\/)?"?(\d{1,9})"?$/;

/** An application id from a route: an id that is not a uuid names no application, and answers as any unknown one. */
export function applicationIdParam(id: string): string {
  if (!uuidPattern.test(id)) throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
  return id.toLowerCase();
}

/** The version an `If-Match: "<version>"` header names; undefined without one, 400 when malformed. */
export function ifMatchVersion(request: FastifyRequest): number | undefined {
  const ifMatch = request.headers['if-match'];
  if (ifMatch === undefined) return undefined;
  const match = ifMatchPattern.exec(ifMatch.trim());
  if (!match) throw invalidInput([{ path: 'If-Match', message: 'must be the version the client last saw, as "<version>"' }]);
  return Number(match[1]);
}

/** Years 1 to 9999: PostgreSQL holds 4713 BC to 294276, JavaScript more, and the platform's history far less. */
const earliestInstantMs = Date.parse('0001-01-01T00:00:00.000Z');
const latestInstantMs = Date.parse('9999-12-31T23:59:59.999Z');

/** An ISO 8601 instant a query names; a 400 naming `path` when it is none, or one the database may not hold. */
export function instantParam(text: string, path: string): Date {
  const instant = new Date(text);
  const ms = instant.getTime();
  if (!(ms >= earliestInstantMs && ms <= latestInstantMs)) throw invalidInput([{ path, message: 'must be an ISO 8601 instant from the year 1 to 9999' }]);
  return instant;
}
