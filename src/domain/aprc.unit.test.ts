import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  aprcPercent,
  expandCashFlows,
  recurringAprcPercent,
  roundedAprcPercent,
  roundedRecurringAprcPercent,
  roundHalfUp,
  type CashFlow,
  type RecurringCashFlow,
} from './aprc.ts';
import { frenchSchedule } from './amortization.ts';
import { annualRateFromUnits, type AnnualRate } from './annual-rate.ts';

type JsonFlow = { amount: number; t_years: number } | { amount: number; count: number; first_t_years: number; step_years: number };
type Vector = {
  id: string;
  kind: string;
  flows: JsonFlow[];
  expected_aprc_pct: number;
  expected_aprc_pct_1dp: number;
  expected_aprc_pct_2dp: number;
};

const { vectors } = JSON.parse(readFileSync(new URL('../../test/fixtures/aprc.json', import.meta.url), 'utf8')) as { vectors: Vector[] };

function fromJson(flow: JsonFlow): CashFlow | RecurringCashFlow {
  return 'count' in flow
    ? { amount: flow.amount, count: flow.count, firstTYears: flow.first_t_years, stepYears: flow.step_years }
    : { amount: flow.amount, tYears: flow.t_years };
}

/** A monthly loan's flows in cents: the drawdown, then every installment of its cent-rounded schedule. */
function loanFlows(principalCents: number, annualRate: AnnualRate, years: number, shiftCents = 0): CashFlow[] {
  const { rows } = frenchSchedule({ principalCents, annualRate, periods: 12 * years });
  return [{ amount: principalCents, tYears: 0 }, ...rows.map((row) => ({ amount: -(row.installmentCents + shiftCents), tYears: row.period / 12 }))];
}

describe('APRC vectors (test/fixtures/aprc.json)', () => {
  for (const vector of vectors) {
    it(`${vector.id} (${vector.kind})`, () => {
      const flows = expandCashFlows(vector.flows.map(fromJson));
      const aprc = aprcPercent(flows);
      assert.ok(Math.abs(aprc - vector.expected_aprc_pct) <= 1e-4, `${aprc} vs ${vector.expected_aprc_pct}`);
      assert.equal(roundedAprcPercent(flows), vector.expected_aprc_pct_2dp);
      assert.equal(roundHalfUp(aprc, 1), vector.expected_aprc_pct_1dp);
    });
  }

  it('gives the same rate in cents as in euros', () => {
    const euros = expandCashFlows(vectors.find((v) => v.id === 'EU-CALC-IT-200k-2.5-30y-fees')!.flows.map(fromJson));
    const cents = euros.map((flow) => ({ ...flow, amount: Math.round(flow.amount * 100) }));
    assert.ok(Math.abs(aprcPercent(cents) - aprcPercent(euros)) < 1e-9);
  });
});

describe('expandCashFlows', () => {
  it('repeats a recurring flow count times, step apart, and keeps single ones', () => {
    assert.deepEqual(
      expandCashFlows([
        { amount: 1000, tYears: 0 },
        { amount: -600, count: 3, firstTYears: 1, stepYears: 0.5 },
      ]),
      [
        { amount: 1000, tYears: 0 },
        { amount: -600, tYears: 1 },
        { amount: -600, tYears: 1.5 },
        { amount: -600, tYears: 2 },
      ],
    );
    assert.deepEqual(expandCashFlows([{ amount: -1, count: 0, firstTYears: 0, stepYears: 1 }]), []);
  });
});

