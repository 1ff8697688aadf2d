import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { basisPointsToPercent, centsToEuros, eurosToCents, formatItalianEuros, parseItalianEuros, percentToBasisPoints, readItalianEuros } from './money.ts';

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

describe('Italian amounts', () => {
  it('reads amounts written the Italian way', () => {
    assert.equal(parseItalianEuros('200.000'), 20_000_000);
    assert.equal(parseItalianEuros('200000'), 20_000_000);
    assert.equal(parseItalianEuros('3.200,50'), 320_050);
    assert.equal(parseItalianEuros('200000,5'), 20_000_050);
    assert.equal(parseItalianEuros('2.500,00'), 250_000);
    assert.equal(parseItalianEuros('300.000,00 EUR'), 30_000_000);
    assert.equal(parseItalianEuros('€ 1.234.567,8'), 123_456_780);
    assert.equal(parseItalianEuros('0,05'), 5);
    assert.equal(parseItalianEuros('  972,22 eur '), 97_222);
  });

  it('refuses what is not exactly one Italian amount', () => {
    for (const text of ['', 'EUR', '2,5,00', '2.50,00', '2.500,001', '-2.500,00', 'abc 2.500,00', '200 000', '200.000.', '.5', '1.000.000.000.000.000,00']) {
      assert.equal(parseItalianEuros(text), null, text);
    }
  });

  it('refuses, saying why, what could be read two ways', () => {
    // An English decimal point, or a thousands dot in the wrong place?
    for (const text of ['200000.50', '2.5', '1.5', '3.200.5']) assert.match(problemOf(text), /thousands with dots: write the cents after a comma/, text);
    // Two and a half euros to three decimals, or an English thousands comma?
    for (const text of ['2,500', '2,500.00', '1,000,000']) assert.match(problemOf(text), /at most two decimals after the comma/, text);
  });

  it('refuses every English decimal point, whatever the digits', () => {
    const english = fc.tuple(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 99 }), fc.boolean());
    fc.assert(
      fc.property(english, ([euros, cents, twoDigits]) => {
        const text = `${euros}.${twoDigits ? String(cents).padStart(2, '0') : String(cents % 10)}`;
        assert.equal(parseItalianEuros(text), null, text);
      }),
    );
  });

  it('reads back every amount written with or without thousands dots, cents or a currency', () => {
    const written = fc.record({
      cents: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      dots: fc.boolean(),
      zeroCentsWritten: fc.boolean(),
      currency: fc.constantFrom('', '€ ', ' €', ' EUR'),
    });
    fc.assert(
      fc.property(written, ({ cents, dots, zeroCentsWritten, currency }) => {
        const whole = String(Math.floor(cents / 100));
        const fraction = String(cents % 100).padStart(2, '0');
        const grouped = dots ? whole.replace(/\B(?=(\d{3})+$)/g, '.') : whole;
        const number = zeroCentsWritten || fraction !== '00' ? `${grouped},${fraction}` : grouped;
        const text = currency.startsWith('€ ') ? `${currency}${number}` : `${number}${currency}`;
        assert.equal(parseItalianEuros(text), cents, text);
        assert.equal(parseItalianEuros(formatItalianEuros(cents)), cents);
      }),
    );
  });
});

function problemOf(text: string): string {
  const read = readItalianEuros(text);
  assert.ok('problem' in read, `${text} was read as ${JSON.stringify(read)}`);
  return read.problem;
}
