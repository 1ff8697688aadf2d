import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  frenchSchedule,
  installmentCents,
  installmentExactCents,
  scheduleTotals,
  totalInterestExactCents,
  type AmortizationLoan,
  type Rational,
} from './amortization.ts';
import { annualRateFromBasisPoints, annualRateFromUnits, yearlyRateFraction } from './annual-rate.ts';
import { eurosToCents } from './money.ts';

type Vector = {
  id: string;
  principal: number;
  annualRatePct: string;
  years: number;
  periodsPerYear: number;
  n: number;
  installmentExact: string;
  installmentRounded: string;
  totalInterestExact: string;
  totalInterestIfEveryInstallmentIsRounded: string;
  schedule_centRounded: { totalInterest: string; finalInstallment: string; residual: string };
};

const { vectors } = JSON.parse(readFileSync(new URL('../../test/fixtures/amortization.json', import.meta.url), 'utf8')) as {
  vectors: Vector[];
};

/** "554.60" or "500" (euros) -> cents; the vectors write whole amounts both ways. */
function cents(euros: string): number {
  const value = eurosToCents(Number(euros));
  assert.notEqual(value, null, `${euros} is not a whole number of cents`);
  return value!;
}

/** A decimal string in euros as an exact fraction of cents. */
function decimalCents(euros: string): Rational {
  const [whole = '', fraction = ''] = euros.split('.');
  return { numerator: BigInt(whole + fraction) * 100n, denominator: 10n ** BigInt(fraction.length) };
}

/** Whether an exact amount of cents, printed in euros to as many decimals as `written` has, prints as `written`. */
function agreesWithDecimal(exact: Rational, written: string): boolean {
  const shown = decimalCents(written);
  // |exact - shown| <= half a unit of the last written digit, which is 100 / shown.denominator cents.
  const difference = exact.numerator * shown.denominator - shown.numerator * exact.denominator;
  const halfUnit = 50n * exact.denominator;
  return (difference < 0n ? -difference : difference) <= halfUnit;
}

function loanOf(vector: Vector): AmortizationLoan {
  return {
    principalCents: cents(String(vector.principal)),
    annualRate: vector.annualRatePct,
    periods: vector.n,
    periodsPerYear: vector.periodsPerYear,
  };
}

const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);

describe('amortization vectors (test/fixtures/amortization.json)', () => {
  for (const vector of vectors) {
    it(`${vector.id}: ${vector.principal} € at ${vector.annualRatePct} % over ${vector.n} periods (${vector.periodsPerYear} a year)`, () => {
      const loan = loanOf(vector);
      assert.equal(vector.n, vector.years * vector.periodsPerYear);
      assert.ok(agreesWithDecimal(installmentExactCents(loan), vector.installmentExact), 'installmentExact');
      assert.ok(agreesWithDecimal(totalInterestExactCents(loan), vector.totalInterestExact), 'totalInterestExact');
      assert.equal(installmentCents(loan), cents(vector.installmentRounded));
      assert.equal(vector.n * installmentCents(loan) - loan.principalCents, cents(vector.totalInterestIfEveryInstallmentIsRounded));

      const schedule = frenchSchedule(loan);
      assert.equal(schedule.rows.length, vector.n);
      assert.equal(schedule.installmentCents, cents(vector.installmentRounded));
      assert.equal(schedule.totalInterestCents, cents(vector.schedule_centRounded.totalInterest));
      assert.equal(schedule.finalInstallmentCents, cents(vector.schedule_centRounded.finalInstallment));
      assert.equal(schedule.rows.at(-1)!.balanceCents, cents(vector.schedule_centRounded.residual));
    });
  }

  it('A02 rounds its half-cent tie up (84487.35, not 84487.33)', () => {
    const schedule = frenchSchedule({ principalCents: 20_000_000, annualRate: '2.5', periods: 360 });
    assert.equal(schedule.totalInterestCents, 8_448_735);
    // The tie itself: some balance * 1/480 ends in exactly half a cent.
    const balancesBefore = [20_000_000, ...schedule.rows.slice(0, -1).map((row) => row.balanceCents)];
    assert.ok(balancesBefore.some((balance) => balance % 480 === 240));
  });
});

/** Rates of 0 to 20 %: in basis points (as published until rates had finer decimals), or to the 0.0001 %. */
const rateArb = fc.oneof(
  fc.integer({ min: 0, max: 2_000 }).map(annualRateFromBasisPoints),
  fc.integer({ min: 0, max: 200_000 }).map((units) => annualRateFromUnits(units, 4)),
);
const percentOf = (rate: string) => Number(rate);

