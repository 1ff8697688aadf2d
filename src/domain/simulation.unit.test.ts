import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { frenchSchedule } from './amortization.ts';
import { annualRateFromBasisPoints, annualRateFromUnits, annualRateRule } from './annual-rate.ts';
import { aprcPercent, roundHalfUp } from './aprc.ts';
import { DomainError } from './errors.ts';
import { eurosToCents } from './money.ts';
import { defaultRateTable, type RateTable } from './rates.ts';
import { hundredthsOf, parseSimulationRequest, simulate, simulationCashFlows, type SimulationInput } from './simulation.ts';

type AprcVector = { id: string; expected_aprc_pct: number; expected_aprc_pct_2dp: number };
const { vectors } = JSON.parse(readFileSync(new URL('../../test/fixtures/aprc.json', import.meta.url), 'utf8')) as {
  vectors: AprcVector[];
};
const vector = (id: string) => vectors.find((v) => v.id === id)!;

function parsed(body: unknown): SimulationInput {
  const result = parseSimulationRequest(body);
  assert.ok(result.ok, JSON.stringify(result));
  return result.value;
}

/** Paths of the errors of a body that must be refused. */
function errorPaths(body: unknown): string[] {
  const result = parseSimulationRequest(body);
  assert.equal(result.ok, false, `accepted ${JSON.stringify(body)}`);
  return result.ok ? [] : result.errors.map((error) => error.path);
}

function thrownPaths(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof DomainError && error.kind === 'invalid', String(error));
    return error.errors.map((e) => e.path);
  }
  assert.fail('did not throw');
}

// The example of aprc.json: 200,000 € at 2.5 % over 30 years.
const italianLoan = { amount: 200_000, termYears: 30, annualRate: 2.5 };

describe('simulate', () => {
  it('reproduces EU-CALC-IT-200k-2.5-30y-fees (upfront 1800, 2 per installment, 100 a year)', () => {
    const input = parsed({ ...italianLoan, fees: { upfront: 1800, perInstallment: 2, annual: 100 } });
    const result = simulate(input, defaultRateTable);
    const expected = vector('EU-CALC-IT-200k-2.5-30y-fees');
    assert.equal(result.aprc, expected.expected_aprc_pct_2dp);
    assert.equal(result.annualRate, 2.5);
    assert.equal(result.installment, 790.24);
    assert.equal(result.totalInterest, 84_487.35);
    assert.equal(result.totalCost, 90_007.35); // 84,487.35 + 1,800 + 2 * 360 + 100 * 30
    assert.equal(result.schedule, undefined);
    // The vector pays 790.24 also in month 360; the schedule pays 791.19 there. Both round to the same APRC.
    const flows = simulationCashFlows(input, frenchSchedule({ principalCents: 20_000_000, annualRate: '2.5', periods: 360 }));
    assert.ok(Math.abs(aprcPercent(flows) - expected.expected_aprc_pct) < 1e-4);
  });

  it('reproduces EU-CALC-IT-200k-2.5-30y-nofees', () => {
    const result = simulate(parsed(italianLoan), defaultRateTable);
    const expected = vector('EU-CALC-IT-200k-2.5-30y-nofees');
    assert.equal(result.aprc, expected.expected_aprc_pct_2dp);
    assert.equal(result.totalCost, result.totalInterest);
  });

  it('lists the schedule in euros when asked', () => {
    const result = simulate(parsed({ ...italianLoan, schedule: true }), defaultRateTable);
    assert.equal(result.schedule?.length, 360);
    assert.deepEqual(result.schedule?.[0], { period: 1, installment: 790.24, interest: 416.67, principal: 373.57, balance: 199_626.43 });
    assert.deepEqual(result.schedule?.at(-1), { period: 360, installment: 791.19, interest: 1.64, principal: 789.55, balance: 0 });
  });

  it('takes the published fixed rate for the term and loan-to-value when no rate is given', () => {
    // 200,000 of 300,000 is 66.67 %: the 30-year band up to 80 %, 3.25 % + 0.20 %.
    const result = simulate(parsed({ amount: 200_000, termYears: 25, propertyValue: 300_000 }), defaultRateTable);
    assert.equal(result.annualRate, 3.45);
    // A rate that is given wins over the table.
    assert.equal(simulate(parsed({ amount: 200_000, termYears: 25, propertyValue: 300_000, annualRate: 1 }), defaultRateTable).annualRate, 1);
  });

  it('names termYears or propertyValue when no published band applies', () => {
    const table: RateTable = {
      publishedAt: '2026-11-01T00:00:00.000Z',
      bands: { fixed: [{ maxTermYears: 20, maxLtvBps: 8_000, annualRate: '3' }], variable: [] },
    };
    assert.deepEqual(
      thrownPaths(() => simulate(parsed({ amount: 100_000, termYears: 25, propertyValue: 200_000 }), table)),
      ['termYears'],
    );
    assert.deepEqual(
      thrownPaths(() => simulate(parsed({ amount: 190_000, termYears: 20, propertyValue: 200_000 }), table)),
      ['propertyValue'],
    );
  });

  it('refuses an input built by hand that breaks a rule', () => {
    const fees = { upfrontCents: 0, perInstallmentCents: 0, annualCents: 0 };
    const valid: SimulationInput = { amountCents: 100_000, termYears: 10, annualRate: '3', fees, schedule: false };
    assert.deepEqual(
      thrownPaths(() => simulate({ ...valid, termYears: 0 }, defaultRateTable)),
      ['termYears'],
    );
    assert.deepEqual(
      thrownPaths(() => simulate({ ...valid, annualRate: undefined }, defaultRateTable)),
      ['propertyValue'],
    );
    assert.deepEqual(
      thrownPaths(() => simulate({ ...valid, annualRate: '3.00001' }, defaultRateTable)),
      ['annualRate'],
    );
    assert.deepEqual(
      thrownPaths(() => simulate({ ...valid, fees: { ...fees, upfrontCents: 100_000 } }, defaultRateTable)),
      ['fees.upfront'],
    );
  });

  it('handles a zero rate', () => {
    const result = simulate(parsed({ amount: 12_000, termYears: 1, annualRate: 0, fees: { upfront: 100 } }), defaultRateTable);
    assert.equal(result.installment, 1000);
    assert.equal(result.totalInterest, 0);
    assert.equal(result.totalCost, 100);
    assert.equal(result.aprc, 1.56); // EU-CALC-zero-rate-fee
  });
});

