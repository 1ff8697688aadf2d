import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import type { Role } from '../../src/security/permissions.ts';
import { injectedBearer, type AuthHeaders, type DemoUserId } from '../../src/security/testing.ts';

/**
 * The access policy, written out again route by route, independently of the permission
 * table: every route × every role (and no token at all) is called and must be let in
 * exactly where this says. A route the platform serves that is missing here fails too.
 * `own`: applicants, on their own applications only (another's answers 404).
 */
type Expected = 'public' | { readonly roles: readonly Role[]; readonly own?: true };
const all: Role[] = ['applicant', 'operator', 'underwriter', 'executive', 'admin', 'monitoring'];
const matrix: Record<string, Expected> = {
  'GET /health': 'public',
  'GET /metrics': { roles: ['admin', 'monitoring'] },
  'GET /api/rates': 'public',
  'POST /api/simulations': 'public',
  'GET /auth/dev/users': 'public',
  'POST /auth/dev/token': 'public',
  'GET /auth/dev/jwks.json': 'public',
  'GET /api/me': { roles: all },
  'POST /auth/logout': { roles: all },
  'POST /api/applications': { roles: ['applicant'] },
  'GET /api/applications': { roles: ['operator', 'underwriter'] },
  'GET /api/applications/{id}': { roles: ['operator', 'underwriter', 'admin'], own: true },
  'GET /api/applications/{id}/live': { roles: ['operator', 'underwriter'], own: true },
  'GET /api/applications/{id}/events': { roles: ['operator', 'underwriter', 'admin'] },
  'GET /api/applications/{id}/state': { roles: ['operator', 'underwriter', 'admin'] },
  'POST /api/applications/{id}/income-approval': { roles: ['operator', 'underwriter'] },
  'POST /api/applications/{id}/rate': { roles: ['operator', 'underwriter'] },
  'POST /api/applications/{id}/rate-lock': { roles: ['operator', 'underwriter'], own: true },
  'PUT /api/applications/{id}/property': { roles: ['operator'], own: true },
  'POST /api/applications/{id}/withdrawal': { roles: ['operator'], own: true },
  'POST /api/applications/{id}/documents': { roles: ['operator'], own: true },
  'GET /api/applications/{id}/documents': { roles: ['operator', 'underwriter', 'admin'], own: true },
  'GET /api/sandbox/applications/{id}/documents/{kind}': { roles: ['operator'], own: true },
  'GET /api/notifications': { roles: ['operator', 'admin'], own: true },
  'PUT /api/rates': { roles: ['operator', 'admin'] },
  'GET /api/dashboard': { roles: ['executive', 'admin'] },
  'GET /api/dead-letters': { roles: ['admin'] },
  'GET /api/dead-letters/{id}': { roles: ['admin'] },
  'POST /api/dead-letters/{id}/redrive': { roles: ['admin'] },
  'POST /api/dead-letters/{id}/discard': { roles: ['admin'] },
  'GET /api/projections': { roles: ['admin'] },
  'GET /api/projections/{name}/rebuild': { roles: ['admin'] },
  'POST /api/projections/{name}/rebuild': { roles: ['admin'] },
  'GET /api/projections/{name}/parked': { roles: ['admin'] },
  'POST /api/projections/{name}/parked/redrive': { roles: ['admin'] },
  'POST /api/projections/{name}/parked/discard': { roles: ['admin'] },
  'GET /api/applicants/{taxCode}/personal-data': { roles: ['admin'] },
  'POST /api/applicants/{taxCode}/erasure': { roles: ['admin'] },
  'POST /api/applicants/{taxCode}/legal-hold': { roles: ['admin'] },
  'POST /api/applicants/{taxCode}/legal-hold/release': { roles: ['admin'] },
  // The schema registry: reads public, as Confluent's are by default; writes for admins.
  'GET /registry/subjects': 'public',
  'GET /registry/subjects/{subject}/versions': 'public',
  'GET /registry/subjects/{subject}/versions/{version}': 'public',
  'GET /registry/subjects/{subject}/versions/{version}/schema': 'public',
  'POST /registry/subjects/{subject}/versions': { roles: ['admin'] },
  'POST /registry/subjects/{subject}': 'public',
  'GET /registry/schemas/ids/{id}': 'public',
  'GET /registry/schemas/ids/{id}/schema': 'public',
  'POST /registry/compatibility/subjects/{subject}/versions/{version}': 'public',
  'POST /registry/compatibility/subjects/{subject}/versions': 'public',
  'GET /registry/config': 'public',
  'PUT /registry/config': { roles: ['admin'] },
  'GET /registry/config/{subject}': 'public',
  'PUT /registry/config/{subject}': { roles: ['admin'] },
  'DELETE /registry/config/{subject}': { roles: ['admin'] },
};