describe('installmentCents', () => {
  it('matches known French amortization values, at rates of any precision', () => {
    const monthly = (principalCents: number, annualRate: string, years: number) => installmentCents({ principalCents, annualRate, periods: 12 * years });
    assert.equal(monthly(10_000_000, '3', 20), 55_460); // 554.5976 €
    assert.equal(monthly(20_000_000, '2.5', 25), 89_723); // 897.2335 €
    assert.equal(monthly(25_000_000, '3.45', 40), 96_099); // 960.9949 €
    // 200,000 € over 25 years: 3.875 % lies between 3.87 % and 3.88 %, exactly where the exact fractions put it.
    assert.equal(monthly(20_000_000, '3.87', 25), 104_137); // 1041.3707 €
    assert.equal(monthly(20_000_000, '3.875', 25), 104_192); // 1041.9188 €
    assert.equal(monthly(20_000_000, '3.88', 25), 104_247); // 1042.4671 €
    assert.equal(monthly(10_000_000, '2.0001', 20), 50_589); // 505.8881 €
  });

  it('never falls as the rate rises, however fine the step', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500_000_000 }), rateArb, rateArb, fc.integer({ min: 1, max: 40 }), (principalCents, one, other, years) => {
        const [low, high] = percentOf(one) <= percentOf(other) ? [one, other] : [other, one];
        const periods = 12 * years;
        assert.ok(installmentCents({ principalCents, annualRate: low, periods }) <= installmentCents({ principalCents, annualRate: high, periods }));
      }),
    );
  });

  it('agrees with the floating-point formula to within a cent', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500_000_000 }), rateArb, fc.integer({ min: 1, max: 40 }), (principalCents, annualRate, years) => {
        const months = 12 * years;
        const r = percentOf(annualRate) / 1_200;
        const approximate = r === 0 ? principalCents / months : (principalCents * r * (1 + r) ** months) / ((1 + r) ** months - 1);
        assert.ok(Math.abs(installmentCents({ principalCents, annualRate, periods: months }) - approximate) <= 1);
      }),
    );
  });

  it('refuses what is not a non-negative integer (periods at least 1), and a rate not in canonical decimal form', () => {
    const loan = { principalCents: 10_000, annualRate: '3', periods: 12 };
    assert.throws(() => installmentCents({ ...loan, principalCents: 1.5 }), RangeError);
    assert.throws(() => installmentCents({ ...loan, principalCents: -1 }), RangeError);
    assert.throws(() => installmentCents({ ...loan, annualRate: '3.0' }), RangeError);
    assert.throws(() => installmentCents({ ...loan, annualRate: '-3' }), RangeError);
    assert.throws(() => installmentCents({ ...loan, periods: 0 }), RangeError);
    assert.throws(() => installmentCents({ ...loan, periodsPerYear: 0 }), RangeError);
    assert.throws(() => frenchSchedule({ ...loan, periods: Number.NaN }), RangeError);
  });
});