describe('parseSimulationRequest', () => {
  it('reads euros to cents and the rate exactly as written, fees defaulting to 0', () => {
    assert.deepEqual(parsed({ amount: 150_000.5, termYears: 20, annualRate: 3.875 }), {
      amountCents: 15_000_050,
      termYears: 20,
      annualRate: '3.875',
      fees: { upfrontCents: 0, perInstallmentCents: 0, annualCents: 0 },
      schedule: false,
    });
    assert.deepEqual(parsed({ amount: 100, termYears: 1, propertyValue: 100, fees: { upfront: 0.01, perInstallment: 1.5, annual: 0 }, schedule: true }), {
      amountCents: 10_000,
      termYears: 1,
      propertyValueCents: 10_000,
      fees: { upfrontCents: 1, perInstallmentCents: 150, annualCents: 0 },
      schedule: true,
    });
  });

  const valid = { amount: 200_000, termYears: 25, annualRate: 2.5 };
  const cases: { name: string; body: unknown; paths: string[] }[] = [
    { name: 'amount missing', body: { termYears: 25, annualRate: 2.5 }, paths: ['amount'] },
    { name: 'amount a string', body: { ...valid, amount: '200000' }, paths: ['amount'] },
    { name: 'amount 0', body: { ...valid, amount: 0 }, paths: ['amount'] },
    { name: 'amount negative', body: { ...valid, amount: -1 }, paths: ['amount'] },
    { name: 'amount three decimals', body: { ...valid, amount: 1000.005 }, paths: ['amount'] },
    { name: 'amount over 100 million', body: { ...valid, amount: 100_000_000.01 }, paths: ['amount'] },
    { name: 'amount null', body: { ...valid, amount: null }, paths: ['amount'] },
    { name: 'termYears missing', body: { amount: 1000, annualRate: 2 }, paths: ['termYears'] },
    { name: 'termYears 0', body: { ...valid, termYears: 0 }, paths: ['termYears'] },
    { name: 'termYears 41', body: { ...valid, termYears: 41 }, paths: ['termYears'] },
    { name: 'termYears not whole', body: { ...valid, termYears: 2.5 }, paths: ['termYears'] },
    { name: 'termYears a string', body: { ...valid, termYears: '25' }, paths: ['termYears'] },
    { name: 'annualRate negative', body: { ...valid, annualRate: -0.01 }, paths: ['annualRate'] },
    { name: 'annualRate over 20', body: { ...valid, annualRate: 20.01 }, paths: ['annualRate'] },
    { name: 'annualRate five decimals', body: { ...valid, annualRate: 2.55551 }, paths: ['annualRate'] },
    { name: 'annualRate a boolean', body: { ...valid, annualRate: true }, paths: ['annualRate'] },
    { name: 'no annualRate and no propertyValue', body: { amount: 1000, termYears: 10 }, paths: ['propertyValue'] },
    { name: 'propertyValue 0', body: { ...valid, propertyValue: 0 }, paths: ['propertyValue'] },
    { name: 'propertyValue three decimals', body: { ...valid, propertyValue: 300_000.001 }, paths: ['propertyValue'] },
    { name: 'propertyValue an object', body: { amount: 1000, termYears: 10, propertyValue: {} }, paths: ['propertyValue'] },
    { name: 'loan over the property value', body: { ...valid, propertyValue: 199_999.99 }, paths: ['amount'] },
    { name: 'fees not an object', body: { ...valid, fees: [] }, paths: ['fees'] },
    { name: 'fees.upfront negative', body: { ...valid, fees: { upfront: -1 } }, paths: ['fees.upfront'] },
    { name: 'fees.upfront the whole loan', body: { ...valid, fees: { upfront: 200_000 } }, paths: ['fees.upfront'] },
    { name: 'fees.perInstallment three decimals', body: { ...valid, fees: { perInstallment: 1.234 } }, paths: ['fees.perInstallment'] },
    { name: 'fees.annual a string', body: { ...valid, fees: { annual: '100' } }, paths: ['fees.annual'] },
    { name: 'fees at drawdown eat the loan', body: { ...valid, fees: { upfront: 150_000, annual: 50_000 } }, paths: ['fees.annual'] },
    { name: 'unknown fee', body: { ...valid, fees: { notary: 1000 } }, paths: ['fees.notary'] },
    { name: 'schedule not a boolean', body: { ...valid, schedule: 'yes' }, paths: ['schedule'] },
    { name: 'unknown field', body: { ...valid, rateType: 'fixed' }, paths: ['rateType'] },
    { name: 'an array', body: [valid], paths: ['body'] },
    { name: 'null', body: null, paths: ['body'] },
    {
      name: 'several wrong fields at once',
      body: { amount: 0, termYears: 50, annualRate: 25, fees: { upfront: -1, perInstallment: 'x', annual: 0.001 }, schedule: 1, x: 1 },
      paths: ['x', 'amount', 'termYears', 'annualRate', 'fees.upfront', 'fees.perInstallment', 'fees.annual', 'schedule'],
    },
  ];
  for (const { name, body, paths } of cases) {
    it(`names the wrong field: ${name}`, () => assert.deepEqual(errorPaths(body), paths));
  }

  it('takes a rate of any allowed precision as it was written, and says what a finer one breaks', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200_000 }), (units) => {
        const rate = annualRateFromUnits(units, 4);
        assert.equal(parsed({ ...valid, annualRate: Number(rate) }).annualRate, rate);
        assert.equal(JSON.stringify(simulate(parsed({ ...valid, annualRate: Number(rate) }), defaultRateTable).annualRate), rate);
      }),
      { numRuns: 50 },
    );
    const refused = parseSimulationRequest({ ...valid, annualRate: 3.87501 });
    assert.deepEqual(refused.ok ? [] : refused.errors, [{ path: 'annualRate', message: annualRateRule }]);
  });

  it('does not ask for propertyValue when a wrong annualRate was given', () => {
    assert.deepEqual(errorPaths({ amount: 1000, termYears: 10, annualRate: 'low' }), ['annualRate']);
  });

  it('does not look at inherited properties', () => {
    const body = Object.create({ amount: 1000, termYears: 10, annualRate: 2 }) as object;
    assert.deepEqual(errorPaths(body), ['amount', 'termYears', 'propertyValue']);
  });

  it('never throws, and names at least one field when it refuses', () => {
    const check = (body: unknown) => {
      const result = parseSimulationRequest(body);
      if (!result.ok) assert.ok(result.errors.length > 0);
    };
    fc.assert(fc.property(fc.anything(), check));
    fc.assert(fc.property(fc.jsonValue(), check));
    // Near misses: the known fields, each with any JSON value or left out.
    const anyField = fc.option(fc.jsonValue(), { nil: undefined });
    const nearMiss = fc.record(
      {
        amount: anyField,
        termYears: anyField,
        annualRate: anyField,
        propertyValue: anyField,
        fees: fc.oneof(fc.record({ upfront: anyField, perInstallment: anyField, annual: anyField }, { requiredKeys: [] }), fc.jsonValue()),
        schedule: anyField,
      },
      { requiredKeys: [] },
    );
    fc.assert(fc.property(nearMiss, check));
  });
});

