import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { basisPointsToPercent, centsToEuros, eurosToCents, percentToBasisPoints } from './money.ts';

// Any decimal with at most 15 significant digits survives number -> shortest string unchanged,
// so c / 100 is guaranteed to print back as c's two-decimal form only below 10^15.
const ROUND_TRIP_LIMIT = 10 ** 15 - 1;

const scaledArb = fc.integer({ min: -ROUND_TRIP_LIMIT, max: ROUND_TRIP_LIMIT });

// A value with three to six decimals whose last decimal is non-zero, so it cannot be written with two.
const tooPreciseArb = fc
  .record({
    whole: fc.integer({ min: -1_000_000, max: 1_000_000 }),
    decimals: fc.integer({ min: 3, max: 6 }),
    fraction: fc.integer({ min: 0, max: 99_999 }),
    lastDigit: fc.integer({ min: 1, max: 9 }),
  })
  .map(({ whole, decimals, fraction, lastDigit }) => {
    const digits = String(fraction % 10 ** (decimals - 1)).padStart(decimals - 1, '0') + String(lastDigit);
    return Number(`${whole < 0 ? '-' : ''}${Math.abs(whole)}.${digits}`);
  });

const conversions = [
  { name: 'eurosToCents', toInt: eurosToCents, fromInt: centsToEuros },
  { name: 'percentToBasisPoints', toInt: percentToBasisPoints, fromInt: basisPointsToPercent },
] as const;

for (const { name, toInt, fromInt } of conversions) {
  describe(name, () => {
    it('converts examples exactly', () => {
      assert.equal(toInt(1234.56), 123456);
      assert.equal(toInt(2.5), 250);
      assert.equal(toInt(0.29), 29);
      assert.equal(toInt(1.1), 110);
      assert.equal(toInt(100), 10000);
      assert.equal(toInt(0), 0);
      assert.equal(toInt(0.01), 1);
      assert.equal(toInt(-12.34), -1234);
      assert.equal(toInt(-0.05), -5);
    });

    it('treats negative zero as 0', () => {
      assert.ok(Object.is(toInt(-0), 0));
    });

    it('rejects more than two decimals', () => {
      assert.equal(toInt(1.001), null);
      assert.equal(toInt(0.125), null);
      assert.equal(toInt(1.005), null);
      assert.equal(toInt(-0.001), null);
    });

    it('rejects non-finite values and exponent notation', () => {
      assert.equal(toInt(Number.NaN), null);
      assert.equal(toInt(Number.POSITIVE_INFINITY), null);
      assert.equal(toInt(Number.NEGATIVE_INFINITY), null);
      assert.equal(toInt(1e-7), null);
      assert.equal(toInt(1e21), null);
      assert.equal(toInt(Number.MAX_VALUE), null);
    });

    it('rejects results beyond Number.MAX_SAFE_INTEGER', () => {
      assert.equal(toInt(90071992547409.75), 9007199254740975);
      assert.equal(toInt(90071992547410), null);
      assert.equal(toInt(-90071992547410), null);
      assert.equal(toInt(Number.MAX_SAFE_INTEGER), null);
    });

    it('round-trips c / 100 back to c', () => {
      fc.assert(
        fc.property(scaledArb, (c) => {
          assert.equal(toInt(c / 100), c === 0 ? 0 : c);
          assert.equal(toInt(fromInt(c)), c === 0 ? 0 : c);
        }),
      );
    });

    it('gives null for three or more decimals', () => {
      fc.assert(
        fc.property(tooPreciseArb, (n) => {
          assert.equal(toInt(n), null);
        }),
      );
    });
  });
}

describe('inverse conversions', () => {
  it('centsToEuros and basisPointsToPercent divide by 100', () => {
    assert.equal(centsToEuros(123456), 1234.56);
    assert.equal(centsToEuros(-5), -0.05);
    assert.equal(basisPointsToPercent(250), 2.5);
    assert.equal(basisPointsToPercent(1), 0.01);
  });
});
