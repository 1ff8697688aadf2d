import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { describeHolder, horizonJudge, shownQuery, type HorizonHolder, type HorizonReading } from './horizon.ts';

const t0 = Date.parse('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(t0 + ms);

function backend(xid: string, overrides: Partial<Extract<HorizonHolder, { kind: 'backend' }>> = {}): HorizonHolder {
  return {
    kind: 'backend',
    xid,
    pid: 4242,
    database: 'other',
    user: 'bob',
    applicationName: 'psql',
    detailsHidden: false,
    backendType: 'client backend',
    state: 'active',
    transactionStartedAt: at(0),
    stateChangedAt: at(0),
    query: 'CREATE INDEX ON t (x)',
    ...overrides,
  };
}

const reading = (ms: number, holder?: HorizonHolder): HorizonReading => ({
  observedAt: at(ms),
  xmin: holder?.xid ?? '900',
  xmax: holder ? '905' : '900',
  ...(holder ? { holder } : {}),
});

describe('the read horizon judge', () => {
  it('sees no stall on an idle database: no holder, nothing held', () => {
    const judge = horizonJudge(300);
    for (const ms of [0, 1_000, 60_000]) {
      const { state, change } = judge.observe(reading(ms));
      assert.equal(state.stalled, false);
      assert.equal(state.heldMs, 0);
      assert.deepEqual(change, { at: at(ms) });
    }
  });

  it('counts a running statement from when it was first seen holding, not from its transaction start: its xid may be just taken', () => {
    const judge = horizonJudge(10_000);
    const longLived = backend('100', { transactionStartedAt: at(-3_600_000) });
    assert.equal(judge.observe(reading(0, longLived)).state.stalled, false);
    assert.equal(judge.observe(reading(9_999, longLived)).state.stalled, false);
    const { state, change } = judge.observe(reading(10_000, longLived));
    assert.equal(state.stalled, true);
    assert.equal(state.heldMs, 10_000);
    assert.equal(change.began, state);
  });

  it('takes what the catalog proves: idle in its transaction since its last statement, or prepared, it held its xid then already', () => {
    const idle = backend('100', { state: 'idle in transaction', stateChangedAt: at(-20_000) });
    const first = horizonJudge(10_000).observe(reading(0, idle));
    assert.equal(first.state.stalled, true);
    assert.equal(first.state.heldMs, 20_000);
    assert.ok(first.change.began);
    const prepared: HorizonHolder = { kind: 'prepared', xid: '101', gid: 'forgotten', database: 'test', owner: 'postgres', preparedAt: at(-60_000) };
    assert.equal(horizonJudge(10_000).observe(reading(0, prepared)).state.heldMs, 60_000);
  });

  it('never stalls on a busy database, whose oldest transaction changes from one look to the next', () => {
    const judge = horizonJudge(300);
    for (let i = 0; i < 100; i++) assert.equal(judge.observe(reading(i * 1_000, backend(String(100 + i)))).state.stalled, false);
  });

  it('reports a stall once when it begins and once when it ends, and a new holder as a new stall', () => {
    const judge = horizonJudge(300);
    const a = backend('100');
    const b = backend('101', { state: 'idle in transaction', stateChangedAt: at(0) });
    assert.deepEqual(judge.observe(reading(0, a)).change, { at: at(0) });
    const began = judge.observe(reading(400, a));
    assert.equal(began.change.began?.holder?.xid, '100');
    assert.deepEqual(judge.observe(reading(800, a)).change, { at: at(800) });
    const switched = judge.observe(reading(1_200, b));
    assert.equal(switched.change.ended?.holder?.xid, '100');
    assert.equal(switched.change.ended?.heldMs, 800);
    assert.equal(switched.change.began?.holder?.xid, '101');
    const ended = judge.observe(reading(1_600));
    assert.equal(ended.change.ended?.holder?.xid, '101');
    assert.equal(ended.change.began, undefined);
    assert.deepEqual(judge.observe(reading(2_000)).change, { at: at(2_000) });
  });

  it('for any readings: a stall is only ever a holder seen or proven holding for the threshold, always one that was, and begins and ends once', () => {
    /** How each transaction shows in the catalog: running a statement (0, nothing proven), idle in it (1) or prepared (2), and since when. */
    const story = fc.record({ kind: fc.integer({ min: 0, max: 2 }), proofAgeMs: fc.integer({ min: 0, max: 5_000 }) });
    const step = fc.record({ advanceMs: fc.integer({ min: 0, max: 2_000 }), xid: fc.option(fc.constantFrom('100', '101', '102'), { nil: undefined }) });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3_000 }),
        fc.dictionary(fc.constantFrom('100', '101', '102'), story, { minKeys: 3 }),
        fc.array(step, { maxLength: 40 }),
        (thresholdMs, stories, steps) => {
          const judge = horizonJudge(thresholdMs);
          let now = 0;
          /** The current run of one holder: when it was first seen, and what the catalog proves of it (a time it held its xid already). */
          let run: { xid: string; firstSeen: number; proof: number | undefined } | undefined;
          let open = false;
          for (const { advanceMs, xid } of steps) {
            now += advanceMs;
            let holder: HorizonHolder | undefined;
            if (xid === undefined) run = undefined;
            else {
              const { kind, proofAgeMs } = stories[xid]!;
              if (run?.xid !== xid) run = { xid, firstSeen: now, proof: kind === 0 ? undefined : now - proofAgeMs };
              holder =
                kind === 0
                  ? backend(xid, { transactionStartedAt: at(run.firstSeen - 10 * proofAgeMs) })
                  : kind === 1
                    ? backend(xid, { state: 'idle in transaction', stateChangedAt: at(run.proof!) })
                    : { kind: 'prepared', xid, gid: `g${xid}`, database: 'test', owner: 'postgres', preparedAt: at(run.proof!) };
            }
            const { state, change } = judge.observe(reading(now, holder));
            const heldFor = run ? now - Math.min(run.firstSeen, run.proof ?? Infinity) : 0;
            // No alarm without a holder, nor for one not seen or proven holding that long; always one for one that was.
            assert.equal(state.heldMs, heldFor);
            assert.equal(state.stalled, run !== undefined && heldFor >= thresholdMs);
            // Each stall begins once and ends once, in turn.
            if (change.ended) {
              assert.ok(open, 'an end without a beginning');
              open = false;
            }
            if (change.began) {
              assert.ok(!open, 'a second beginning');
              assert.equal(change.began, state);
              open = true;
            }
            assert.equal(open, state.stalled);
          }
        },
      ),
    );
  });
});

