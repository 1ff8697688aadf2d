import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoffMs, startFollower, type Lease, type Next } from './follower.ts';
import type { Sleeper } from './sleeper.ts';

type Sleep = { readonly ms: number; readonly end: () => void };

/** A sleeper the test ends by hand, sleep by sleep: each one is logged and waits for `end` (or a wake). */
function handSleeper(log: string[]) {
  const asked: Sleep[] = [];
  const waiting: ((sleep: Sleep) => void)[] = [];
  let current: (() => void) | undefined;
  const sleeper: Sleeper = {
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        log.push(`sleep ${ms}`);
        const sleep = {
          ms,
          end: () => {
            current = undefined;
            resolve();
          },
        };
        current = sleep.end;
        const waiter = waiting.shift();
        if (waiter) waiter(sleep);
        else asked.push(sleep);
      }),
    wake: () => current?.(),
  };
  /** The next sleep the follower asks for (it may have asked already). */
  const nextSleep = () => new Promise<Sleep>((resolve) => (asked.length > 0 ? resolve(asked.shift()!) : waiting.push(resolve)));
  return { sleeper, nextSleep };
}

/** A lease that answers `acquire` and `renew` from lists (true once they run out), logging each call. */
function scriptedLease(log: string[], answers: { acquire?: boolean[]; renew?: boolean[] } = {}): Lease {
  const acquires = [...(answers.acquire ?? [])];
  const renewals = [...(answers.renew ?? [])];
  return {
    durationMs: 300,
    standbyMs: 1_000,
    acquire: async () => {
      const held = acquires.shift() ?? true;
      log.push(`acquire ${held}`);
      return held;
    },
    renew: async () => {
      const held = renewals.shift() ?? true;
      log.push(`renew ${held}`);
      return held;
    },
    release: async () => {
      log.push('release');
    },
  };
}

/** A step that logs itself and answers from a list, then sleeps 10 ms each time; an Error in the list is thrown. */
function scriptedStep(log: string[], answers: (Next | Error)[] = []) {
  const left = [...answers];
  return async (): Promise<Next> => {
    log.push('step');
    const answer = left.shift() ?? { sleepMs: 10 };
    if (answer instanceof Error) throw answer;
    return answer;
  };
}

const aRandom = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

describe('backoffMs', () => {
  it('grows from firstMs, doubling, is capped at maxMs, and is jittered by at most half, for any failures and random draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.nat(2_000),
        aRandom,
        aRandom,
        (firstMs, extraMs, failures, r1, r2) => {
          const backoff = { firstMs, maxMs: firstMs + extraMs };
          const ceilingMs = Math.min(backoff.maxMs, firstMs * 2 ** failures);
          const delay = backoffMs(failures, backoff, () => r1);
          assert.ok(Number.isFinite(delay));
          assert.ok(delay <= ceilingMs && delay >= ceilingMs / 2, `${delay} within [${ceilingMs / 2}, ${ceilingMs}]`);
          assert.ok(delay <= backoff.maxMs);
          // Never shorter for more failures, with the same draw.
          assert.ok(backoffMs(failures + 1, backoff, () => r1) >= delay);
          // Jittered over the whole lower half of the ceiling: a larger draw never waits longer.
          if (r1 < r2) assert.ok(backoffMs(failures, backoff, () => r2) <= delay);
          assert.equal(
            backoffMs(failures, backoff, () => 0),
            ceilingMs,
          );
          assert.ok(backoffMs(failures, backoff, () => 0.999_999) < ceilingMs * 0.51);
        },
      ),
    );
  });

  it('is the plain exponential ceiling for a draw of 0', () => {
    const backoff = { firstMs: 100, maxMs: 1_000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((failures) => backoffMs(failures, backoff, () => 0)),
      [100, 200, 400, 800, 1_000, 1_000],
    );
  });
});

