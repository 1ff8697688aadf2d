import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTVerifyGetKey } from 'jose';
import type { SqlClient } from '../platform/sql/sql-client.ts';
import type { Role } from './permissions.ts';

/**
 * A development identity provider: it signs tokens for demo users, so that the embedded
 * default works with no set-up. The platform refuses it in production, where tokens come
 * from the bank's own provider (AUTH_JWKS_URL).
 */

export const devIssuer = 'mutuo-dev';
export const devAudience = 'mutuo';
const tokenLifetimeSeconds = 8 * 3600;

export type DemoUser = { readonly id: string; readonly name: string; readonly roles: readonly Role[] };

/** One user a role, two applicants (to show one cannot see the other's file), and a monitoring system. */
export const demoUsers: readonly DemoUser[] = [
  { id: 'giulia', name: 'Giulia Rossi', roles: ['applicant'] },
  { id: 'marco', name: 'Marco Bianchi', roles: ['applicant'] },
  { id: 'olivia', name: 'Olivia Conti (operator)', roles: ['operator'] },
  { id: 'ugo', name: 'Ugo Ferri (underwriter)', roles: ['underwriter'] },
  { id: 'elena', name: 'Elena Galli (executive)', roles: ['executive'] },
  { id: 'ada', name: 'Ada Marini (admin)', roles: ['admin'] },
  { id: 'prometheus', name: 'Prometheus (monitoring)', roles: ['monitoring'] },
];

export const demoSubject = (user: DemoUser) => `dev:${user.id}`;

export type IssuedToken = {
  readonly accessToken: string;
  readonly tokenType: 'Bearer';
  readonly expiresIn: number;
  readonly user: { readonly subject: string; readonly name: string; readonly roles: readonly Role[] };
};

export type DevIdentityProvider = {
  /** The keys its tokens verify with. */
  readonly keys: JWTVerifyGetKey;
  readonly jwks: { readonly keys: readonly JWK[] };
  /** A token for a demo user; undefined for an unknown one. */
  readonly issue: (userId: string) => Promise<IssuedToken | undefined>;
};

/** Loads the signing key every process of this database shares, making it on first use. */
async function signingKey(db: SqlClient): Promise<JWK> {
  const stored = async () => (await db.query<{ private_jwk: JWK }>('SELECT private_jwk FROM mutuo_dev_identity WHERE id = 1'))[0]?.private_jwk;
  const found = await stored();
  if (found) return found;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  // Two processes starting together: the first insert wins and both use it.
  await db.query('INSERT INTO mutuo_dev_identity (id, private_jwk) VALUES (1, $1::jsonb) ON CONFLICT (id) DO NOTHING', [JSON.stringify(jwk)]);
  return (await stored())!;
}

export async function openDevIdentityProvider(db: SqlClient, clock: () => Date = () => new Date()): Promise<DevIdentityProvider> {
  const privateJwk = await signingKey(db);
  const { d: _private, ...publicParts } = privateJwk;
  const kid = await calculateJwkThumbprint(publicParts);
  const publicJwk: JWK = { ...publicParts, kid, alg: 'ES256', use: 'sig' };
  const privateKey = await importJWK(privateJwk, 'ES256');
  const jwks = { keys: [publicJwk] };
  return {
    keys: createLocalJWKSet(jwks),
    jwks,
    async issue(userId) {
      const user = demoUsers.find((candidate) => candidate.id === userId);
      if (!user) return undefined;
      const now = Math.floor(clock().getTime() / 1000);
      const accessToken = await new SignJWT({ name: user.name, roles: [...user.roles] })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(devIssuer)
        .setAudience(devAudience)
        .setSubject(demoSubject(user))
        .setJti(randomUUID())
        .setIssuedAt(now)
        .setExpirationTime(now + tokenLifetimeSeconds)
        .sign(privateKey);
      return { accessToken, tokenType: 'Bearer', expiresIn: tokenLifetimeSeconds, user: { subject: demoSubject(user), name: user.name, roles: user.roles } };
    },
  };
}