describe('simulate on any valid request', () => {
  const centsArb = (max: number) => fc.integer({ min: 0, max }).map((cents) => cents / 100);
  const requestArb = fc
    .record({
      amountCents: fc.integer({ min: 1, max: 10_000_000_000 }),
      termYears: fc.integer({ min: 1, max: 40 }),
      annualRate: fc.option(
        fc.integer({ min: 0, max: 200_000 }).map((units) => Number(annualRateFromUnits(units, 4))),
        { nil: undefined },
      ),
      extraValueCents: fc.option(fc.integer({ min: 0, max: 10_000_000_000 }), { nil: undefined }),
      upfrontShare: fc.double({ min: 0, max: 0.49, noNaN: true }),
      annualShare: fc.double({ min: 0, max: 0.49, noNaN: true }),
      perInstallment: centsArb(100_000),
    })
    .map(({ amountCents, termYears, annualRate, extraValueCents, upfrontShare, annualShare, perInstallment }) => ({
      amount: amountCents / 100,
      termYears,
      ...(annualRate !== undefined ? { annualRate } : {}),
      // Without a rate the published one needs the property value, which must cover the loan.
      ...(extraValueCents !== undefined || annualRate === undefined ? { propertyValue: (amountCents + (extraValueCents ?? 0)) / 100 } : {}),
      fees: {
        upfront: Math.floor(upfrontShare * amountCents) / 100,
        perInstallment,
        annual: Math.floor(annualShare * amountCents) / 100,
      },
      schedule: true,
    }));

  it('accepts it, and its schedule repays the amount exactly', () => {
    fc.assert(
      fc.property(requestArb, (body) => {
        const input = parsed(body);
        const result = simulate(input, defaultRateTable);
        const principalCents = result.schedule!.map((row) => eurosToCents(row.principal)!);
        assert.equal(
          principalCents.reduce((total, cents) => total + cents, 0),
          input.amountCents,
        );
        assert.equal(result.schedule!.at(-1)!.balance, 0);
        assert.ok(Number.isFinite(result.aprc));
        assert.ok(result.totalCost >= result.totalInterest);
      }),
      { numRuns: 200 },
    );
  });
});

