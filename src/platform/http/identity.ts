/**
 * What the HTTP layer knows of a caller: an identity a verified bearer token gives, with
 * its roles as names. Which tokens are good (keys, issuers, revocations) and which roles
 * exist is the security module's business: it gives the server a TokenVerifier and the
 * table of who may do what (AccessTable).
 */

/** A token, as a revocation (a sign-out) names it, until it expires. */
export type TokenRef = { readonly id: string; readonly expiresAtMs: number };

/** The caller, as a verified bearer token says. */
export type Identity = {
  /** The token's `sub`: what every event this caller causes records as its actor. */
  readonly subject: string;
  readonly roles: ReadonlySet<string>;
  readonly name?: string;
  /** The token itself, as a revocation (a logout) names it. */
  readonly token: TokenRef;
};

/** A token that does not prove an identity: missing, malformed, expired, revoked, or not signed by the configured issuer. */
export class AuthenticationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

/**
 * Verifies a token into an identity. A token verified before (and not expired) answers
 * at once, without a promise: most requests carry a token their client sent already.
 */
export type TokenVerifier = (token: string) => Identity | Promise<Identity>;

/** Who a route lets in, beside `public` (no identity needed). */
export type Access = {
  /** Roles allowed, whatever application the request is about. */
  readonly roles: readonly string[];
  /**
   * Applicants are allowed too, on their own applications only: the handler answers
   * 404 for anyone else's, exactly as for one that does not exist.
   */
  readonly ownApplication?: true;
};

/** The access a route's permission (`config: { permission }`) names; undefined for a name the table lacks (refused to everyone). */
export type AccessTable = (permission: string) => 'public' | Access | undefined;

/** The token of an `Authorization: Bearer <token>` header; undefined without one. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  if (!match) throw new AuthenticationError('the Authorization header is not "Bearer <token>"');
  return match[1];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What a caller needs to reach this route (a name of the AccessTable); a route without one is refused to everyone. */
    permission?: string;
  }
}
