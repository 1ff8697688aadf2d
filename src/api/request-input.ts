import type { FastifyRequest } from 'fastify';
import { DomainError, invalidInput } from '../domain/errors.ts';

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
