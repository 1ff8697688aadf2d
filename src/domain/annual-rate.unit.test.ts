import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  annualRateFromBasisPoints,
  annualRateFromPercent,
  annualRateFromUnits,
  annualRatePattern,
  annualRatePercent,
  annualRateProblem,
  annualRateRule,
  annualRateUnits,
  readAnnualRate,
  yearlyRateFraction,
} from './annual-rate.ts';

/** Every rate the rule allows: 0 to 20 % in steps of 0.0001 %. */
const allowedRateArb = fc.integer({ min: 0, max: 200_000 }).map((units) => annualRateFromUnits(units, 4));

/** A rate of 5 or 6 decimals, the last one not zero: finer than the rule allows. */
const tooFineRateArb = fc
  .record({ units: fc.integer({ min: 0, max: 2_000_000 }), decimals: fc.constantFrom(5, 6), lastDigit: fc.integer({ min: 1, max: 9 }) })
  .map(({ units, decimals, lastDigit }) => annualRateFromUnits(units * 10 + lastDigit, decimals));

describe('annual rates', () => {
  it('reads a JSON number as the decimal it was written as, for every allowed rate', () => {
    fc.assert(
      fc.property(allowedRateArb, (rate) => {
        assert.equal(annualRateFromPercent(Number(rate)), rate);
        assert.equal(JSON.stringify(annualRatePercent(rate)), rate, 'and gives it back as the same JSON number');
        assert.equal(annualRateProblem(rate), undefined);
      }),
    );
    assert.equal(annualRateFromPercent(3.875), '3.875');
    assert.equal(annualRateFromPercent(3.875), '3.875');
    assert.equal(annualRateFromPercent(20), '20');
    assert.equal(annualRateFromPercent(0.0001), '0.0001');
    assert.equal(annualRateFromPercent(-0), '0');
  });

  it('refuses more than 4 decimals, more than 20 %, negatives and what is not a number', () => {
    fc.assert(fc.property(tooFineRateArb, (rate) => assert.equal(annualRateFromPercent(Number(rate)), null, rate)));
    for (const percent of [3.87501, 0.00001, 20.0001, 21, 100, -0.5, -3, Number.NaN, Number.POSITIVE_INFINITY, 1e-7, 1e21]) {
      assert.equal(annualRateFromPercent(percent), null, String(percent));
    }
  });

  it('names the problem with a rate in any form but the canonical one', () => {
    for (const text of ['2.50', '02.5', '2.', '.5', '+2', '-2', '2,5', '1e1', '', ' 2', '20.00001', '100']) {
      assert.equal(annualRateProblem(text), annualRateRule, JSON.stringify(text));
    }
    assert.match(annualRateRule, /at most 4 decimals/);
  });

  it('reads the rate an old event stored in basis points as the same rate', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), (bps) => {
        const rate = annualRateFromBasisPoints(bps);
        assert.match(rate, new RegExp(annualRatePattern));
        assert.equal(annualRatePercent(rate), bps / 100, 'the percentage the API showed for it');
        assert.equal(annualRateUnits(rate, 2), bps);
      }),
    );
    assert.deepEqual([0, 5, 250, 300, 345, 2_000].map(annualRateFromBasisPoints), ['0', '0.05', '2.5', '3', '3.45', '20']);
    assert.throws(() => annualRateFromBasisPoints(2.5), RangeError);
    assert.throws(() => annualRateFromBasisPoints(-1), RangeError);
  });

  it('counts a rate in any finer unit and back, and refuses a coarser one', () => {
    fc.assert(
      fc.property(allowedRateArb, fc.integer({ min: 4, max: 9 }), (rate, decimals) => {
        assert.equal(annualRateFromUnits(annualRateUnits(rate, decimals), decimals), rate);
      }),
    );
    assert.equal(annualRateUnits('3.875', 6), 3_875_000);
    assert.throws(() => annualRateUnits('3.875', 2), RangeError);
    assert.throws(() => annualRateUnits('3.50', 6), RangeError, 'not canonical');
  });

  it('is an exact fraction of the principal a year', () => {
    assert.deepEqual(yearlyRateFraction('3.875'), { numerator: 3875, denominator: 100_000 });
    assert.deepEqual(yearlyRateFraction('3'), { numerator: 3, denominator: 100 });
    assert.deepEqual(yearlyRateFraction('0'), { numerator: 0, denominator: 100 });
    fc.assert(
      fc.property(allowedRateArb, (rate) => {
        const { numerator, denominator } = yearlyRateFraction(rate);
        // numerator / denominator = units (at 4 decimals) / 10^6
        assert.equal(BigInt(numerator) * 1_000_000n, BigInt(annualRateUnits(rate, 4)) * BigInt(denominator));
      }),
    );
  });

  it('reads a rate as it is typed in a page, with a comma or a dot', () => {
    const read = (text: string) => readAnnualRate(text);
    assert.deepEqual(read('3,875'), { rate: '3.875' });
    assert.deepEqual(read('3.875'), { rate: '3.875' });
    assert.deepEqual(read(' 3,875 % '), { rate: '3.875' });
    assert.deepEqual(read('03,50'), { rate: '3.5' });
    assert.deepEqual(read('0'), { rate: '0' });
    assert.deepEqual(read('2,0000'), { rate: '2' });
    for (const text of ['3,87501', '20,5', '21']) assert.deepEqual(read(text), { problem: annualRateRule }, text);
    for (const text of ['', 'abc', '-1', '3,', ',5', '1.000,5', '3 875', '3,8,7']) assert.ok('problem' in read(text), text);
    fc.assert(
      fc.property(allowedRateArb, fc.boolean(), (rate, comma) => {
        assert.deepEqual(read(comma ? rate.replace('.', ',') : rate), { rate });
      }),
    );
  });
});
