import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { annualRateFromUnits, annualRateProblem } from '../../domain/annual-rate.ts';
import { replay } from '../../domain/decider.ts';
import { DomainError } from '../../domain/errors.ts';
import { defaultRateTable, type RateType } from '../../domain/rates.ts';
import {
  applicationDecider,
  maxAmountCents,
  maxGuaranteedLtvBps,
  maxLtvBps,
  type ApplicationCommand,
  type ApplicationState,
  type PropertyInput,
  type SubmitApplication,
} from './decider.ts';
import type { ApplicationEvent } from './events.ts';

const dayMs = 86_400_000;
const startMs = Date.parse('2026-11-01T08:00:00.000Z');
const numRuns = 300;
/** A minimum loan the generated amounts fall on both sides of. */
const limits = { minLoanCents: 1_000_000 };

// ---- arbitraries: valid commands mixed with every kind of wrong input ----

const applicants = [
  { taxCode: 'BNCGLI90C55F205Z', birthDate: '1990-03-15' },
  { taxCode: 'spsgnr85t01f839m', birthDate: '1985-12-01' },
  { taxCode: 'RMNCHR01B68H501T', birthDate: '2001-02-28' },
] as const;

const oddCents = fc.constantFrom(0, -1, -250_000, 0.5, 1234.56, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1);
const anyCents = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 300_000_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) },
  { weight: 1, arbitrary: oddCents },
);
const anyText = fc.oneof(fc.constantFrom('', '   ', 'x'.repeat(201)), fc.string({ maxLength: 20 }));
const anyRegion = fc.oneof(fc.constantFrom('Lombardia', 'lombardia', 'EMILIA ROMAGNA', "valle d'aosta", 'Atlantide', ''), fc.string({ maxLength: 12 }));
const anyEnergyClass = fc.option(fc.constantFrom('A4', 'B', 'G', 'unknown', 'a4', 'Z', ''), { nil: undefined });

const validProperty = (valueCents: number): PropertyInput => ({ valueCents, region: 'Toscana', province: 'FI', energyClass: 'C' });
const anyProperty: fc.Arbitrary<PropertyInput> = fc.record({
  valueCents: anyCents,
  region: anyRegion,
  province: fc.option(fc.constantFrom('MI', 'rm', 'Milano', '1A'), { nil: undefined }),
  type: fc.option(fc.oneof(fc.constant('apartment'), anyText), { nil: undefined }),
  energyClass: anyEnergyClass,
});

// Loan-to-value picked around the caps, so both sides of 80 % and 100 % come up often.
const ltvBps = fc.oneof(fc.integer({ min: 500, max: 10_500 }), fc.constantFrom(7_999, 8_000, 8_001, 9_999, 10_000, 10_001));

const validSubmit: fc.Arbitrary<SubmitApplication> = fc
  .record({
    applicant: fc.constantFrom(...applicants),
    valueCents: fc.integer({ min: 5_000_000, max: 200_000_000 }),
    ltvBps,
    centsOff: fc.integer({ min: -2, max: 2 }),
    termYears: fc.integer({ min: 5, max: 40 }),
    rateType: fc.constantFrom<RateType>('fixed', 'variable'),
    publicGuarantee: fc.boolean(),
  })
  .map(({ applicant, valueCents, ltvBps, centsOff, termYears, rateType, publicGuarantee }) => ({
    type: 'SubmitApplication',
    applicationId: '3f0b8c1e-6d1a-4b8e-9f1e-2a7c5d4e8b10',
    applicant: { firstName: 'Giulia', lastName: 'Bianchi', email: 'giulia@example.it', ...applicant },
    income: { monthlyNetCents: 350_000, monthlyDebtsCents: 0, employment: 'permanent' },
    property: validProperty(valueCents),
    loan: { amountCents: Math.max(1, Math.round((valueCents * ltvBps) / 10_000) + centsOff), termYears, rateType, publicGuarantee },
  }));

// The largest amounts allowed, a cent either side of the cap.
const hugeSubmitAtTheCap: fc.Arbitrary<SubmitApplication> = fc
  .record({ submit: validSubmit, valueCents: fc.integer({ min: 1e9, max: maxAmountCents }), centsOff: fc.integer({ min: -1, max: 3 }) })
  .map(({ submit, valueCents, centsOff }) => {
    const capBps = submit.loan.publicGuarantee ? maxGuaranteedLtvBps : maxLtvBps;
    const amountCents = Number((BigInt(capBps) * BigInt(valueCents)) / 10_000n + BigInt(centsOff));
    return { ...submit, property: validProperty(valueCents), loan: { ...submit.loan, amountCents: Math.min(amountCents, Number.MAX_SAFE_INTEGER) } };
  });