describe('a blocker as it is shown', () => {
  it('leaves the quoted literals of its query out, folds its whitespace and cuts it at 200 characters', () => {
    assert.equal(
      shownQuery(`UPDATE people\n   SET name = 'Giulia O''Brien', note = E'it\\'s' WHERE id = $1`),
      "UPDATE people SET name = '…', note = '…' WHERE id = $1",
    );
    assert.equal(shownQuery('SELECT $$Bianchi$$, $tag$Rossi $$ x$tag$, $2'), "SELECT '…', '…', $2");
    const long = shownQuery(`SELECT ${'x, '.repeat(200)}1`);
    assert.equal(long.length, 200);
    assert.ok(long.endsWith('…'));
  });

  it('names a backend by pid, database and user, and says what its role may not see, and how to see it', () => {
    const hidden = describeHolder(backend('100', { detailsHidden: true, state: null, query: null, transactionStartedAt: null }), at(0));
    assert.match(hidden, /pid 4242 \(database other, user bob; .*hidden.*pg_monitor/);
    assert.match(describeHolder(backend('100', { transactionStartedAt: at(-42_000) }), at(0)), /pid 4242 .*active, transaction 42.0 s old\): CREATE INDEX/);
    const prepared = describeHolder({ kind: 'prepared', xid: '1', gid: 'forgotten', database: 'test', owner: 'postgres', preparedAt: at(-5_000) }, at(0));
    assert.match(prepared, /prepared transaction 'forgotten' \(database test, owner postgres, prepared 5.0 s ago\).*ROLLBACK PREPARED/);
  });
});
