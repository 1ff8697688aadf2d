import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { ConfigError, loadConfig } from '../../src/app/config.ts';

/** A bank's identity provider, as far as Mutuo sees one: a JWKS over HTTP, and tokens signed with its key. */
async function startIdentityProvider(): Promise<{ url: string; issuer: string; sign: (claims: Record<string, unknown>) => Promise<string>; server: Server }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'bank-1', alg: 'RS256', use: 'sig' }] };
  const server = createServer((request, response) => {
    if (request.url !== '/.well-known/jwks.json') return response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  const issuer = `http://127.0.0.1:${address.port}`;
  const signWith = (key: CryptoKey) => (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'bank-1' })
      .setIssuer(issuer)
      .setAudience('mortgages')
      .setSubject('employee-7')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(key);
  return { url: `${issuer}/.well-known/jwks.json`, issuer, sign: signWith(privateKey), server };
}

describe('identities from an outside provider (AUTH_JWKS_URL)', () => {
  let dataDir: string;
  let provider: Awaited<ReturnType<typeof startIdentityProvider>>;
  let platform: Platform;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-idp-'));
    provider = await startIdentityProvider();
    const config = loadConfig({
      MUTUO_DATA_DIR: dataDir,
      PORT: '0',
      AUTH_JWKS_URL: provider.url,
      AUTH_ISSUER: provider.issuer,
      AUTH_AUDIENCE: 'mortgages',
      AUTH_ROLES_CLAIM: 'groups',
    });
    platform = await openPlatform(config, false, { services: ['application', 'projector', 'query'] });
  });
  after(async () => {
    await platform.close();
    provider.server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("accepts the provider's tokens, takes the roles from the configured claim, and records the subject as the actor", async () => {
    const submission = JSON.parse(await readFile(new URL('../fixtures/submission.json', import.meta.url), 'utf8'));
    const applicant = { authorization: `Bearer ${await provider.sign({ groups: ['applicant'] })}` };
    const submitted = await platform.server.inject({ method: 'POST', url: '/api/applications', payload: submission, headers: applicant });
    assert.equal(submitted.statusCode, 201, submitted.body);
    const { applicationId } = submitted.json<{ applicationId: string }>();
    const operator = { authorization: `Bearer ${await provider.sign({ groups: ['operator'] })}` };
    const trail = await platform.server.inject({ method: 'GET', url: `/api/applications/${applicationId}/events`, headers: operator });
    assert.equal(trail.json<{ metadata: { actor: string } }[]>()[0]!.metadata.actor, 'employee-7');
    const me = await platform.server.inject({ method: 'GET', url: '/api/me', headers: operator });
    assert.deepEqual(me.json(), { subject: 'employee-7', roles: ['operator'] });
  });

  it('refuses tokens it cannot verify, and offers no development provider', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ groups: ['admin'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'bank-1' })
      .setIssuer(provider.issuer)
      .setAudience('mortgages')
      .setSubject('intruder')
      .setExpirationTime('10m')
      .sign(privateKey);
    const refused = await platform.server.inject({ method: 'GET', url: '/api/dead-letters', headers: { authorization: `Bearer ${forged}` } });
    assert.equal(refused.statusCode, 401);
    assert.equal((await platform.server.inject({ method: 'POST', url: '/auth/dev/token', payload: { user: 'ada' } })).statusCode, 404);
  });

  it('signs out a token of the provider that carries no jti, by its subject and issue time', async () => {
    const operator = { authorization: `Bearer ${await provider.sign({ groups: ['operator'] })}` };
    assert.equal((await platform.server.inject({ method: 'GET', url: '/api/me', headers: operator })).statusCode, 200);
    assert.equal((await platform.server.inject({ method: 'POST', url: '/auth/logout', headers: operator })).statusCode, 204);
    const after = await platform.server.inject({ method: 'GET', url: '/api/me', headers: operator });
    assert.equal(after.statusCode, 401);
    assert.match(after.json<{ detail: string }>().detail, /revoked/);
    const [row] = await platform.client.query<{ token_id: string }>('SELECT token_id FROM mutuo_revoked_tokens');
    assert.match(row!.token_id, /^sub:employee-7:iat:\d+$/);
  });

  it('will not start in production without an outside provider', () => {
    assert.throws(() => loadConfig({ NODE_ENV: 'production' }), ConfigError);
    assert.throws(() => loadConfig({ AUTH_JWKS_URL: 'https://id.bank.example/jwks' }), /AUTH_ISSUER/);
    const production = { NODE_ENV: 'production', AUTH_JWKS_URL: 'https://id.bank.example/jwks', AUTH_ISSUER: 'https://id.bank.example' };
    // Nor without the secret that keys the tax codes' digests.
    assert.throws(() => loadConfig(production), /MUTUO_SUBJECT_DIGEST_SECRET/);
    assert.equal(loadConfig({ ...production, MUTUO_SUBJECT_DIGEST_SECRET: 'x'.repeat(32) }).production, true);
  });
});
