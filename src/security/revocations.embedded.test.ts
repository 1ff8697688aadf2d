import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openTestPglite, type TestDatabase } from '../platform/sql/testing.ts';
import { openTokenRevocations } from './revocations.ts';

describe('revoked tokens', () => {
  let database: TestDatabase;
  let nowMs = Date.parse('2026-11-23T10:00:00Z');
  const clock = () => nowMs;
  const stored = async () =>
    (await database.client.query<{ token_id: string }>('SELECT token_id FROM mutuo_revoked_tokens ORDER BY seq')).map((row) => row.token_id);

  before(async () => {
    database = await openTestPglite();
  });
  after(() => database.dispose());

  it('refuses a revoked token at once where it was revoked, and wherever the revocations are read again', async () => {
    const here = await openTokenRevocations(database.client, { clock });
    const elsewhere = await openTokenRevocations(database.client, { clock });
    const token = { id: 'jti:a', expiresAtMs: nowMs + 3_600_000 };
    assert.equal(here.isRevoked(token), false);
    await here.revoke(token);
    assert.equal(here.isRevoked(token), true);
    assert.equal(elsewhere.isRevoked(token), false, 'another process learns of it when it reads the revocations');
    await elsewhere.refresh();
    assert.equal(elsewhere.isRevoked(token), true);
    assert.equal(elsewhere.isRevoked({ id: 'jti:b', expiresAtMs: token.expiresAtMs }), false);
    // A process that starts later reads it at once.
    assert.equal((await openTokenRevocations(database.client, { clock })).isRevoked(token), true);
  });

  it("reads the other processes' revocations when tokens are checked: not while idle, from memory within the bound, shared past it", async () => {
    let reads = 0;
    const counting = {
      ...database.client,
      query: <Row>(text: string, params?: readonly unknown[]) => {
        if (text.includes('FROM mutuo_revoked_tokens WHERE seq')) reads++;
        return database.client.query<Row>(text, params);
      },
    };
    const here = await openTokenRevocations(database.client, { clock });
    const elsewhere = await openTokenRevocations(counting, { clock, refreshMs: 1_000 });
    const token = { id: `jti:${nowMs}`, expiresAtMs: nowMs + 3_600_000 };
    const opened = reads;
    nowMs += 60_000;
    assert.equal(reads, opened, 'an idle process reads nothing');
    await here.revoke(token);
    // Past the bound: the check waits for one read, which every check meanwhile shares.
    const checks = [elsewhere.isRevoked(token), elsewhere.isRevoked(token), elsewhere.isRevoked({ id: 'jti:other', expiresAtMs: token.expiresAtMs })];
    assert.ok(checks.every((check) => check instanceof Promise));
    assert.deepEqual(await Promise.all(checks), [true, true, false]);
    assert.equal(reads, opened + 1);
    // Within half the bound: from memory, no read.
    nowMs += 400;
    assert.equal(elsewhere.isRevoked(token), true);
    assert.equal(reads, opened + 1);
    // Past half of it: from memory still, while a read starts for the next checks.
    nowMs += 200;
    assert.equal(elsewhere.isRevoked(token), true);
    assert.equal(reads, opened + 2);
  });

  it('prunes the revocations of tokens that have expired', async () => {
    const revocations = await openTokenRevocations(database.client, { clock });
    const shortLived = { id: 'jti:short', expiresAtMs: nowMs + 60_000 };
    const longLived = { id: 'sub:employee-7:iat:1795000000', expiresAtMs: nowMs + 3_600_000 };
    await revocations.revoke(shortLived);
    await revocations.revoke(longLived);
    assert.ok((await stored()).includes('jti:short'));
    nowMs += 120_000;
    await revocations.prune();
    assert.ok(!(await stored()).includes('jti:short'), 'the expired one is gone from the table');
    assert.ok((await stored()).includes(longLived.id));
    assert.equal(revocations.isRevoked(shortLived), false, 'and from memory (the token itself is refused as expired)');
    assert.equal(revocations.isRevoked(longLived), true);
    // Each revocation prunes too.
    nowMs += 3_600_000;
    await revocations.revoke({ id: 'jti:later', expiresAtMs: nowMs + 60_000 });
    assert.deepEqual(await stored(), ['jti:later']);
  });
});
