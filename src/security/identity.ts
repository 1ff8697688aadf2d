import { errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { AuthenticationError, type Identity, type TokenRef, type TokenVerifier } from '../platform/http/identity.ts';
import { roles, type Role } from './permissions.ts';

export type TokenVerifierOptions = {
  readonly keys: JWTVerifyGetKey;
  readonly issuer: string;
  readonly audience: string;
  /** The claim that lists the roles: `roles`, or a dotted path such as `realm_access.roles`. */
  readonly rolesClaim: string;
  /** Verified tokens kept, so that a client's every request does not pay for a signature check. */
  readonly cacheSize?: number;
  /** Whether a token has been revoked (logged out): asked on every request, so it answers from memory but now and then. */
  readonly isRevoked?: (token: TokenRef) => boolean | Promise<boolean>;
  readonly clock?: () => number;
};

const algorithms = ['ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256', 'EdDSA'];

function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/**
 * What names a token for its revocation: its `jti`; a provider that issues none is revoked by
 * subject and issue time (every token of that subject issued in that second), or, without
 * `iat`, by subject and expiry.
 */
function tokenIdOf(payload: JWTPayload, subject: string): string {
  if (typeof payload.jti === 'string' && payload.jti.length > 0 && payload.jti.length <= 200) return `jti:${payload.jti}`;
  return typeof payload.iat === 'number' ? `sub:${subject}:iat:${payload.iat}` : `sub:${subject}:exp:${payload.exp}`;
}

function identityOf(payload: JWTPayload, rolesClaim: string): Identity {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 200) throw new AuthenticationError('the token names no subject');
  const claimed = claimAt(payload, rolesClaim);
  const known = new Set<Role>(Array.isArray(claimed) ? roles.filter((role) => claimed.includes(role)) : []);
  const name = typeof payload.name === 'string' ? payload.name.slice(0, 200) : undefined;
  const token = { id: tokenIdOf(payload, payload.sub), expiresAtMs: payload.exp! * 1000 };
  return { subject: payload.sub, roles: known, ...(name !== undefined ? { name } : {}), token };
}

/**
 * Verifies OIDC-style bearer JWTs (signature against the issuer's keys, `iss`, `aud`,
 * `exp`, `nbf`, not revoked) into identities. A verified token is remembered until it
 * expires, up to `cacheSize` of them: a signature check costs more than the rest of a read.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const cacheSize = options.cacheSize ?? 10_000;
  const clock = options.clock ?? Date.now;
  const isRevoked = options.isRevoked ?? (() => false);
  const verified = new Map<string, Identity>();
  const refuse = () => new AuthenticationError('the token has been revoked (signed out)');
  const unlessRevoked = (identity: Identity): Identity | Promise<Identity> => {
    const revoked = isRevoked(identity.token);
    if (revoked === false) return identity;
    if (revoked === true) throw refuse();
    return revoked.then((yes) => {
      if (yes) throw refuse();
      return identity;
    });
  };

  async function verifySignature(token: string): Promise<Identity> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, options.keys, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms,
        currentDate: new Date(clock()),
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError)
        throw new AuthenticationError(error instanceof joseErrors.JWTExpired ? 'the token has expired' : 'the token is not valid');
      throw error;
    }
    const identity = identityOf(payload, options.rolesClaim);
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!);
    verified.set(token, identity);
    return unlessRevoked(identity);
  }

  return (token) => {
    const known = verified.get(token);
    if (known) {
      if (known.token.expiresAtMs > clock()) return unlessRevoked(known);
      verified.delete(token);
    }
    return verifySignature(token);
  };
}