describe('aprcPercent', () => {
  it('is the rate itself for a single repayment after a whole year', () => {
    assert.ok(
      Math.abs(
        aprcPercent([
          { amount: 1000, tYears: 0 },
          { amount: -1050, tYears: 1 },
        ]) - 5,
      ) < 1e-10,
    );
  });

  it('is 0 when exactly the amount lent is repaid, and negative when less is', () => {
    assert.ok(
      Math.abs(
        aprcPercent([
          { amount: 1000, tYears: 0 },
          { amount: -1000, tYears: 2 },
        ]),
      ) < 1e-12,
    );
    assert.ok(
      Math.abs(
        aprcPercent([
          { amount: 1000, tYears: 0 },
          { amount: -900, tYears: 1 },
        ]) + 10,
      ) < 1e-10,
    );
  });

  it('finds rates far beyond any real loan', () => {
    // 1 lent, 100 repaid a month later: (1 + X)^(1/12) = 100.
    const aprc = aprcPercent([
      { amount: 1, tYears: 0 },
      { amount: -100, tYears: 1 / 12 },
    ]);
    assert.ok(Math.abs(aprc / 100 + 1 - 100 ** 12) / 100 ** 12 < 1e-9);
  });

  it('refuses flows that have no rate', () => {
    assert.throws(() => aprcPercent([]), RangeError);
    assert.throws(() => aprcPercent([{ amount: 1000, tYears: 0 }]), RangeError); // nothing repaid
    assert.throws(
      () =>
        aprcPercent([
          { amount: 1000, tYears: 0 },
          { amount: 500, tYears: 1 },
        ]),
      RangeError,
    );
    assert.throws(
      () =>
        aprcPercent([
          { amount: 100, tYears: 0 },
          { amount: -200, tYears: 0 },
          { amount: -1, tYears: 1 },
        ]),
      RangeError,
    );
    assert.throws(
      () =>
        aprcPercent([
          { amount: Number.NaN, tYears: 0 },
          { amount: -1, tYears: 1 },
        ]),
      RangeError,
    );
    assert.throws(
      () =>
        aprcPercent([
          { amount: 1, tYears: -1 },
          { amount: -1, tYears: 1 },
        ]),
      RangeError,
    );
  });

  const loanArb = fc.record({
    principalCents: fc.integer({ min: 100_000, max: 10_000_000_000 }), // 1,000 € .. 100,000,000 €
    annualRate: fc.integer({ min: 0, max: 200_000 }).map((units) => annualRateFromUnits(units, 4)), // 0 % .. 20 %, to the 0.0001 %
    years: fc.integer({ min: 1, max: 40 }),
  });

  it('without fees is (1 + r/12)^12 - 1, up to the half cent each installment was rounded by', () => {
    fc.assert(
      fc.property(loanArb, ({ principalCents, annualRate, years }) => {
        const effective = ((1 + Number(annualRate) / 1_200) ** 12 - 1) * 100;
        // The schedule repays the loan at exactly r once each installment is corrected by its
        // interest's rounding, under half a cent; shifting every installment by that brackets the rate.
        const low = aprcPercent(loanFlows(principalCents, annualRate, years, -0.5));
        const high = aprcPercent(loanFlows(principalCents, annualRate, years, 0.5));
        assert.ok(low - 1e-9 <= effective && effective <= high + 1e-9, `${low} <= ${effective} <= ${high}`);
        const aprc = aprcPercent(loanFlows(principalCents, annualRate, years));
        assert.ok(low - 1e-9 <= aprc && aprc <= high + 1e-9);
      }),
    );
  });

  it('never falls when a fee is added, whenever it is paid', () => {
    fc.assert(
      fc.property(loanArb, fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (loan, feeShare, when) => {
        const flows = loanFlows(loan.principalCents, loan.annualRate, loan.years);
        // Any positive fee up to half the loan (a bigger one at drawdown could leave the consumer nothing lent).
        const fee = Math.max(1, Math.floor((feeShare * loan.principalCents) / 2));
        const tYears = Math.round(when * 12 * loan.years) / 12;
        const withFee = [...flows, { amount: -fee, tYears }];
        // 1e-9 of a percentage point is the solver's noise, far below any fee of a cent.
        assert.ok(aprcPercent(withFee) >= aprcPercent(flows) - 1e-9);
      }),
    );
  });
});

describe('roundHalfUp', () => {
  it('rounds halves up, ignoring float noise just under a half', () => {
    assert.equal(roundHalfUp(2.525), 2.53);
    assert.equal(roundHalfUp(1.005), 1.01); // 1.00499999999999989... in binary
    assert.equal(roundHalfUp(2.524999), 2.52);
    assert.equal(roundHalfUp(12.962038), 12.96);
    assert.equal(roundHalfUp(2.53), 2.53);
    assert.equal(roundHalfUp(12.96, 1), 13);
    assert.equal(roundHalfUp(-0.125), -0.12);
  });
});