const anySubmit: fc.Arbitrary<SubmitApplication> = fc.record({
  type: fc.constant('SubmitApplication' as const),
  applicationId: fc.constant('3f0b8c1e-6d1a-4b8e-9f1e-2a7c5d4e8b10'),
  applicant: fc.record({
    firstName: fc.oneof(fc.constant('Giulia'), anyText),
    lastName: fc.oneof(fc.constant('Bianchi'), anyText),
    taxCode: fc.oneof(fc.constantFrom(...applicants.map((applicant) => applicant.taxCode), 'BNCGLI90C55F205A'), fc.string({ maxLength: 16 })),
    email: fc.oneof(fc.constantFrom('giulia@example.it', ' G@X.IT ', 'nobody', 'a b@c.d'), fc.string({ maxLength: 12 })),
    phone: fc.option(fc.constantFrom('+39 333 1234567', '12345', 'call me', ''), { nil: undefined }),
    birthDate: fc.option(
      fc.oneof(fc.constantFrom(...applicants.map((applicant) => applicant.birthDate), '1990-02-30', '1990-13-01'), fc.string({ maxLength: 10 })),
      {
        nil: undefined,
      },
    ),
  }),
  income: fc.record({
    monthlyNetCents: anyCents,
    monthlyDebtsCents: fc.oneof(fc.constant(0), anyCents),
    employment: fc.constantFrom('permanent', 'retired', 'self-employed', 'astronaut', ''),
  }),
  property: anyProperty,
  loan: fc.record({
    amountCents: anyCents,
    termYears: fc.oneof(fc.integer({ min: 3, max: 42 }), fc.constantFrom(25.5, Number.NaN)),
    rateType: fc.constantFrom<RateType>('fixed', 'variable', 'balloon' as RateType),
    publicGuarantee: fc.boolean(),
  }),
});

const anyCommand: fc.Arbitrary<ApplicationCommand> = fc.oneof(
  { weight: 2, arbitrary: validSubmit },
  { weight: 1, arbitrary: hugeSubmitAtTheCap },
  { weight: 1, arbitrary: anySubmit },
  {
    weight: 2,
    arbitrary: fc.record(
      { type: fc.constant('ApproveIncome' as const), verifiedMonthlyNetCents: anyCents, note: fc.oneof(fc.constant('payslips checked'), anyText) },
      { requiredKeys: ['type', 'verifiedMonthlyNetCents'] },
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('LockRate' as const),
      lockDays: fc.oneof(fc.integer({ min: 1, max: 90 }), fc.constantFrom(0, -1, 91, 1.5, Number.NaN)),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('ChangeRate' as const),
      annualRate: fc.oneof(
        fc.integer({ min: 0, max: 200_000 }).map((units) => annualRateFromUnits(units, 4)),
        fc.constantFrom('-1', '20.0001', '3.87501', '2.50', '1e1', 'NaN', '', '9007199254740993'),
      ),
      reason: fc.oneof(fc.constant('market update'), anyText),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.oneof(
      fc.record({ type: fc.constant('UpdatePropertyDetails' as const), property: anyProperty }),
      fc.integer({ min: 1_000_000, max: 300_000_000 }).map((valueCents) => ({ type: 'UpdatePropertyDetails' as const, property: validProperty(valueCents) })),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      { type: fc.constant('WithdrawApplication' as const), reason: fc.oneof(fc.constant('changed my mind'), anyText) },
      { requiredKeys: ['type'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('ApproveApplication' as const), contractNumber: fc.oneof(fc.constant('MUT-2026-000123'), anyText) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('RejectApplication' as const), reason: fc.oneof(fc.constant('bank refused'), anyText) }) },
);

type Step = { readonly command: ApplicationCommand; readonly advanceMs: number };

const step: fc.Arbitrary<Step> = fc.record({
  command: anyCommand,
  advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 45 * dayMs })),
});

// Half the sequences start with a valid submission, so most of them reach the later rules.
const steps: fc.Arbitrary<readonly Step[]> = fc.oneof(
  fc.tuple(validSubmit, fc.array(step, { maxLength: 30 })).map(([command, rest]) => [{ command, advanceMs: 0 }, ...rest]),
  fc.array(step, { maxLength: 30 }),
);

// ---- folding a sequence through decide and evolve ----

type Decision = {
  readonly before: ApplicationState;
  readonly command: ApplicationCommand;
  readonly now: Date;
  readonly outcome: { readonly events: readonly ApplicationEvent[] } | { readonly error: unknown };
  readonly after: ApplicationState;
};

function run(sequence: readonly Step[]): { decisions: Decision[]; accepted: ApplicationEvent[]; state: ApplicationState } {
  let state = applicationDecider.initialState;
  let nowMs = startMs;
  const decisions: Decision[] = [];
  const accepted: ApplicationEvent[] = [];
  for (const { command, advanceMs } of sequence) {
    nowMs += advanceMs;
    const now = new Date(nowMs);
    const before = state;
    let outcome: Decision['outcome'];
    try {
      const events = applicationDecider.decide(command, state, { now, rateTable: defaultRateTable, limits });
      for (const event of events) state = applicationDecider.evolve(state, event);
      accepted.push(...events);
      outcome = { events };
    } catch (error) {
      outcome = { error };
    }
    decisions.push({ before, command, now, outcome, after: state });
  }
  return { decisions, accepted, state };
}

