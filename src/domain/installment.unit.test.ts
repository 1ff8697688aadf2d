import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { monthlyInstallmentCents } from './installment.ts';

const amountArb = fc.integer({ min: 1, max: 500_000_000 }); // up to 5 million euros
const rateArb = fc.integer({ min: 0, max: 2_000 }); // 0 % .. 20 %
const termArb = fc.integer({ min: 1, max: 40 });

describe('monthlyInstallmentCents', () => {
  it('matches known French amortization values', () => {
    assert.equal(monthlyInstallmentCents(10_000_000, 300, 20), 55_460); // 100,000 € at 3.00 % over 20 years (554.5976 €)
    assert.equal(monthlyInstallmentCents(20_000_000, 250, 25), 89_723); // 200,000 € at 2.50 % over 25 years (897.2335 €)
    assert.equal(monthlyInstallmentCents(25_000_000, 345, 40), 96_099); // 250,000 € at 3.45 % over 40 years (960.9949 €)
  });

  it('divides evenly at rate 0, rounding half-up to the cent', () => {
    assert.equal(monthlyInstallmentCents(12_000_000, 0, 10), 100_000);
    assert.equal(monthlyInstallmentCents(150, 0, 1), 13); // 12.5 cents -> 13
    assert.equal(monthlyInstallmentCents(149, 0, 1), 12); // 12.416 cents -> 12
  });

  it('is 0 for a zero amount', () => {
    assert.equal(monthlyInstallmentCents(0, 300, 20), 0);
  });

  it('refuses amounts, rates and terms that are not non-negative integers', () => {
    assert.throws(() => monthlyInstallmentCents(100.5, 300, 20), RangeError);
    assert.throws(() => monthlyInstallmentCents(-1, 300, 20), RangeError);
    assert.throws(() => monthlyInstallmentCents(10_000, 2.5, 20), RangeError);
    assert.throws(() => monthlyInstallmentCents(10_000, -1, 20), RangeError);
    assert.throws(() => monthlyInstallmentCents(10_000, 300, 0), RangeError);
    assert.throws(() => monthlyInstallmentCents(10_000, 300, 1.5), RangeError);
  });

  it('repays at least the amount over the term, up to half a cent of rounding a month', () => {
    fc.assert(
      fc.property(amountArb, rateArb, termArb, (amount, bps, years) => {
        const months = 12 * years;
        const installment = monthlyInstallmentCents(amount, bps, years);
        // installment + 0.5 >= exact installment >= amount / months, doubled to stay in integers
        assert.ok(2 * installment * months + months >= 2 * amount);
      }),
    );
  });

  it('never falls as the rate rises', () => {
    fc.assert(
      fc.property(amountArb, rateArb, rateArb, termArb, (amount, bps1, bps2, years) => {
        const [low, high] = bps1 <= bps2 ? [bps1, bps2] : [bps2, bps1];
        assert.ok(monthlyInstallmentCents(amount, low, years) <= monthlyInstallmentCents(amount, high, years));
      }),
    );
  });

  it('never rises as the term gets longer', () => {
    fc.assert(
      fc.property(amountArb, rateArb, termArb, termArb, (amount, bps, years1, years2) => {
        const [short, long] = years1 <= years2 ? [years1, years2] : [years2, years1];
        assert.ok(monthlyInstallmentCents(amount, bps, long) <= monthlyInstallmentCents(amount, bps, short));
      }),
    );
  });

  it('agrees with the floating-point formula to within a cent', () => {
    fc.assert(
      fc.property(amountArb, rateArb, termArb, (amount, bps, years) => {
        const months = 12 * years;
        const r = bps / 120_000;
        const approximate = bps === 0 ? amount / months : (amount * r * (1 + r) ** months) / ((1 + r) ** months - 1);
        assert.ok(Math.abs(monthlyInstallmentCents(amount, bps, years) - approximate) <= 1);
      }),
    );
  });
});