describe('recurringAprcPercent', () => {
  it('matches aprcPercent on the expanded vectors, with or without a guess', () => {
    for (const vector of vectors) {
      const flows = vector.flows.map(fromJson);
      const expected = aprcPercent(expandCashFlows(flows));
      for (const guess of [undefined, 0, 3, 50, -50]) {
        const aprc = recurringAprcPercent(flows, guess);
        assert.ok(Math.abs(aprc - expected) <= 1e-9, `${vector.id} guess ${guess}: ${aprc} vs ${expected}`);
        assert.equal(roundedRecurringAprcPercent(flows, guess), vector.expected_aprc_pct_2dp);
      }
    }
  });

  // A loan as simulate sees it: net drawdown at 0, an annual fee each year from 0, n - 1 equal installments and a last one.
  const loanShaped = fc
    .record({
      principalCents: fc.integer({ min: 100, max: 10_000_000_000 }),
      annualRateBps: fc.integer({ min: 0, max: 2_000 }),
      years: fc.integer({ min: 1, max: 40 }),
      upfrontShare: fc.double({ min: 0, max: 0.49, noNaN: true }),
      annualShare: fc.double({ min: 0, max: 0.49, noNaN: true }),
      perInstallment: fc.integer({ min: 0, max: 100_000 }),
      lastShift: fc.integer({ min: -100, max: 100 }),
    })
    .map(({ principalCents, annualRateBps, years, upfrontShare, annualShare, perInstallment, lastShift }) => {
      const n = 12 * years;
      // Never below principal / n: a loan repays at least what it lent (a tiny loan over a long
      // term would otherwise round to installments of 0, for which no APRC exists).
      const installment = Math.max(Math.ceil(principalCents / n), Math.round((principalCents / n) * (1 + (annualRateBps / 120_000) * (n / 2))));
      const flows: (CashFlow | RecurringCashFlow)[] = [
        { amount: principalCents - Math.floor(upfrontShare * principalCents), tYears: 0 },
        { amount: -Math.floor(annualShare * principalCents), count: years, firstTYears: 0, stepYears: 1 },
        { amount: -(installment + perInstallment), count: n - 1, firstTYears: 1 / 12, stepYears: 1 / 12 },
        { amount: -(Math.max(0, installment + lastShift) + perInstallment), tYears: years },
      ];
      return { flows, guess: annualRateBps / 100 };
    });

  it('matches aprcPercent on the expanded flows of any loan, to 1e-9 of a percentage point', () => {
    fc.assert(
      fc.property(loanShaped, ({ flows, guess }) => {
        const expected = aprcPercent(expandCashFlows(flows).filter((flow) => flow.amount !== 0));
        const withGuess = recurringAprcPercent(flows, guess);
        const withoutGuess = recurringAprcPercent(flows);
        assert.ok(Math.abs(withGuess - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${withGuess} vs ${expected}`);
        assert.ok(Math.abs(withoutGuess - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${withoutGuess} vs ${expected}`);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses what aprcPercent refuses', () => {
    assert.throws(() => recurringAprcPercent([]), RangeError);
    assert.throws(
      () =>
        recurringAprcPercent(
          [
            { amount: 1000, tYears: 0 },
            { amount: -1, count: 0, firstTYears: 1, stepYears: 1 },
          ],
          5,
        ),
      RangeError,
    );
    assert.throws(
      () =>
        recurringAprcPercent(
          [
            { amount: 100, tYears: 0 },
            { amount: -200, tYears: 0 },
            { amount: -1, tYears: 1 },
          ],
          5,
        ),
      RangeError,
    );
    assert.throws(
      () =>
        recurringAprcPercent([
          { amount: Number.NaN, tYears: 0 },
          { amount: -1, tYears: 1 },
        ]),
      RangeError,
    );
    assert.throws(
      () =>
        recurringAprcPercent([
          { amount: 1, tYears: -1 },
          { amount: -1, tYears: 1 },
        ]),
      RangeError,
    );
  });
});
