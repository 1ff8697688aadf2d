import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { clientKey, rateLimiter } from './rate-limit.ts';

describe('rateLimiter', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it('admits max requests a window, then says how long until the window ends', () => {
    const limit = rateLimiter({ max: 3, windowMs: 60_000 });
    assert.deepEqual([limit('203.0.113.9'), limit('203.0.113.9'), limit('203.0.113.9')], [undefined, undefined, undefined]);
    mock.timers.tick(20_000);
    assert.equal(limit('203.0.113.9'), 40_000);
    assert.equal(limit('203.0.113.10'), undefined, 'another client has its own window');
    mock.timers.tick(40_000);
    assert.equal(limit('203.0.113.9'), undefined, 'a new window');
  });

  it('counts like a fixed window per client, for any sequence of requests', () => {
    const request = fc.record({
      client: fc.constantFrom('198.51.100.1', '198.51.100.2', '2001:db8::1', '2001:db8::2'),
      afterMs: fc.integer({ min: 0, max: 400 }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(request, { maxLength: 80 }), (max, requests) => {
        mock.timers.reset();
        mock.timers.enable({ apis: ['Date'], now: 0 });
        const windowMs = 1_000;
        const limit = rateLimiter({ max, windowMs });
        // The model: a window starts at a client's first request after the last one ended.
        const windows = new Map<string, { startedAt: number; count: number }>();
        let now = 0;
        for (const { client, afterMs } of requests) {
          mock.timers.tick(afterMs);
          now += afterMs;
          const key = clientKey(client);
          let window = windows.get(key);
          if (window === undefined || now >= window.startedAt + windowMs) windows.set(key, (window = { startedAt: now, count: 0 }));
          window.count++;
          const expected = window.count <= max ? undefined : window.startedAt + windowMs - now;
          assert.equal(limit(client), expected);
        }
      }),
    );
  });
});

describe('clientKey', () => {
  it('counts an IPv4 address as itself, and an IPv4-mapped IPv6 address as the IPv4 one', () => {
    assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  });

  it('counts IPv6 clients by their /64', () => {
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'));
    assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'));
    assert.equal(clientKey('fe80::1%eth0'), clientKey('fe80::2'));
  });
});
