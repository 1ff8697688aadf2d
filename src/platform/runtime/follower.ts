import { createSleeper, type Sleeper } from './sleeper.ts';

/**
 * What a step answers: `again` when it found work (there may be more: step again at once),
 * `sleepMs` when it found none (sleep at most that long; a wake ends the sleep), or
 * `lease-lost` when its fenced write found the lease in another's hands.
 */
export type Next = 'again' | { readonly sleepMs: number } | 'lease-lost';

/**
 * A follower that must be the only one of its name (one relay publishes, one process
 * writes a projection). The runtime drives it; the layer that owns the lease's table
 * writes its SQL.
 */
export type Lease = {
  /** How long the lease lasts unrenewed: the runtime renews it once a third of it has passed. */
  readonly durationMs: number;
  /** How long to stand by before trying again while another holds it. */
  readonly standbyMs: number;
  /** Takes the lease (or renews it, if this follower still holds it) and readies the work under it; false when another holds it. */
  readonly acquire: () => Promise<boolean>;
  /** Renews the lease; false when it was lost (it lapsed, and another took it). */
  readonly renew: () => Promise<boolean>;
  /** Gives the lease up, so that another takes over at once rather than when it lapses. */
  readonly release: () => Promise<void>;
};

/** Exponential backoff after consecutive failures: `firstMs`, doubling, at most `maxMs`. */
export type Backoff = { readonly firstMs: number; readonly maxMs: number };

export type FollowerOptions = {
  /** One look for work, and what to do next. */
  readonly step: () => Promise<Next>;
  readonly lease?: Lease;
  /** Default: 100 ms, up to 5 s. */
  readonly backoff?: Backoff;
  /** A failure of a step or of the lease (the database or the broker away): it is tried again after the backoff. */
  readonly onError?: (error: unknown) => void;
  readonly sleeper?: Sleeper;
  /** In [0, 1): the jitter of the backoff. */
  readonly random?: () => number;
  /** Milliseconds, for the lease's renewal. */
  readonly now?: () => number;
};

export type Follower = {
  /** Look for work now: ends the sleep in hand, or the next one if a step is under way. */
  readonly wake: () => void;
  /** Resolves once the step in hand has ended and the lease is given up; no step starts after it is called. */
  readonly stop: () => Promise<void>;
};

/**
 * The pause after `failures` consecutive failures (0 for the first): the exponential
 * ceiling, less up to half of it at random, so that followers failing together (the
 * database came back) do not all try again at the same moment.
 */
export function backoffMs(failures: number, backoff: Backoff, random: () => number): number {
  // The exponent is bounded so that the ceiling never overflows to Infinity (0 × Infinity is NaN).
  const ceilingMs = Math.min(backoff.maxMs, backoff.firstMs * 2 ** Math.min(failures, 52));
  return ceilingMs - (ceilingMs / 2) * random();
}

/**
 * Follows work: runs `step` again and again, sleeping when it finds nothing until woken or
 * its time is up, backing off with jitter while it fails, and, with a lease, stepping only
 * while it holds it. A step that fails or finds its lease lost gives the lease up in this
 * process's mind: it is acquired again (which reads again where the work stands) first.
 */
export function startFollower(options: FollowerOptions): Follower {
  const { step, lease } = options;
  const backoff = options.backoff ?? { firstMs: 100, maxMs: 5_000 };
  const sleeper = options.sleeper ?? createSleeper();
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  let stopped = false;
  let held = false;
  let renewedAt = 0;

  /** Whether this follower holds the lease: renewed when due, acquired when not held. */
  async function holds(lease: Lease): Promise<boolean> {
    if (held && now() - renewedAt < lease.durationMs / 3) return true;
    held = (held && (await lease.renew())) || (await lease.acquire());
    if (held) renewedAt = now();
    return held;
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (!stopped) {
      try {
        if (lease && !(await holds(lease))) {
          await sleeper.sleep(lease.standbyMs);
          continue;
        }
        if (stopped) break;
        const next = await step();
        failures = 0;
        if (next === 'lease-lost') held = false;
        else if (next !== 'again') await sleeper.sleep(next.sleepMs);
      } catch (error) {
        held = false;
        options.onError?.(error);
        await sleeper.sleep(backoffMs(failures++, backoff, random));
      }
    }
  }

  // Once startFollower has returned: a step may then use the follower (wake it).
  const running = Promise.resolve().then(run);
  return {
    wake: sleeper.wake,
    stop: async () => {
      stopped = true;
      sleeper.wake();
      await running;
      // Should this fail (the database away), the lease lapses by itself.
      await lease?.release().catch(() => undefined);
    },
  };
}
