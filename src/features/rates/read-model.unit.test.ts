import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { defaultRateTable, type RateTable } from '../../domain/rates.ts';
import { publishedRates } from './read-model.ts';

/** A read model whose reads the test answers one by one, in any order. */
function heldReadModel() {
  const pending: { answer: (version: number) => void; fail: (error: Error) => void }[] = [];
  const table = (version: number): RateTable => ({ ...defaultRateTable, publishedAt: `2026-01-${String(version).padStart(2, '0')}T00:00:00Z` });
  const db = {
    query: () =>
      new Promise((resolve, reject) => {
        pending.push({ answer: (version) => resolve([{ version, rate_table: table(version) }]), fail: reject });
      }),
  } as unknown as SqlQueryable;
  return { db, pending };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Rates over a held read model (ttl 1 s, served up to 30 s old) whose first table, version 1, has been read at 0 ms. */
async function ratesReadOnce() {
  const { db, pending } = heldReadModel();
  const clock = { ms: 0 };
  const rates = publishedRates(db, { ttlMs: 1_000, maxStaleMs: 30_000, now: () => clock.ms });
  const first = rates.current();
  pending.shift()!.answer(1);
  assert.equal((await first).version, 1);
  return { rates, pending, clock };
}

describe('publishedRates', () => {
  it('past its time to live, one read is shared by every caller, and none of them waits for it', async () => {
    const { db } = heldReadModel();
    assert.equal(publishedRates(db).inMemory(), undefined, 'nothing read yet');
    const { rates, pending, clock } = await ratesReadOnce();

    clock.ms = 1_500;
    const answers = Array.from({ length: 100 }, () => rates.inMemory()?.version);
    assert.deepEqual(new Set(answers), new Set([1]), 'the table in memory while the read is out');
    assert.equal(pending.length, 1, 'one read for a hundred callers');
    pending.shift()!.answer(2);
    await settle();
    assert.equal(rates.inMemory()?.version, 2);
    assert.equal(pending.length, 0, 'no read while the new table is young');
  });

  it('past the staleness bound, callers wait for the read; a failed read is tried again by the next caller', async () => {
    const { rates, pending, clock } = await ratesReadOnce();

    clock.ms = 2_000;
    assert.equal(rates.inMemory()?.version, 1);
    pending.shift()!.fail(new Error('the database is away'));
    await settle();
    clock.ms = 29_000;
    assert.equal(rates.inMemory()?.version, 1, 'still served after the failed read');
    assert.equal(pending.length, 1, 'and read again');
    pending.shift()!.fail(new Error('still away'));
    await settle();

    clock.ms = 31_000;
    assert.equal(rates.inMemory(), undefined, 'too old to serve');
    const waiting = rates.current();
    assert.equal(pending.length, 1, 'the waiting caller shares the read inMemory started');
    pending.shift()!.answer(3);
    assert.equal((await waiting).version, 3);
  });

  it('a fresh read does not share the read under way, and the older answer landing later does not replace it', async () => {
    const { rates, pending, clock } = await ratesReadOnce();

    clock.ms = 1_500;
    rates.inMemory(); // starts the shared read
    const fresh = rates.current(true);
    assert.equal(pending.length, 2, 'a read of its own');
    const [shared, own] = pending.splice(0, 2);
    own!.answer(5);
    assert.equal((await fresh).version, 5);
    shared!.answer(4);
    await settle();
    assert.equal(rates.inMemory()?.version, 5, 'the newer table stays');
  });
});
