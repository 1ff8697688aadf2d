import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { AuthenticationError, bearerToken } from '../platform/http/identity.ts';
import { createTokenVerifier } from './identity.ts';

const issuer = 'https://id.bank.example';
const audience = 'mutuo';

async function keyPair(kid: string): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } };
}

const trusted = await keyPair('trusted');
const stranger = await keyPair('stranger');
const keys = createLocalJWKSet({ keys: [trusted.jwk] });
const nowSeconds = 1_900_000_000;

function token(
  claims: Record<string, unknown>,
  options: { key?: CryptoKey; kid?: string; iss?: string; aud?: string; exp?: number; sub?: string | null } = {},
) {
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'trusted' })
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? audience)
    .setIssuedAt(nowSeconds - 60)
    .setExpirationTime(options.exp ?? nowSeconds + 600);
  if (options.sub !== null) jwt = jwt.setSubject(options.sub ?? 'user-1');
  return jwt.sign(options.key ?? trusted.privateKey);
}

describe('bearer tokens', () => {
  let clockMs = nowSeconds * 1000;
  const verifier = createTokenVerifier({ keys, issuer, audience, rolesClaim: 'realm_access.roles', clock: () => clockMs });
  const verify = async (candidate: string) => verifier(candidate);

  it('turns a token of the configured issuer into the subject, its known roles and its name', async () => {
    const identity = await verify(await token({ name: 'Olivia Conti', realm_access: { roles: ['operator', 'offline_access', 'admin'] } }));
    assert.equal(identity.subject, 'user-1');
    assert.deepEqual([...identity.roles].sort(), ['admin', 'operator']);
    assert.equal(identity.name, 'Olivia Conti');
  });

  it('refuses a token signed by another key, for another audience, from another issuer, expired, or naming no subject', async () => {
    const refused = [
      await token({}, { key: stranger.privateKey, kid: 'trusted' }),
      await token({}, { key: stranger.privateKey, kid: 'stranger' }),
      await token({}, { aud: 'another-api' }),
      await token({}, { iss: 'https://evil.example' }),
      await token({}, { exp: nowSeconds - 1 }),
      await token({}, { sub: null }),
      'not.a.token',
    ];
    for (const candidate of refused) await assert.rejects(verify(candidate), AuthenticationError, candidate);
  });

  it('remembers a verified token until it expires, and no longer', async () => {
    const shortLived = await token({ realm_access: { roles: ['applicant'] } }, { exp: nowSeconds + 30 });
    clockMs = nowSeconds * 1000;
    assert.equal((await verify(shortLived)).subject, 'user-1');
    clockMs = (nowSeconds + 29) * 1000;
    // Remembered: answered at once, without a promise.
    const again = verifier(shortLived);
    assert.ok(!(again instanceof Promise));
    assert.equal(again.subject, 'user-1');
    clockMs = (nowSeconds + 31) * 1000;
    await assert.rejects(verify(shortLived), /expired/);
    clockMs = nowSeconds * 1000;
  });

  it('names a token for its revocation by its jti, or else by its subject and issue time', async () => {
    const withId = await verify(
      await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'trusted' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject('user-2')
        .setJti('t-42')
        .setIssuedAt(nowSeconds - 60)
        .setExpirationTime(nowSeconds + 600)
        .sign(trusted.privateKey),
    );
    assert.deepEqual(withId.token, { id: 'jti:t-42', expiresAtMs: (nowSeconds + 600) * 1000 });
    const withoutId = await verify(await token({}));
    assert.deepEqual(withoutId.token, { id: `sub:user-1:iat:${nowSeconds - 60}`, expiresAtMs: (nowSeconds + 600) * 1000 });
  });

  it('refuses a revoked token, whether it was verified before or not', async () => {
    const revoked = new Set<string>();
    const revoking = createTokenVerifier({
      keys,
      issuer,
      audience,
      rolesClaim: 'realm_access.roles',
      clock: () => clockMs,
      isRevoked: (candidate) => revoked.has(candidate.id),
    });
    const remembered = await token({ jti: 'remembered', realm_access: { roles: ['operator'] } });
    const fresh = await token({ jti: 'fresh', realm_access: { roles: ['admin'] } });
    assert.equal((await revoking(remembered)).token.id, 'jti:remembered');
    revoked.add('jti:remembered');
    assert.throws(() => revoking(remembered), /revoked/);
    assert.equal((await revoking(fresh)).subject, 'user-1', 'another token of the same subject still holds');
    const unseen = await token({ jti: 'unseen' });
    revoked.add('jti:unseen');
    await assert.rejects(async () => revoking(unseen), /revoked/);
  });

  it('reads the Authorization header', () => {
    assert.equal(bearerToken(undefined), undefined);
    assert.equal(bearerToken('Bearer abc.def-ghi_jkl'), 'abc.def-ghi_jkl');
    assert.equal(bearerToken('bearer   abc'), 'abc');
    for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', 'abc']) assert.throws(() => bearerToken(header), AuthenticationError, header);
  });
});