describe('frenchSchedule', () => {
  it('at rate 0 divides evenly and lets the last installment absorb the rounding', () => {
    const schedule = frenchSchedule({ principalCents: 10_000_000, annualRate: '0', periods: 360 });
    assert.equal(schedule.installmentCents, 27_778);
    assert.equal(schedule.totalInterestCents, 0);
    assert.equal(schedule.finalInstallmentCents, 27_698);
  });

  it('ends early rather than go below zero when the rounded-up installment overpays a tiny loan', () => {
    // 3 € over 480 months at 0 %: 0.625 cents rounds to 1 cent, which clears the loan at month 300.
    const schedule = frenchSchedule({ principalCents: 300, annualRate: '0', periods: 480 });
    assert.equal(schedule.installmentCents, 1);
    assert.equal(schedule.rows.length, 300);
    assert.ok(schedule.rows.every((row) => row.installmentCents === 1 && row.balanceCents >= 0));
    assert.equal(schedule.rows.at(-1)!.balanceCents, 0);
  });

  const loanArb = fc.record({
    principalCents: fc.integer({ min: 100, max: 10_000_000_000 }), // 1 € .. 100,000,000.00 €
    annualRate: rateArb,
    years: fc.integer({ min: 1, max: 40 }),
    periodsPerYear: fc.constantFrom(12, 4, 2, 1),
  });
  type Generated = { principalCents: number; annualRate: string; years: number; periodsPerYear: number };
  const toLoan = ({ principalCents, annualRate, years, periodsPerYear }: Generated): AmortizationLoan => ({
    principalCents,
    annualRate,
    periods: years * periodsPerYear,
    periodsPerYear,
  });

  it('repays the loan exactly, row by row, without ever owing less than nothing', () => {
    fc.assert(
      fc.property(loanArb, (generated) => {
        const loan: AmortizationLoan = toLoan(generated);
        const schedule = frenchSchedule(loan);
        const { rows } = schedule;
        assert.ok(rows.length >= 1 && rows.length <= loan.periods);
        assert.equal(sum(rows.map((row) => row.principalCents)), loan.principalCents);
        assert.equal(rows.at(-1)!.balanceCents, 0);
        assert.equal(schedule.finalInstallmentCents, rows.at(-1)!.installmentCents);
        assert.equal(schedule.totalInterestCents, sum(rows.map((row) => row.interestCents)));
        let previousBalance = loan.principalCents;
        for (const [i, row] of rows.entries()) {
          assert.equal(row.period, i + 1);
          assert.equal(row.installmentCents, row.interestCents + row.principalCents);
          assert.equal(row.balanceCents, previousBalance - row.principalCents);
          assert.ok(row.balanceCents >= 0 && row.interestCents >= 0 && row.principalCents >= 0);
          if (i < rows.length - 1) assert.equal(row.installmentCents, schedule.installmentCents);
          previousBalance = row.balanceCents;
        }
      }),
    );
  });

  it('has all n rows whenever rounding cannot add up to a whole installment', () => {
    fc.assert(
      fc.property(loanArb, (generated) => {
        const loan = toLoan(generated);
        const r = percentOf(loan.annualRate) / 100 / generated.periodsPerYear;
        // Each period drifts from the exact schedule by at most a cent (half from the installment, half
        // from the interest), compounded at r; the exact schedule owes installment / (1 + r) before the end.
        const worstDrift = loan.periods * (1 + r) ** loan.periods;
        fc.pre(installmentCents(loan) / (1 + r) > worstDrift + 2);
        assert.equal(frenchSchedule(loan).rows.length, loan.periods);
      }),
    );
  });
});

