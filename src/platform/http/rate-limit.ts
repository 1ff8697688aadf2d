/**
 * The public routes' rate limit: a fixed window per route and client address, counted
 * synchronously by each route's access guard (see accessControl).
 *
 * @fastify/rate-limit counted the same windows, in the same LRU (toad-cache), but through
 * an async hook and two promises on every request: 5 µs of the 26 µs a simulation took in
 * all (BENCHMARKS.md). Its other features (a Redis store, bans, allow lists) were not used.
 */
import { Address6 } from 'ip-address';
import { LruMap } from 'toad-cache';

export type RateLimit = {
  /** Requests a client may make in a window. */
  readonly max: number;
  readonly windowMs: number;
  /** Clients counted at once; past it the oldest windows are forgotten. */
  readonly clients?: number;
};

/** Counts one route's requests: undefined if this one is admitted, else the milliseconds until the client's window ends. */
export type RateLimiter = (address: string) => number | undefined;

/** IPv6 clients are counted by their /64 (one subscriber's network), as @fastify/rate-limit did. */
const IPV6_PREFIX_BITS = 64;

/** A client over its allowance; answered 429 with Retry-After (`code`: RATE_LIMITED, or what it is over). */
export class RateLimitedError extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    message = `too many requests: try again in ${retryAfterSeconds} s`,
    readonly code = 'RATE_LIMITED',
  ) {
    super(message);
  }
}

/** The key a client is counted under: its IPv4 address, or its IPv6 /64; an IPv4-mapped IPv6 address counts as the IPv4 one. */
export function clientKey(address: string): string {
  if (!address.includes(':')) return address;
  try {
    const parsed = new Address6(address);
    if (parsed.isMapped4()) return parsed.to4().correctForm();
    return new Address6(`${parsed.correctForm()}/${IPV6_PREFIX_BITS}`).startAddress().correctForm();
  } catch {
    return address.toLowerCase(); // not an address Address6 reads (a zone index, say): counted as it is
  }
}

export function rateLimiter({ max, windowMs, clients = 5_000 }: RateLimit): RateLimiter {
  // Each entry expires when its window ends: a client seen after that starts a new one.
  const windows = new LruMap<{ count: number }>(clients, windowMs);
  return (address) => {
    const key = clientKey(address);
    const counted = windows.get(key);
    if (counted === undefined) {
      windows.set(key, { count: 1 });
      return max >= 1 ? undefined : windowMs;
    }
    counted.count++;
    return counted.count <= max ? undefined : Math.max(1, windows.expiresAt(key) - Date.now());
  };
}