describe('startFollower', () => {
  it('steps again at once after a step that found work, and sleeps what a step that found none asks', async () => {
    const log: string[] = [];
    const { sleeper, nextSleep } = handSleeper(log);
    const follower = startFollower({ step: scriptedStep(log, ['again', 'again', { sleepMs: 250 }]), sleeper });
    (await nextSleep()).end();
    await nextSleep();
    await follower.stop();
    assert.deepEqual(log, ['step', 'step', 'step', 'sleep 250', 'step', 'sleep 10']);
  });

  it('reports a failing step and tries it again after a backoff that grows, is capped and jittered, and starts over once a step succeeds', async () => {
    const log: string[] = [];
    const errors: unknown[] = [];
    const { sleeper, nextSleep } = handSleeper(log);
    const outage = new Error('the database is away');
    const follower = startFollower({
      step: scriptedStep(log, [outage, outage, outage, outage, outage, outage, { sleepMs: 40 }, outage]),
      sleeper,
      backoff: { firstMs: 100, maxMs: 1_000 },
      random: () => 0.5,
      onError: (error) => errors.push(error),
    });
    const sleeps: number[] = [];
    for (let i = 0; i < 8; i++) {
      const sleep = await nextSleep();
      sleeps.push(sleep.ms);
      sleep.end();
    }
    await follower.stop();
    // Each ceiling (100, 200, 400, 800, then 1,000) less a quarter of it: half the jitter, for a draw of 0.5.
    assert.deepEqual(sleeps, [75, 150, 300, 600, 750, 750, 40, 75]);
    assert.equal(errors.length, 7);
    assert.ok(errors.every((error) => error === outage));
    assert.equal(log.filter((entry) => entry === 'step').length, 8, 'every failed step was tried again, the last one when stopped');
  });

  it('wakes at once for a wake that came during a step, however long the sleep it then asks for', { timeout: 10_000 }, async () => {
    let steps = 0;
    const errors: unknown[] = [];
    let secondStep!: () => void;
    const steppedTwice = new Promise<void>((resolve) => (secondStep = resolve));
    const follower = startFollower({
      step: async () => {
        steps++;
        if (steps === 1) {
          await Promise.resolve();
          follower.wake();
        } else secondStep();
        return { sleepMs: 3_600_000 };
      },
      onError: (error) => errors.push(error),
    });
    // Without the wake kept, the second step would come an hour later (and the test time out).
    await steppedTwice;
    await follower.stop();
    assert.equal(steps, 2);
    assert.deepEqual(errors, []);
  });

  it('steps only while it holds the lease: a step that finds it lost stops the steps until it is acquired again', async () => {
    const log: string[] = [];
    const { sleeper, nextSleep } = handSleeper(log);
    const follower = startFollower({
      step: scriptedStep(log, ['lease-lost']),
      lease: scriptedLease(log, { acquire: [true, false, false, true] }),
      sleeper,
      now: () => 0,
    });
    (await nextSleep()).end();
    (await nextSleep()).end();
    await nextSleep();
    await follower.stop();
    assert.deepEqual(log, [
      'acquire true',
      'step',
      'acquire false',
      'sleep 1000',
      'acquire false',
      'sleep 1000',
      'acquire true',
      'step',
      'sleep 10',
      'release',
    ]);
  });

  it('renews the lease once a third of it has passed, and on a renewal that fails, acquires it again before the next step', async () => {
    const log: string[] = [];
    const { sleeper, nextSleep } = handSleeper(log);
    let nowMs = 0;
    const follower = startFollower({
      step: scriptedStep(log),
      lease: scriptedLease(log, { acquire: [true, false, true], renew: [true, false] }),
      sleeper,
      now: () => nowMs,
    });
    for (const atMs of [50, 100, 150, 199, 200]) {
      (await nextSleep()).end();
      nowMs = atMs;
    }
    (await nextSleep()).end();
    await nextSleep();
    await follower.stop();
    assert.deepEqual(log, [
      'acquire true',
      'step',
      'sleep 10',
      // at 50 ms: a sixth of the lease
      'step',
      'sleep 10',
      // at 100 ms: a third
      'renew true',
      'step',
      'sleep 10',
      'step',
      'sleep 10',
      'step',
      'sleep 10',
      // at 200 ms, a third after the renewal: it was lost meanwhile
      'renew false',
      'acquire false',
      'sleep 1000',
      'acquire true',
      'step',
      'sleep 10',
      'release',
    ]);
  });

  it('acquires the lease again (reading again where the work stands) after a step that failed', async () => {
    const log: string[] = [];
    const { sleeper, nextSleep } = handSleeper(log);
    const follower = startFollower({
      step: scriptedStep(log, [new Error('the broker is away')]),
      lease: scriptedLease(log),
      sleeper,
      random: () => 0,
      now: () => 0,
    });
    (await nextSleep()).end();
    await nextSleep();
    await follower.stop();
    assert.deepEqual(log, ['acquire true', 'step', 'sleep 100', 'acquire true', 'step', 'sleep 10', 'release']);
  });

  it('stops once the step in hand has ended, starts no other, then gives the lease up', async () => {
    const log: string[] = [];
    let finishStep!: () => void;
    const inHand = new Promise<void>((resolve) => (finishStep = resolve));
    let started!: () => void;
    const stepStarted = new Promise<void>((resolve) => (started = resolve));
    const follower = startFollower({
      step: async () => {
        log.push('step');
        started();
        await inHand;
        log.push('step ended');
        return 'again';
      },
      lease: scriptedLease(log),
    });
    await stepStarted;
    let stopped = false;
    const stopping = follower.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stopped, false, 'stop waits for the step in hand');
    finishStep();
    await stopping;
    assert.deepEqual(log, ['acquire true', 'step', 'step ended', 'release']);
  });

  it('starts no step when stopped while it acquires the lease, and gives it up', async () => {
    const log: string[] = [];
    let grant!: (held: boolean) => void;
    let asked!: () => void;
    const acquiring = new Promise<void>((resolve) => (asked = resolve));
    const follower = startFollower({
      step: scriptedStep(log),
      lease: {
        ...scriptedLease(log),
        acquire: () => {
          asked();
          return new Promise<boolean>((resolve) => (grant = resolve));
        },
      },
    });
    await acquiring;
    const stopping = follower.stop();
    grant(true);
    await stopping;
    assert.deepEqual(log, ['release']);
  });

  it('ends a sleep at once when stopped', { timeout: 10_000 }, async () => {
    let stepped!: () => void;
    const firstStep = new Promise<void>((resolve) => (stepped = resolve));
    const follower = startFollower({
      step: async () => {
        stepped();
        return { sleepMs: 3_600_000 };
      },
    });
    await firstStep;
    // An hour's sleep: the test would time out if stop waited for it.
    await follower.stop();
  });
});