describe('hundredthsOf', () => {
  const check = (x: number) => assert.equal(hundredthsOf(x, eurosToCents), eurosToCents(x), String(x));

  it('agrees with eurosToCents on decimals with up to four places, on the edges, and on any double', () => {
    const decimal = fc
      .tuple(fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }), fc.integer({ min: 0, max: 4 }))
      .map(([digits, places]) => Number(`${digits}e-${places}`));
    fc.assert(fc.property(decimal, check), { numRuns: 20_000 });
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 50), max: 2 ** 50 }).map((c) => c / 100),
        check,
      ),
      { numRuns: 20_000 },
    );
    fc.assert(fc.property(fc.double(), check), { numRuns: 20_000 });
    const edges = [0, -0, 0.29, 1.005, 1000.005, 0.1 + 0.2, 1e-7, 1e21, 2 ** 43, 2 ** 43 - 0.01, 2 ** 46 + 0.01, 2 ** 53, 90_071_992_547_409.91];
    for (const x of edges) for (const signed of [x, -x]) check(signed);
  });
});

describe('simulate agrees with the schedule and aprcPercent it replaces', () => {
  const requestArb = fc.record({
    amountCents: fc.integer({ min: 1, max: 10_000_000_000 }),
    termYears: fc.integer({ min: 1, max: 40 }),
    annualRate: fc.oneof(
      fc.integer({ min: 0, max: 2_000 }).map(annualRateFromBasisPoints),
      fc.integer({ min: 0, max: 200_000 }).map((units) => annualRateFromUnits(units, 4)),
    ),
    upfrontShare: fc.double({ min: 0, max: 0.49, noNaN: true }),
    annualShare: fc.double({ min: 0, max: 0.49, noNaN: true }),
    perInstallmentCents: fc.integer({ min: 0, max: 10_000_000 }),
  });

  it('has the totals of frenchSchedule and the APRC of simulationCashFlows', () => {
    fc.assert(
      fc.property(requestArb, ({ amountCents, termYears, annualRate, upfrontShare, annualShare, perInstallmentCents }) => {
        const input: SimulationInput = {
          amountCents,
          termYears,
          annualRate,
          fees: { upfrontCents: Math.floor(upfrontShare * amountCents), perInstallmentCents, annualCents: Math.floor(annualShare * amountCents) },
          schedule: false,
        };
        const result = simulate(input, defaultRateTable);
        const schedule = frenchSchedule({ principalCents: amountCents, annualRate, periods: 12 * termYears });
        const expectedAprc = aprcPercent(simulationCashFlows(input, schedule));
        // Past a million percent (a cent lent against euros of fees) the doubles no longer hold two decimals.
        if (Math.abs(expectedAprc) < 1e6) assert.equal(result.aprc, roundHalfUp(expectedAprc, 2), `${result.aprc} vs ${expectedAprc}`);
        else assert.ok(Math.abs(result.aprc - expectedAprc) <= 0.005 + 1e-12 * Math.abs(expectedAprc), `${result.aprc} vs ${expectedAprc}`);
        assert.equal(result.installment, schedule.installmentCents / 100);
        assert.equal(result.totalInterest, schedule.totalInterestCents / 100);
        assert.deepEqual({ ...simulate({ ...input, schedule: true }, defaultRateTable), schedule: undefined }, { ...result, schedule: undefined });
      }),
      { numRuns: 500 },
    );
  });
});
