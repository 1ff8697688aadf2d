import type { FastifyInstance } from 'fastify';
import type { HttpLimits } from '../platform/http/server.ts';
import { loadConfig } from '../app/config.ts';
import type { SqlClient } from '../platform/sql/sql-client.ts';
import { openAuthentication } from './authentication.ts';
import type { TokenVerifier } from '../platform/http/identity.ts';

export type DemoUserId = 'giulia' | 'marco' | 'olivia' | 'ugo' | 'elena' | 'ada' | 'prometheus';

/** Headers that authenticate as a demo user. */
export type AuthHeaders = { readonly authorization: string };

export type TestIdentities = {
  readonly verifyToken: TokenVerifier;
  /** The Authorization header of a demo user (the development provider of this database). */
  readonly as: (user: DemoUserId) => Promise<AuthHeaders>;
};

/** The development identity provider of a test database, for servers a test builds itself. */
export async function testIdentities(db: SqlClient): Promise<TestIdentities> {
  const { verifyToken, devProvider } = await openAuthentication(loadConfig({}).auth, db);
  const tokens = new Map<DemoUserId, Promise<AuthHeaders>>();
  return {
    verifyToken,
    as: (user) => {
      let headers = tokens.get(user);
      if (!headers) {
        headers = devProvider!.issue(user).then((issued) => ({ authorization: `Bearer ${issued!.accessToken}` }));
        tokens.set(user, headers);
      }
      return headers;
    },
  };
}

/** The HTTP limits of a test server: no rate limit, so that a test's many requests are all answered. */
export const testHttpLimits: HttpLimits = { bodyLimitBytes: 65_536, publicRequestsPerMinute: 0, corsOrigins: [] };

/** A bearer token from a running platform's development provider, for tests that call it over HTTP. */
export async function devBearer(baseUrl: string, user: DemoUserId): Promise<AuthHeaders> {
  const response = await fetch(`${baseUrl}/auth/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  if (response.status !== 200) throw new Error(`${baseUrl} issued no token for ${user}: ${response.status} ${await response.text()}`);
  const { accessToken } = (await response.json()) as { accessToken: string };
  return { authorization: `Bearer ${accessToken}` };
}

/** The same, from a platform's server without going over the network (inject). */
export async function injectedBearer(server: FastifyInstance, user: DemoUserId): Promise<AuthHeaders> {
  const response = await server.inject({ method: 'POST', url: '/auth/dev/token', payload: { user } });
  if (response.statusCode !== 200) throw new Error(`no token for ${user}: ${response.statusCode} ${response.body}`);
  return { authorization: `Bearer ${response.json<{ accessToken: string }>().accessToken}` };
}