describe('the fast paths agree with exact BigInt arithmetic', () => {
  /** The schedule as first written: BigInt throughout, the installment from the uncached exact fraction. */
  function referenceSchedule(loan: AmortizationLoan): { installment: number; interests: number[]; principals: number[] } {
    const ppy = BigInt(loan.periodsPerYear ?? 12);
    const rate = yearlyRateFraction(loan.annualRate);
    const b = BigInt(rate.denominator) * ppy;
    const q = BigInt(rate.numerator);
    const n = BigInt(loan.periods);
    const p = BigInt(loan.principalCents);
    const round = (num: bigint, den: bigint) => (2n * num + den) / (2n * den);
    const a = b + q;
    const installment = q === 0n ? round(p, n) : round(p * q * a ** n, b * (a ** n - b ** n));
    const interests: number[] = [];
    const principals: number[] = [];
    let balance = p;
    for (let period = 1n; period <= n; period++) {
      const interest = round(balance * q, b);
      const isLast = period === n || installment - interest >= balance;
      const paid = isLast ? balance : installment - interest;
      balance -= paid;
      interests.push(Number(interest));
      principals.push(Number(paid));
      if (isLast) break;
    }
    return { installment: Number(installment), interests, principals };
  }

  const anyLoan = fc.record({
    principalCents: fc.oneof(fc.integer({ min: 0, max: 10_000_000_000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    // Up to 20 % and, past the double bound, up to 2,000 %; to the basis point and to the 0.0001 %.
    annualRate: fc.oneof(
      fc.integer({ min: 0, max: 2_000 }).map(annualRateFromBasisPoints),
      fc.integer({ min: 0, max: 200_000 }).map(annualRateFromBasisPoints),
      fc.integer({ min: 0, max: 200_000 }).map((units) => annualRateFromUnits(units, 4)),
      fc.integer({ min: 0, max: 20_000_000 }).map((units) => annualRateFromUnits(units, 4)),
    ),
    periods: fc.integer({ min: 1, max: 480 }),
    periodsPerYear: fc.constantFrom(12, 4, 2, 1, 52),
  });

  it('frenchSchedule and scheduleTotals match the BigInt schedule, inside and outside the double bound', () => {
    fc.assert(
      fc.property(anyLoan, (loan) => {
        const expected = referenceSchedule(loan);
        const schedule = frenchSchedule(loan);
        assert.equal(schedule.installmentCents, expected.installment);
        assert.deepEqual(
          schedule.rows.map((row) => row.interestCents),
          expected.interests,
        );
        assert.deepEqual(
          schedule.rows.map((row) => row.principalCents),
          expected.principals,
        );
        assert.deepEqual(scheduleTotals(loan), {
          installmentCents: schedule.installmentCents,
          installments: schedule.rows.length,
          totalInterestCents: schedule.totalInterestCents,
          finalInstallmentCents: schedule.finalInstallmentCents,
        });
      }),
      { numRuns: 300 },
    );
  });

  it('rounds an interest of exactly half a cent up, as the exact fraction does', () => {
    // With a rate of u units of 10^-decimals % (up to 20 %), u dividing D / 2 (D = 10^(decimals + 2) * periodsPerYear)
    // and P = (D / 2 + k D) / u, the first interest P * u / D is k + 1/2 cents exactly.
    const divisorsUpTo20Percent = new Map<string, number[]>();
    const halfCentLoan = fc
      .record({
        periodsPerYear: fc.constantFrom(12, 4, 1, 52),
        decimals: fc.constantFrom(2, 3, 4),
        k: fc.integer({ min: 0, max: 2_000_000 }),
        periods: fc.integer({ min: 1, max: 480 }),
        pick: fc.nat(),
      })
      .map(({ periodsPerYear, decimals, k, periods, pick }) => {
        const d = 10 ** (decimals + 2) * periodsPerYear;
        const key = `${d}/${decimals}`;
        if (!divisorsUpTo20Percent.has(key)) {
          divisorsUpTo20Percent.set(
            key,
            Array.from({ length: 20 * 10 ** decimals }, (_, i) => i + 1).filter((units) => (d / 2) % units === 0),
          );
        }
        const units = divisorsUpTo20Percent.get(key)![pick % divisorsUpTo20Percent.get(key)!.length]!;
        return { loan: { principalCents: (d / 2 + k * d) / units, annualRate: annualRateFromUnits(units, decimals), periods, periodsPerYear }, k };
      });
    fc.assert(
      fc.property(halfCentLoan, ({ loan, k }) => {
        const schedule = frenchSchedule(loan);
        assert.equal(schedule.rows[0]!.interestCents, k + 1);
        assert.deepEqual(
          schedule.rows.map((row) => row.interestCents),
          referenceSchedule(loan).interests,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('installmentCents rounds like the exact fraction, also for many distinct terms (cache eviction)', () => {
    fc.assert(
      fc.property(anyLoan, (loan) => {
        const { numerator, denominator } = installmentExactCents(loan);
        assert.equal(installmentCents(loan), Number((2n * numerator + denominator) / (2n * denominator)));
      }),
      { numRuns: 2_000 },
    );
  });

  it('decides exact half-cent installments with the fraction, not the double', () => {
    // At rate 0 the installment is P / n: 1.5 cents rounds to 2, 2.5 to 3, whatever the double says.
    assert.equal(installmentCents({ principalCents: 3, annualRate: '0', periods: 2 }), 2);
    assert.equal(installmentCents({ principalCents: 5, annualRate: '0', periods: 2 }), 3);
    // At 1 period the installment is P (1 + r): P = 2400 at r = 50 / 120000 = 1/2400 is 2401 exactly.
    assert.equal(installmentCents({ principalCents: 2_400, annualRate: '0.5', periods: 1 }), 2_401);
    // P * (1 + r) with r = 5000 / 10000 = 1/2, P odd: a half cent, rounded up.
    assert.equal(installmentCents({ principalCents: 3, annualRate: '50', periods: 1, periodsPerYear: 1 }), 5);
    assert.equal(installmentCents({ principalCents: 1_000_000_001, annualRate: '50', periods: 1, periodsPerYear: 1 }), 1_500_000_002);
    // r = 0.0001 % / 12 = 1/12,000,000: at P = 6,000,000 cents over 1 period, 6,000,000.5 exactly, rounded up.
    assert.equal(installmentCents({ principalCents: 6_000_000, annualRate: '0.0001', periods: 1 }), 6_000_001);
  });
});
