import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../../domain/errors.ts';
import { AuthenticationError, bearerToken, type AccessTable, type Identity, type TokenVerifier } from './identity.ts';
import { rateLimiter, RateLimitedError, type RateLimit, type RateLimiter } from './rate-limit.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller; undefined on a public route called without a token. */
    identity: Identity | undefined;
    /**
     * Set when the caller is let in as an applicant on their own applications only: the
     * subject the application must have been submitted by, or the route answers 404.
     */
    ownerScope: string | undefined;
  }
}

/** OpenAPI's own pages are public: they describe the API, they serve no data. */
export const isDocumentation = (url: string) => url === '/docs' || url.startsWith('/docs/');

/** Done with a request's access check: `error` answers it instead of the route. */
type Done = (error?: Error) => void;

/** A route's check of each request: calls `done`, with the error to answer if the request may not go on. */
export type RouteGuard = (request: FastifyRequest, reply: FastifyReply, done: Done) => void;

/** What a route's guard is made from. */
export type GuardedRoute = { readonly url: string; readonly permission: string | undefined };

function unauthenticated(request: FastifyRequest, reply: FastifyReply, message: string): DomainError {
  const given = request.headers.authorization !== undefined;
  reply.header('www-authenticate', given ? 'Bearer realm="mutuo", error="invalid_token"' : 'Bearer realm="mutuo"');
  return new DomainError('unauthenticated', 'UNAUTHENTICATED', message);
}

/**
 * Authentication and the permission table, before a request's body is read: 401 without a
 * valid bearer token, 403 for roles the route's permission does not list, 429 on a public
 * route (and the documentation) past `publicLimit`, counted by client for each route apart.
 * A route that names no permission is refused to everyone, so a forgotten one fails closed.
 *
 * One guard per route: the route's permission and limiter are looked up once, not on every
 * request (request.routeOptions builds a new object at each read). The guard calls `done`
 * at once when the token was verified before (no promise on the common path).
 */
export function accessControl(verify: TokenVerifier, accessOf: AccessTable, publicLimit: RateLimit | undefined): (route: GuardedRoute) => RouteGuard {
  return ({ url, permission }) => {
    const access = permission === undefined ? undefined : accessOf(permission);
    const open = isDocumentation(url) || access === 'public';
    const limit: RateLimiter | undefined = open && publicLimit ? rateLimiter(publicLimit) : undefined;

    function admit(request: FastifyRequest, identity: Identity): DomainError | undefined {
      request.identity = identity;
      if (access === undefined || access === 'public') return new DomainError('forbidden', 'FORBIDDEN', `${request.method} ${url} is open to no role`);
      if (access.roles.some((role) => identity.roles.has(role))) return undefined;
      if (access.ownApplication && identity.roles.has('applicant')) {
        request.ownerScope = identity.subject;
        return undefined;
      }
      return new DomainError('forbidden', 'FORBIDDEN', `your roles may not ${permission}`);
    }

    return (request, reply, done) => {
      // A CORS preflight carries no credentials, by the standard, and answers no data.
      if (request.method === 'OPTIONS') return done();
      if (limit !== undefined) {
        const waitMs = limit(request.ip);
        if (waitMs !== undefined) return done(new RateLimitedError(Math.ceil(waitMs / 1000)));
      }
      if (open) return done();
      let verified: Identity | Promise<Identity>;
      try {
        const token = bearerToken(request.headers.authorization);
        if (token === undefined) return done(unauthenticated(request, reply, 'this route needs a bearer token (Authorization: Bearer <token>)'));
        verified = verify(token);
      } catch (error) {
        return done(error instanceof AuthenticationError ? unauthenticated(request, reply, error.message) : (error as Error));
      }
      if (!(verified instanceof Promise)) return done(admit(request, verified));
      verified.then(
        (identity) => done(admit(request, identity)),
        (error: unknown) => done(error instanceof AuthenticationError ? unauthenticated(request, reply, error.message) : (error as Error)),
      );
    };
  };
}

/** Who an event this request causes is by: the authenticated subject. */
export function actorOf(request: FastifyRequest): string {
  if (!request.identity) throw new Error(`${request.method} ${request.url}: a command route must not be public`);
  return request.identity.subject;
}

/** 404, as for an application that does not exist, when an applicant asks for someone else's. */
export function checkOwner(request: FastifyRequest, submittedBy: string | undefined): void {
  if (request.ownerScope !== undefined && request.ownerScope !== submittedBy) {
    throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
  }
}