const producedEvents = (decision: Decision): readonly ApplicationEvent[] => ('events' in decision.outcome ? decision.outcome.events : []);

function numbersIn(value: unknown, path: string): (readonly [string, number])[] {
  if (typeof value === 'number') return [[path, value]];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, nested]) => numbersIn(nested, `${path}.${key}`));
}

/** The rates (annualRate, previousAnnualRate) of an event, by path. */
function ratesIn(value: unknown, path: string): (readonly [string, unknown])[] {
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, nested]) =>
    /annualRate$/i.test(key) && nested !== null ? [[`${path}.${key}`, nested] as const] : ratesIn(nested, `${path}.${key}`),
  );
}

const closedStatuses: readonly ApplicationState['status'][] = ['approved', 'rejected', 'withdrawn'];

describe('the application decider, over random command sequences', () => {
  it('(a) replaying the accepted events reproduces the final state, also after a trip through JSON', () => {
    fc.assert(
      fc.property(steps, (sequence) => {
        const { accepted, state } = run(sequence);
        assert.deepEqual(replay(applicationDecider, accepted), state);
        assert.deepEqual(replay(applicationDecider, JSON.parse(JSON.stringify(accepted)) as ApplicationEvent[]), state);
      }),
      { numRuns },
    );
  });

  it('(b) decide only throws DomainError, and decides the same way twice', () => {
    fc.assert(
      fc.property(steps, (sequence) => {
        for (const decision of run(sequence).decisions) {
          const context = { now: decision.now, rateTable: defaultRateTable, limits };
          if ('error' in decision.outcome) {
            assert.ok(decision.outcome.error instanceof DomainError, `${JSON.stringify(decision.command)} threw ${String(decision.outcome.error)}`);
            assert.throws(() => applicationDecider.decide(decision.command, decision.before, context), decision.outcome.error);
          } else {
            assert.deepEqual(applicationDecider.decide(decision.command, decision.before, context), decision.outcome.events);
          }
        }
      }),
      { numRuns },
    );
  });

  it('(c) every money, term and day count in every event is a non-negative safe integer, and every rate a decimal the rule allows', () => {
    fc.assert(
      fc.property(steps, (sequence) => {
        for (const event of run(sequence).accepted) {
          for (const [path, value] of numbersIn(event.data, event.type)) {
            assert.ok(Number.isSafeInteger(value) && value >= 0, `${path} = ${value}`);
          }
          for (const [path, value] of ratesIn(event.data, event.type)) {
            assert.ok(typeof value === 'string' && annualRateProblem(value) === undefined, `${path} = ${JSON.stringify(value)}`);
          }
        }
      }),
      { numRuns },
    );
  });

  it('(d) once approved, rejected or withdrawn, no command produces events', () => {
    fc.assert(
      fc.property(steps, (sequence) => {
        for (const decision of run(sequence).decisions) {
          if (!closedStatuses.includes(decision.before.status)) continue;
          assert.deepEqual(producedEvents(decision), [], `${JSON.stringify(decision.command)} on ${decision.before.status}`);
          assert.equal(decision.after, decision.before);
        }
      }),
      { numRuns },
    );
  });

  it('(e) while processing, the loan stays within 80 % of the property value (100 % with a public guarantee)', () => {
    fc.assert(
      fc.property(steps, (sequence) => {
        for (const { after } of run(sequence).decisions) {
          if (after.status !== 'processing') continue;
          const { loan, property } = after.file;
          const capBps = loan.publicGuarantee ? maxGuaranteedLtvBps : maxLtvBps;
          // Exact arithmetic: the cap must hold to the cent, not up to floating-point rounding.
          assert.ok(
            BigInt(loan.amountCents) * 10_000n <= BigInt(capBps) * BigInt(property.valueCents),
            `${loan.amountCents} on ${property.valueCents} exceeds ${capBps} bps`,
          );
        }
      }),
      { numRuns },
    );
  });

  it('(f) while processing, the loan is at least the configured minimum', () => {
    fc.assert(
      fc.property(steps, (sequence) => {
        for (const { after } of run(sequence).decisions) {
          if (after.status === 'processing')
            assert.ok(after.file.loan.amountCents >= limits.minLoanCents, `a loan of ${after.file.loan.amountCents} cents was taken`);
        }
      }),
      { numRuns },
    );
  });

  it('takes every instant in an event from context.now', () => {
    fc.assert(
      fc.property(steps, (sequence) => {
        for (const decision of run(sequence).decisions) {
          const now = decision.now.toISOString();
          for (const event of producedEvents(decision)) {
            const { expiresAt, ...data } = event.data as Record<string, unknown>;
            const instants = Object.values(data).filter((value) => typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value));
            assert.deepEqual(instants, [now], JSON.stringify(event));
            if (event.type === 'InterestRateLocked') {
              assert.equal(expiresAt, new Date(decision.now.getTime() + event.data.lockDays * dayMs).toISOString());
            }
          }
        }
      }),
      { numRuns },
    );
  });
});
