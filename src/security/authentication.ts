import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createRemoteJWKSet } from 'jose';
import { DomainError } from '../domain/errors.ts';
import type { SqlClient } from '../platform/sql/sql-client.ts';
import { demoSubject, demoUsers, devAudience, devIssuer, openDevIdentityProvider, type DevIdentityProvider } from './dev-identity.ts';
import type { TokenVerifier } from '../platform/http/identity.ts';
import { createTokenVerifier } from './identity.ts';
import { openTokenRevocations, type TokenRevocations } from './revocations.ts';

export type Authentication = {
  readonly verifyToken: TokenVerifier;
  /** The development provider, when no AUTH_JWKS_URL is configured (never in production). */
  readonly devProvider: DevIdentityProvider | undefined;
  /** The tokens signed out before they expire, refused by verifyToken. */
  readonly revocations: TokenRevocations;
  readonly describe: string;
  readonly close: () => void;
};

/** Where tokens come from, and how long a sign-out may take to reach every process. */
export type AuthConfig = {
  /** The identity provider's keys; unset: the development provider signs tokens for demo users (refused in production). */
  readonly jwksUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly audience: string;
  readonly rolesClaim: string;
  /** How old what a process on PostgreSQL knows of the tokens other processes revoked may be (no other process shares PGlite). */
  readonly revocationRefreshMs: number;
};

export type AuthenticationOptions = {
  /** Other processes share the database (PostgreSQL): their revocations are read every `revocationRefreshMs`. */
  readonly sharedDatabase?: boolean;
  readonly onError?: (error: unknown) => void;
};

/**
 * Tokens from the identity provider of AUTH_JWKS_URL (keys fetched and cached by jose,
 * refetched when a token names an unknown key), or, in development, from the built-in
 * provider whose key every process of the database shares; either way, not revoked.
 */
export async function openAuthentication(config: AuthConfig, db: SqlClient, options: AuthenticationOptions = {}): Promise<Authentication> {
  // Tokens live in real time, whatever clock the platform's business rules are given (tests move that one).
  const revocations = await openTokenRevocations(db, {
    ...(options.sharedDatabase ? { refreshMs: config.revocationRefreshMs } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
  });
  const { isRevoked } = revocations;
  const parts = { revocations, close: revocations.close };
  if (config.jwksUrl) {
    const keys = createRemoteJWKSet(new URL(config.jwksUrl));
    return {
      ...parts,
      verifyToken: createTokenVerifier({ keys, issuer: config.issuer!, audience: config.audience, rolesClaim: config.rolesClaim, isRevoked }),
      devProvider: undefined,
      describe: `identities: tokens of ${config.issuer} (keys at ${config.jwksUrl})`,
    };
  }
  const devProvider = await openDevIdentityProvider(db);
  return {
    ...parts,
    verifyToken: createTokenVerifier({ keys: devProvider.keys, issuer: devIssuer, audience: devAudience, rolesClaim: 'roles', isRevoked }),
    devProvider,
    describe: `identities: the DEVELOPMENT provider (demo users: ${demoUsers.map((user) => user.id).join(', ')}; POST /auth/dev/token); set AUTH_JWKS_URL for a real one`,
  };
}

const TokenRequest = Type.Object({ user: Type.String({ description: 'a demo user id, as GET /auth/dev/users lists them' }) }, { additionalProperties: false });

/** Who am I and sign out, for every caller; and the development provider's routes where it runs. */
export const authenticationRoutes: FastifyPluginAsyncTypebox<Pick<Authentication, 'devProvider' | 'revocations'>> = async (
  app,
  { devProvider, revocations },
) => {
  app.get('/api/me', { schema: { summary: 'The caller, as their token says', tags: ['identity'] }, config: { permission: 'identify' } }, async (request) => {
    const identity = request.identity!;
    return { subject: identity.subject, roles: [...identity.roles], ...(identity.name !== undefined ? { name: identity.name } : {}) };
  });
  app.post(
    '/auth/logout',
    { schema: { summary: 'Sign out: the bearer token is refused from now on, by every process', tags: ['identity'] }, config: { permission: 'identify' } },
    async (request, reply) => {
      await revocations.revoke(request.identity!.token);
      return reply.status(204).send();
    },
  );
  if (!devProvider) return;
  app.get('/auth/dev/users', { schema: { summary: 'Development only: the demo users', tags: ['identity'] }, config: { permission: 'public' } }, async () =>
    demoUsers.map((user) => ({ id: user.id, subject: demoSubject(user), name: user.name, roles: user.roles })),
  );
  app.post(
    '/auth/dev/token',
    { schema: { summary: 'Development only: a bearer token for a demo user', tags: ['identity'], body: TokenRequest }, config: { permission: 'public' } },
    async (request) => {
      const issued = await devProvider.issue(request.body.user);
      if (!issued) throw new DomainError('invalid', 'UNKNOWN_USER', `no demo user "${request.body.user}"`, [{ path: 'user', message: 'is not a demo user' }]);
      return issued;
    },
  );
  app.get(
    '/auth/dev/jwks.json',
    { schema: { summary: 'Development only: the keys its tokens are signed with', tags: ['identity'] }, config: { permission: 'public' } },
    async () => devProvider.jwks,
  );
};