const userOf: Record<Role, DemoUserId> = {
  applicant: 'marco',
  operator: 'olivia',
  underwriter: 'ugo',
  executive: 'elena',
  admin: 'ada',
  monitoring: 'prometheus',
};

describe('access: every route × every role', () => {
  let dataDir: string;
  let platform: Platform;
  const tokens = new Map<DemoUserId, AuthHeaders>();
  let giuliasApplication: string;
  let giuliasTaxCode: string;
  let submittedAt: number;
  let url: string;
  const submission = async () => JSON.parse(await readFile(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  const as = async (user: DemoUserId) => {
    if (!tokens.has(user)) tokens.set(user, await injectedBearer(platform.server, user));
    return tokens.get(user)!;
  };
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-access-'));
    platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0' }), false);
    const giulias = await submission();
    giuliasTaxCode = (giulias.applicant as { taxCode: string }).taxCode;
    const submitted = await platform.server.inject({ method: 'POST', url: '/api/applications', payload: giulias, headers: await as('giulia') });
    assert.equal(submitted.statusCode, 201, submitted.body);
    ({ applicationId: giuliasApplication, position: submittedAt } = submitted.json<{ applicationId: string; position: number }>());
    url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await platform.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Every route the platform serves, from its OpenAPI document (plus the two it leaves out of it). */
  async function servedRoutes(): Promise<string[]> {
    const spec = (await platform.server.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, Record<string, unknown>> }>();
    const routes = Object.entries(spec.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`));
    return [...routes, 'GET /health', 'GET /metrics'].sort();
  }

  /** A request on the route as `user`, about an application that is not theirs (Giulia's, or none): its status and body. */
  async function call(route: string, headers: Record<string, string>): Promise<{ statusCode: number; body: string }> {
    const [method, path] = route.split(' ') as ['GET' | 'POST' | 'PUT' | 'DELETE', string];
    const target = path
      .replace('{none}', randomUUID())
      .replace('{id}', route.includes('dead-letters') ? '424242' : giuliasApplication)
      .replace('{name}', 'rates')
      .replace('{kind}', 'payslip')
      // Giulia's: her application is in processing, so an erasure is refused (422), never carried out.
      .replace('{taxCode}', giuliasTaxCode);
    if (route.endsWith('/live')) {
      // An event stream does not end: its status is what is checked, then it is let go.
      const abort = new AbortController();
      const response = await fetch(`${url}${target}`, { headers, signal: abort.signal });
      const body = response.status === 200 ? '(an event stream)' : await response.text();
      abort.abort();
      return { statusCode: response.status, body };
    }
    return platform.server.inject({ method, url: target, headers, ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }) });
  }

  it('lists every route it serves, and no other', async () => {
    assert.deepEqual(await servedRoutes(), Object.keys(matrix).sort());
  });

  it('answers 401 without a token on every route but the public ones', async () => {
    for (const [route, expected] of Object.entries(matrix)) {
      const response = await call(route, {});
      if (expected === 'public') assert.ok(response.statusCode !== 401 && response.statusCode !== 403, `${route}: ${response.statusCode} ${response.body}`);
      else assert.equal(response.statusCode, 401, `${route} answered ${response.statusCode} without a token`);
    }
  });

  it('lets each role in exactly where the policy says, and applicants only to their own applications', async () => {
    for (const [route, expected] of Object.entries(matrix)) {
      for (const role of all) {
        // Signing out revokes the token: a token of its own, not the one the other routes are called with.
        const headers = route === 'POST /auth/logout' ? await injectedBearer(platform.server, userOf[role]) : await as(userOf[role]);
        const response = await call(route, headers);
        const allowed = expected === 'public' || expected.roles.includes(role) || (role === 'applicant' && expected.own === true);
        if (!allowed) {
          assert.equal(response.statusCode, 403, `${route} let ${role} in: ${response.statusCode} ${response.body}`);
          continue;
        }
        assert.ok(response.statusCode !== 401 && response.statusCode !== 403, `${route} refused ${role}: ${response.statusCode} ${response.body}`);
        // Marco asking about Giulia's application gets exactly what he would for one that does not exist.
        const scoped = role === 'applicant' && expected !== 'public' && expected.own && route.includes('{id}');
        if (scoped) {
          const none = await call(route.replace('{id}', '{none}'), await as('marco'));
          assert.deepEqual(
            [response.statusCode, JSON.parse(response.body).code],
            [none.statusCode, JSON.parse(none.body).code],
            `${route} told Marco that Giulia's application exists`,
          );
        }
      }
    }
  });

  it("refuses a signed-out token (401) on every route but the public ones, while the role's other tokens hold", async () => {
    for (const role of all) {
      const signedOut = await injectedBearer(platform.server, userOf[role]);
      assert.equal((await call('GET /api/me', signedOut)).statusCode, 200);
      const logout = await call('POST /auth/logout', signedOut);
      assert.equal(logout.statusCode, 204, logout.body);
      for (const [route, expected] of Object.entries(matrix)) {
        const response = await call(route, signedOut);
        if (expected === 'public') assert.ok(response.statusCode !== 401 && response.statusCode !== 403, `${route}: ${response.statusCode} ${response.body}`);
        else assert.equal(response.statusCode, 401, `${route} let ${role}'s signed-out token in: ${response.statusCode} ${response.body}`);
      }
      // The role's other tokens still hold.
      assert.equal((await call('GET /api/me', await as(userOf[role]))).statusCode, 200);
    }
  });

  it('answers injection attempts in the search parameters as ordinary text', async () => {
    const operator = await as('olivia');
    const search = async (query: string) => {
      const response = await platform.server.inject({ method: 'GET', url: `/api/applications?${query}&minPosition=${submittedAt}`, headers: operator });
      assert.ok(response.statusCode === 200 || response.statusCode === 400, `${query}: ${response.statusCode} ${response.body}`);
      return response.statusCode === 200 ? response.json<{ items: { applicationId: string }[]; total: number }>() : undefined;
    };
    const attempts = ["' OR 1=1 --", "x'; DROP TABLE rm_application_search; --", '%', '_', '\\', "' UNION SELECT * FROM mutuo_events --", '$1', '"; --'];
    for (const attempt of attempts) {
      for (const parameter of ['q', 'taxCode', 'region']) {
        const found = await search(`${parameter}=${encodeURIComponent(attempt)}`);
        assert.ok(found === undefined || found.total === 0, `${parameter}=${attempt} matched ${found?.total}`);
      }
    }
    // A wildcard is a character like any other: "Bianchi%" finds what "Bianchi" does, and the table is still there.
    const plain = await search('q=Bianchi');
    assert.ok(plain?.items.some((item) => item.applicationId === giuliasApplication));
    assert.deepEqual(await search(`q=${encodeURIComponent('Bianchi%')}`), plain);
  });
});
