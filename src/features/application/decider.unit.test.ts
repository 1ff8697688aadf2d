import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forDecider } from '../../domain/given-when-then.ts';
import { defaultRateTable, type RateTable, type RateType } from '../../domain/rates.ts';
import {
  applicationDecider,
  defaultLockDays,
  maxAmountCents,
  type ApplicationCommand,
  type ApplicationState,
  type PropertyInput,
  type SubmitApplication,
} from './decider.ts';
import type { Applicant, ApplicationEvent, Income, Loan, Property } from './events.ts';

const applicationId = '3f0b8c1e-6d1a-4b8e-9f1e-2a7c5d4e8b10';
const submittedAt = new Date('2026-11-10T09:00:00.000Z');
const dayMs = 86_400_000;
const daysAfter = (date: Date, days: number): Date => new Date(date.getTime() + days * dayMs);

/** 30 000 euros, the configuration's default. */
const limits = { minLoanCents: 3_000_000 };
const given = forDecider(applicationDecider, { now: submittedAt, rateTable: defaultRateTable, limits });

// ---- commands ----

const validApplicantInput: Applicant = {
  firstName: 'Giulia',
  lastName: 'Bianchi',
  taxCode: 'BNCGLI90C55F205Z',
  email: 'giulia.bianchi@example.it',
  phone: '+39 333 1234567',
  birthDate: '1990-03-15',
};
const validIncomeInput: SubmitApplication['income'] = { monthlyNetCents: 350_000, monthlyDebtsCents: 20_000, employment: 'permanent' };
const validPropertyInput: PropertyInput = {
  valueCents: 30_000_000,
  region: 'Lombardia',
  province: 'MI',
  type: 'apartment',
  energyClass: 'B',
};
// 200,000 € on 300,000 €: a loan-to-value of 66.67 %.
const validLoanInput: SubmitApplication['loan'] = { amountCents: 20_000_000, termYears: 25, rateType: 'fixed', publicGuarantee: false };

type SubmitChanges = {
  readonly applicant?: Partial<Applicant>;
  readonly income?: Partial<SubmitApplication['income']>;
  readonly property?: Partial<PropertyInput>;
  readonly loan?: Partial<SubmitApplication['loan']>;
};

const submitApplication = (changes: SubmitChanges = {}): SubmitApplication => ({
  type: 'SubmitApplication',
  applicationId,
  applicant: { ...validApplicantInput, ...changes.applicant },
  income: { ...validIncomeInput, ...changes.income },
  property: { ...validPropertyInput, ...changes.property },
  loan: { ...validLoanInput, ...changes.loan },
});
const approveIncome = (verifiedMonthlyNetCents: number, note?: string): ApplicationCommand => ({
  type: 'ApproveIncome',
  verifiedMonthlyNetCents,
  ...(note !== undefined ? { note } : {}),
});
const lockRate = (lockDays: number = defaultLockDays): ApplicationCommand => ({ type: 'LockRate', lockDays });
const changeRate = (annualRate: string, reason = 'market update'): ApplicationCommand => ({ type: 'ChangeRate', annualRate, reason });
const updateProperty = (changes: Partial<PropertyInput> = {}): ApplicationCommand => ({
  type: 'UpdatePropertyDetails',
  property: { ...validPropertyInput, ...changes },
});
const withdraw = (reason?: string): ApplicationCommand => ({ type: 'WithdrawApplication', ...(reason !== undefined ? { reason } : {}) });
const approve = (contractNumber = 'MUT-2026-000123'): ApplicationCommand => ({ type: 'ApproveApplication', contractNumber });
const reject = (reason = 'the bank refused the mortgage'): ApplicationCommand => ({ type: 'RejectApplication', reason });

// ---- events ----

const validProperty: Property = { valueCents: 30_000_000, region: 'Lombardia', province: 'MI', type: 'apartment', energyClass: 'B' };
const validLoan: Loan = { amountCents: 20_000_000, termYears: 25, rateType: 'fixed', publicGuarantee: false };
const validIncome: Income = { monthlyNetCents: 350_000, monthlyDebtsCents: 20_000, employment: 'permanent' };

type SubmittedChanges = { readonly applicant?: Partial<Applicant>; readonly property?: Partial<Property>; readonly loan?: Partial<Loan> };

const submittedEvent = (changes: SubmittedChanges = {}, at: Date = submittedAt): ApplicationEvent => ({
  type: 'MortgageApplicationSubmitted',
  data: {
    applicationId,
    applicant: { ...validApplicantInput, ...changes.applicant },
    income: validIncome,
    property: { ...validProperty, ...changes.property },
    loan: { ...validLoan, ...changes.loan },
    submittedAt: at.toISOString(),
  },
});
const submitted = submittedEvent();
const rateLocked = (annualRate: string, lockedAt: Date, lockDays: number, expiresAt: string): ApplicationEvent => ({
  type: 'InterestRateLocked',
  data: { annualRate, lockDays, lockedAt: lockedAt.toISOString(), expiresAt },
});
// The published rate for the valid loan: fixed, 25 years, 60-80 % LTV.
const lockedOnSubmission = rateLocked('3.45', submittedAt, 30, '2026-12-10T09:00:00.000Z');
const rateChanged = (annualRate: string, previousAnnualRate: string | null, reason = 'market update', at: Date = submittedAt): ApplicationEvent => ({
  type: 'InterestRateChanged',
  data: { annualRate, previousAnnualRate, reason, changedAt: at.toISOString() },
});
const withdrawn: ApplicationEvent = { type: 'ApplicationWithdrawn', data: { reason: null, withdrawnAt: submittedAt.toISOString() } };
const approved: ApplicationEvent = {
  type: 'ApplicationApproved',
  data: { contractNumber: 'MUT-2026-000123', approvedAt: submittedAt.toISOString() },
};
const rejected: ApplicationEvent = {
  type: 'ApplicationRejected',
  data: { reason: 'the bank refused the mortgage', rejectedAt: submittedAt.toISOString() },
};

function processingFile(state: ApplicationState) {
  assert.equal(state.status, 'processing');
  return state.file;
}

describe('SubmitApplication', () => {
  it('records a valid application in cents with its submission time', () => {
    const state = given([]).when(submitApplication()).then([submitted]);
    assert.equal(state.status, 'processing');
    assert.equal(processingFile(state).submittedAt, submittedAt.toISOString());
  });

  it('normalizes the tax code, email, region and province, and defaults the energy class to unknown', () => {
    given([])
      .when(
        submitApplication({
          applicant: { firstName: '  Giulia ', taxCode: ' bncgli90c55f205z ', email: ' Giulia.Bianchi@Example.IT ' },
          property: { region: 'lombardia', province: 'mi', energyClass: undefined },
        }),
      )
      .then([submittedEvent({ property: { region: 'Lombardia', province: 'MI', energyClass: 'unknown' } })]);
  });

  it('canonicalizes regions written with other case, spacing or dashes', () => {
    given([])
      .when(submitApplication({ property: { region: 'valle d aosta' } }))
      .then([submittedEvent({ property: { region: "Valle d'Aosta" } })]);
    given([])
      .when(submitApplication({ property: { region: 'EMILIA ROMAGNA' } }))
      .then([submittedEvent({ property: { region: 'Emilia-Romagna' } })]);
  });

  it('leaves out optional fields that were not given', () => {
    const { phone: _phone, birthDate: _birthDate, ...applicant } = validApplicantInput;
    const { province: _province, type: _type, ...property } = validProperty;
    given([])
      .when({ ...submitApplication(), applicant, property })
      .then([
        {
          type: 'MortgageApplicationSubmitted',
          data: { applicationId, applicant, income: validIncome, property, loan: validLoan, submittedAt: submittedAt.toISOString() },
        },
      ]);
  });

  it('accepts the other sample applicants whose birth date matches the tax code', () => {
    for (const applicant of [
      { taxCode: 'SPSGNR85T01F839M', birthDate: '1985-12-01' },
      { taxCode: 'RMNCHR01B68H501T', birthDate: '2001-02-28' },
    ]) {
      given([])
        .when(submitApplication({ applicant }))
        .then([submittedEvent({ applicant })]);
    }
  });

  const invalidFields: readonly (readonly [string, SubmitChanges])[] = [
    ['applicant.taxCode', { applicant: { taxCode: 'BNCGLI90C55F205A' } }],
    ['applicant.taxCode', { applicant: { taxCode: 'BNCGLI90C55' } }],
    ['applicant.firstName', { applicant: { firstName: '   ' } }],
    ['applicant.lastName', { applicant: { lastName: 'x'.repeat(201) } }],
    ['applicant.email', { applicant: { email: 'giulia.bianchi-at-example.it' } }],
    ['applicant.email', { applicant: { email: 'giulia @example.it' } }],
    ['applicant.email', { applicant: { email: 'x<attacker@evil.example>' } }],
    ['applicant.email', { applicant: { email: 'Giulia <giulia.bianchi@example.it>' } }],
    ['applicant.email', { applicant: { email: 'giulia.bianchi@example.it,attacker@evil.example' } }],
    ['applicant.email', { applicant: { email: '"giulia"@example.it' } }],
    ['applicant.email', { applicant: { email: 'giulia(home)@example.it' } }],
    ['applicant.email', { applicant: { email: `${'g'.repeat(245)}@example.it` } }],
    ['applicant.birthDate', { applicant: { birthDate: '1990-03-16' } }],
    ['applicant.birthDate', { applicant: { birthDate: '1991-03-15' } }],
    ['applicant.birthDate', { applicant: { birthDate: '1990-02-30' } }],
    ['applicant.birthDate', { applicant: { birthDate: '15/03/1990' } }],
    ['applicant.phone', { applicant: { phone: 'call me' } }],
    ['applicant.phone', { applicant: { phone: '12345' } }],
    ['income.monthlyNet', { income: { monthlyNetCents: 0 } }],
    ['income.monthlyNet', { income: { monthlyNetCents: 1234.5 } }],
    ['income.monthlyDebts', { income: { monthlyDebtsCents: -1 } }],
    ['income.employment', { income: { employment: 'astronaut' } }],
    ['property.value', { property: { valueCents: 0 } }],
    ['property.value', { property: { valueCents: 30_000_000.5 } }],
    ['property.region', { property: { region: 'Atlantide' } }],
    ['property.province', { property: { province: 'Milano' } }],
    ['property.type', { property: { type: '  ' } }],
    ['property.energyClass', { property: { energyClass: 'A5' } }],
    ['loan.amount', { loan: { amountCents: 0 } }],
    ['loan.amount', { loan: { amountCents: -20_000_000 } }],
    ['loan.amount', { loan: { amountCents: 19_999_999.99 } }],
    ['loan.amount', { loan: { amountCents: 20_000 } }],
    ['loan.amount', { loan: { amountCents: 2_999_999 } }],
    ['loan.termYears', { loan: { termYears: 4 } }],
    ['loan.termYears', { loan: { termYears: 41 } }],
    ['loan.termYears', { loan: { termYears: 25.5 } }],
    ['loan.rateType', { loan: { rateType: 'balloon' as RateType } }],
  ];
  for (const [path, changes] of invalidFields) {
    it(`reports ${path} for ${JSON.stringify(changes)}`, () => {
      given([]).when(submitApplication(changes)).thenFails('invalid', 'INVALID_INPUT', [path]);
    });
  }

  it('refuses a loan below the minimum the context sets, saying what it is', () => {
    const error = given([])
      .when(submitApplication({ loan: { amountCents: 20_000 } }))
      .thenFails('invalid', 'INVALID_INPUT', ['loan.amount']);
    assert.match(error.errors[0]!.message, /at least 30000 euros/);
    given([])
      .when(submitApplication({ loan: { amountCents: 20_000 } }), { limits: { minLoanCents: 20_000 } })
      .then([submittedEvent({ loan: { amountCents: 20_000 } })]);
    given([])
      .when(submitApplication({ loan: { amountCents: 3_000_000 } }))
      .then([submittedEvent({ loan: { amountCents: 3_000_000 } })]);
  });

  it('accepts terms of 5 and 40 years', () => {
    for (const termYears of [5, 40]) {
      given([])
        .when(submitApplication({ loan: { termYears } }))
        .then([submittedEvent({ loan: { termYears } })]);
    }
  });

  it('reports several wrong fields together', () => {
    given([])
      .when(
        submitApplication({
          applicant: { email: 'nobody', phone: '?' },
          income: { monthlyNetCents: 0, employment: 'astronaut' },
          property: { region: 'Atlantide', energyClass: 'Z' },
          loan: { termYears: 41, rateType: 'balloon' as RateType },
        }),
      )
      .thenFails('invalid', 'INVALID_INPUT', [
        'applicant.email',
        'applicant.phone',
        'income.monthlyNet',
        'income.employment',
        'property.region',
        'property.energyClass',
        'loan.termYears',
        'loan.rateType',
      ]);
  });

  it('accepts a loan of exactly 80 % of the property value', () => {
    given([])
      .when(submitApplication({ loan: { amountCents: 24_000_000 } }))
      .then([submittedEvent({ loan: { amountCents: 24_000_000 } })]);
  });

  it('refuses a loan of 80.01 % of the property value, naming loan.amount', () => {
    const error = given([])
      .when(submitApplication({ loan: { amountCents: 24_003_000 } }))
      .thenFails('rule', 'LOAN_TO_VALUE_EXCEEDED', ['loan.amount']);
    assert.match(error.message, /80\.01 %/);
  });

  it('refuses a loan a cent over 80 % of the property value', () => {
    given([])
      .when(submitApplication({ loan: { amountCents: 24_000_001 } }))
      .thenFails('rule', 'LOAN_TO_VALUE_EXCEEDED', ['loan.amount']);
  });

  it('accepts up to 100 % of the property value with a public guarantee', () => {
    for (const amountCents of [24_003_000, 30_000_000]) {
      given([])
        .when(submitApplication({ loan: { amountCents, publicGuarantee: true } }))
        .then([submittedEvent({ loan: { amountCents, publicGuarantee: true } })]);
    }
  });

  it('refuses over 100 % of the property value even with a public guarantee', () => {
    given([])
      .when(submitApplication({ loan: { amountCents: 30_000_001, publicGuarantee: true } }))
      .thenFails('rule', 'LOAN_TO_VALUE_EXCEEDED', ['loan.amount']);
  });

  it('refuses amounts over one billion euros, where a float ratio could round onto the cap', () => {
    given([])
      .when(submitApplication({ property: { valueCents: 6_471_676_251_030_786 }, loan: { amountCents: 5_177_341_000_824_629 } }))
      .thenFails('invalid', 'INVALID_INPUT', ['loan.amount', 'property.value']);
    given([submitted])
      .when(updateProperty({ valueCents: maxAmountCents + 1 }))
      .thenFails('invalid', 'INVALID_INPUT', ['property.value']);
  });

  it('holds the cap to the cent at the largest amounts', () => {
    given([])
      .when(submitApplication({ property: { valueCents: maxAmountCents }, loan: { amountCents: 80_000_000_001 } }))
      .thenFails('rule', 'LOAN_TO_VALUE_EXCEEDED', ['loan.amount']);
    given([])
      .when(submitApplication({ property: { valueCents: maxAmountCents }, loan: { amountCents: 80_000_000_000 } }))
      .then([submittedEvent({ property: { valueCents: maxAmountCents }, loan: { amountCents: 80_000_000_000 } })]);
  });

  it('refuses a second submission of the same application', () => {
    given([submitted]).when(submitApplication()).thenFails('conflict', 'APPLICATION_EXISTS');
    given([submitted, approved]).when(submitApplication()).thenFails('conflict', 'APPLICATION_EXISTS');
  });
});

describe('commands on an application that does not exist', () => {
  const commands: readonly ApplicationCommand[] = [approveIncome(340_000), lockRate(), changeRate('2.5'), updateProperty(), withdraw(), approve(), reject()];
  for (const command of commands) {
    it(`${command.type} -> not_found APPLICATION_NOT_FOUND`, () => {
      given([]).when(command).thenFails('not_found', 'APPLICATION_NOT_FOUND');
    });
  }
});

describe('ApproveIncome', () => {
  it('records the verified income, without a note when none is given', () => {
    const state = given([submitted])
      .when(approveIncome(340_000))
      .then([{ type: 'IncomeApproved', data: { verifiedMonthlyNetCents: 340_000, note: null, approvedAt: submittedAt.toISOString() } }]);
    assert.equal(processingFile(state).verifiedMonthlyNetCents, 340_000);
  });

  it('keeps a trimmed note', () => {
    given([submitted])
      .when(approveIncome(340_000, '  payslips checked '))
      .then([{ type: 'IncomeApproved', data: { verifiedMonthlyNetCents: 340_000, note: 'payslips checked', approvedAt: submittedAt.toISOString() } }]);
  });

  it('refuses an income that is not a positive amount of cents', () => {
    for (const cents of [0, -1, 3400.5]) {
      given([submitted]).when(approveIncome(cents)).thenFails('invalid', 'INVALID_INPUT', ['verifiedMonthlyNet']);
    }
  });

  it('refuses a note over 200 characters', () => {
    given([submitted])
      .when(approveIncome(340_000, 'x'.repeat(201)))
      .thenFails('invalid', 'INVALID_INPUT', ['note']);
  });
});

describe('LockRate', () => {
  it('locks the published rate for the loan for the default 30 days', () => {
    assert.equal(defaultLockDays, 30);
    const state = given([submitted]).when(lockRate(defaultLockDays)).then([lockedOnSubmission]);
    const file = processingFile(state);
    assert.equal(file.annualRate, '3.45');
    assert.deepEqual(file.rateLock, { annualRate: '3.45', lockedAt: submittedAt.toISOString(), expiresAt: '2026-12-10T09:00:00.000Z' });
  });

  it('expires lockDays after now, taken from the context', () => {
    const now = new Date('2027-01-31T23:30:00.000Z');
    given([submitted])
      .when(lockRate(1), { now })
      .then([rateLocked('3.45', now, 1, '2027-02-01T23:30:00.000Z')]);
    given([submitted])
      .when(lockRate(90), { now })
      .then([rateLocked('3.45', now, 90, '2027-05-01T23:30:00.000Z')]);
  });

  it('picks the band of the loan type, term and loan-to-value', () => {
    const cases: readonly (readonly [Partial<Loan>, string])[] = [
      [{ rateType: 'variable', termYears: 10, amountCents: 15_000_000 }, '2.65'], // 50 %
      [{ rateType: 'fixed', termYears: 10, amountCents: 18_000_000 }, '2.9'], // exactly 60 %
      [{ rateType: 'fixed', termYears: 11, amountCents: 18_000_003 }, '3.3'], // just over 60 %
      [{ rateType: 'fixed', termYears: 40, amountCents: 24_000_000 }, '3.65'], // exactly 80 %
      [{ rateType: 'fixed', termYears: 25, amountCents: 28_500_000, publicGuarantee: true }, '3.85'], // 95 %
      [{ rateType: 'variable', termYears: 40, amountCents: 30_000_000, publicGuarantee: true }, '3.6'], // 100 %
    ];
    for (const [loan, annualRate] of cases) {
      given([submittedEvent({ loan })])
        .when(lockRate(30))
        .then([rateLocked(annualRate, submittedAt, 30, '2026-12-10T09:00:00.000Z')]);
    }
  });

  it('uses the rate table from the context', () => {
    const rateTable: RateTable = {
      publishedAt: '2026-11-05T00:00:00.000Z',
      bands: { fixed: [{ maxTermYears: 40, maxLtvBps: 10_000, annualRate: '1.999' }], variable: [] },
    };
    given([submitted])
      .when(lockRate(30), { rateTable })
      .then([rateLocked('1.999', submittedAt, 30, '2026-12-10T09:00:00.000Z')]);
    given([submittedEvent({ loan: { rateType: 'variable' } })])
      .when(lockRate(30), { rateTable })
      .thenFails('rule', 'NO_PUBLISHED_RATE');
  });

  it('refuses a lock of 0, 91 or a fraction of days', () => {
    for (const lockDays of [0, -1, 91, 1.5]) {
      given([submitted]).when(lockRate(lockDays)).thenFails('invalid', 'INVALID_INPUT', ['lockDays']);
    }
  });

  it('refuses to relock while the lock has not expired', () => {
    const error = given([submitted, lockedOnSubmission])
      .when(lockRate(), { now: daysAfter(submittedAt, 29) })
      .thenFails('rule', 'RATE_ALREADY_LOCKED');
    assert.match(error.message, /2026-12-10T09:00:00\.000Z/);
  });

  it('relocks at the current published rate once the lock has expired', () => {
    for (const now of [daysAfter(submittedAt, 30), daysAfter(submittedAt, 45)]) {
      const state = given([submitted, lockedOnSubmission])
        .when(lockRate(10), { now })
        .then([rateLocked('3.45', now, 10, daysAfter(now, 10).toISOString())]);
      assert.equal(processingFile(state).rateLock?.lockedAt, now.toISOString());
    }
  });

  it('refuses to relock a changed rate before the lock expires', () => {
    given([submitted, lockedOnSubmission, rateChanged('3', '3.45')])
      .when(lockRate(), { now: daysAfter(submittedAt, 1) })
      .thenFails('rule', 'RATE_ALREADY_LOCKED');
  });
});

describe('ChangeRate', () => {
  it('records that there was no rate before when none was locked', () => {
    const state = given([submitted])
      .when(changeRate('2.5'))
      .then([rateChanged('2.5', null)]);
    const file = processingFile(state);
    assert.equal(file.annualRate, '2.5');
    assert.equal(file.rateLock, undefined);
  });

  it('records the previous rate, and the lock keeps its expiry but takes the new rate', () => {
    const now = daysAfter(submittedAt, 3);
    const state = given([submitted, lockedOnSubmission])
      .when(changeRate('3.1', ' competitor offer '), { now })
      .then([rateChanged('3.1', '3.45', 'competitor offer', now)]);
    const file = processingFile(state);
    assert.equal(file.annualRate, '3.1');
    assert.deepEqual(file.rateLock, { annualRate: '3.1', lockedAt: submittedAt.toISOString(), expiresAt: '2026-12-10T09:00:00.000Z' });
    assert.equal(file.updatedAt, now.toISOString());
  });

  it('takes the previous rate from the last change', () => {
    given([submitted, lockedOnSubmission, rateChanged('3.1', '3.45')])
      .when(changeRate('2.9'))
      .then([rateChanged('2.9', '3.1')]);
  });

  it('accepts rates from 0 to 20 %, to the 0.0001 %', () => {
    given([submitted])
      .when(changeRate('0'))
      .then([rateChanged('0', null)]);
    given([submitted])
      .when(changeRate('20'))
      .then([rateChanged('20', null)]);
    given([submitted])
      .when(changeRate('3.875'))
      .then([rateChanged('3.875', null)]);
    given([submitted])
      .when(changeRate('0.0001'))
      .then([rateChanged('0.0001', null)]);
  });

  it('refuses a rate out of range, finer than 0.0001 % or not in canonical decimal form', () => {
    for (const annualRate of ['-1', '20.0001', '3.87501', '2.50', '02.5', 'NaN', '']) {
      given([submitted]).when(changeRate(annualRate)).thenFails('invalid', 'INVALID_INPUT', ['annualRate']);
    }
  });

  it('requires a reason', () => {
    given([submitted]).when(changeRate('2.5', '')).thenFails('invalid', 'INVALID_INPUT', ['reason']);
    given([submitted]).when(changeRate('2.5', '   ')).thenFails('invalid', 'INVALID_INPUT', ['reason']);
    given([submitted]).when(changeRate('-5', '')).thenFails('invalid', 'INVALID_INPUT', ['annualRate', 'reason']);
  });
});

describe('UpdatePropertyDetails', () => {
  it('records the new property, normalized', () => {
    const now = daysAfter(submittedAt, 2);
    const property: Property = { valueCents: 32_000_000, region: 'Toscana', province: 'FI', type: 'villa', energyClass: 'unknown' };
    const state = given([submitted])
      .when(updateProperty({ valueCents: 32_000_000, region: 'toscana', province: 'fi', type: 'villa', energyClass: undefined }), { now })
      .then([{ type: 'PropertyDetailsUpdated', data: { property, updatedAt: now.toISOString() } }]);
    assert.deepEqual(processingFile(state).property, property);
  });

  it('re-checks the loan-to-value against the new value, naming property.value', () => {
    // The loan is 200,000 €: 250,000 € is exactly 80 %, a cent less is over.
    given([submitted])
      .when(updateProperty({ valueCents: 25_000_000 }))
      .then([{ type: 'PropertyDetailsUpdated', data: { property: { ...validProperty, valueCents: 25_000_000 }, updatedAt: submittedAt.toISOString() } }]);
    given([submitted])
      .when(updateProperty({ valueCents: 24_999_999 }))
      .thenFails('rule', 'LOAN_TO_VALUE_EXCEEDED', ['property.value']);
  });

  it('allows up to 100 % with a public guarantee', () => {
    const guaranteed = submittedEvent({ loan: { publicGuarantee: true } });
    given([guaranteed])
      .when(updateProperty({ valueCents: 20_000_000 }))
      .then([{ type: 'PropertyDetailsUpdated', data: { property: { ...validProperty, valueCents: 20_000_000 }, updatedAt: submittedAt.toISOString() } }]);
    given([guaranteed])
      .when(updateProperty({ valueCents: 19_999_999 }))
      .thenFails('rule', 'LOAN_TO_VALUE_EXCEEDED', ['property.value']);
  });

  it('reports each invalid field under property', () => {
    given([submitted])
      .when(updateProperty({ valueCents: 0, region: 'Atlantide', province: 'M1', energyClass: 'H' }))
      .thenFails('invalid', 'INVALID_INPUT', ['property.value', 'property.region', 'property.province', 'property.energyClass']);
  });
});

describe('WithdrawApplication', () => {
  it('withdraws without a reason', () => {
    const state = given([submitted]).when(withdraw()).then([withdrawn]);
    assert.equal(state.status === 'withdrawn' && state.reason, null);
  });

  it('treats a blank reason as none and trims a given one', () => {
    given([submitted]).when(withdraw('  ')).then([withdrawn]);
    const state = given([submitted])
      .when(withdraw(' found a better offer '))
      .then([{ type: 'ApplicationWithdrawn', data: { reason: 'found a better offer', withdrawnAt: submittedAt.toISOString() } }]);
    assert.equal(state.status === 'withdrawn' && state.reason, 'found a better offer');
  });

  it('refuses a reason over 200 characters', () => {
    given([submitted])
      .when(withdraw('x'.repeat(201)))
      .thenFails('invalid', 'INVALID_INPUT', ['reason']);
  });
});

describe('ApproveApplication', () => {
  it('approves with the contract number', () => {
    const state = given([submitted, lockedOnSubmission]).when(approve(' MUT-2026-000123 ')).then([approved]);
    assert.equal(state.status === 'approved' && state.contractNumber, 'MUT-2026-000123');
  });

  it('requires a contract number', () => {
    given([submitted]).when(approve(' ')).thenFails('invalid', 'INVALID_INPUT', ['contractNumber']);
  });
});

describe('ExpireRateLock', () => {
  const expiresAt = '2026-12-10T09:00:00.000Z';
  const expire = (at = expiresAt): ApplicationCommand => ({ type: 'ExpireRateLock', expiresAt: at });

  it('records the expiry of the lock in place once its time has come, and drops the lock', () => {
    const now = new Date(expiresAt);
    const state = given([submitted, lockedOnSubmission])
      .when(expire(), { now })
      .then([{ type: 'InterestRateLockExpired', data: { annualRate: '3.45', lockedAt: submittedAt.toISOString(), expiresAt, expiredAt: expiresAt } }]);
    assert.equal(processingFile(state).rateLock, undefined);
  });

  it('refuses before the lock expires', () => {
    given([submitted, lockedOnSubmission])
      .when(expire(), { now: new Date(Date.parse(expiresAt) - 1) })
      .thenFails('rule', 'RATE_LOCK_NOT_EXPIRED');
  });

  it('refuses for a lock that was replaced, or when there is none', () => {
    const now = new Date('2027-06-01T00:00:00.000Z');
    given([submitted, lockedOnSubmission]).when(expire('2026-12-01T09:00:00.000Z'), { now }).thenFails('rule', 'RATE_LOCK_NOT_EXPIRED');
    given([submitted]).when(expire(), { now }).thenFails('rule', 'RATE_LOCK_NOT_EXPIRED');
  });
});

describe('RejectApplication', () => {
  it('rejects with the reason', () => {
    const state = given([submitted]).when(reject()).then([rejected]);
    assert.equal(state.status === 'rejected' && state.reason, 'the bank refused the mortgage');
  });

  it('requires a reason', () => {
    given([submitted]).when(reject('')).thenFails('invalid', 'INVALID_INPUT', ['reason']);
  });
});

describe('a closed application', () => {
  const closings = { approved, rejected, withdrawn } as const;
  for (const [status, closing] of Object.entries(closings)) {
    const history = [submitted, lockedOnSubmission, closing];

    it(`is ${status} after its closing event`, () => {
      const state = given(history.slice(0, 2)).when(closingCommand(closing)).then([closing]);
      assert.equal(state.status, status);
    });

    for (const command of [changeRate('2.5'), lockRate(), updateProperty(), approveIncome(340_000), approve(), reject()]) {
      it(`refuses ${command.type} once ${status}`, () => {
        given(history).when(command).thenFails('rule', 'APPLICATION_CLOSED');
      });
    }

    it(`refuses to relock once ${status}, even after the lock expired`, () => {
      given(history)
        .when(lockRate(), { now: daysAfter(submittedAt, 60) })
        .thenFails('rule', 'APPLICATION_CLOSED');
    });
  }

  it('refuses to withdraw an approved application', () => {
    given([submitted, approved]).when(withdraw()).thenFails('rule', 'APPLICATION_APPROVED');
  });

  it('refuses to withdraw a rejected or withdrawn application', () => {
    given([submitted, rejected]).when(withdraw()).thenFails('rule', 'APPLICATION_CLOSED');
    given([submitted, withdrawn]).when(withdraw('again')).thenFails('rule', 'APPLICATION_CLOSED');
  });
});

function closingCommand(event: ApplicationEvent): ApplicationCommand {
  if (event.type === 'ApplicationApproved') return approve(event.data.contractNumber);
  if (event.type === 'ApplicationRejected') return reject(event.data.reason);
  return withdraw();
}

describe('time', () => {
  it('comes only from context.now: the wall clock does not change the events', (t) => {
    const lockedAgainAt = daysAfter(submittedAt, 31);
    const processing = given([submitted, lockedOnSubmission])
      .when(lockRate(), { now: lockedAgainAt })
      .then([rateLocked('3.45', lockedAgainAt, 30, daysAfter(lockedAgainAt, 30).toISOString())]);
    const now = new Date('2027-03-01T10:00:00.000Z');
    const context = { now, rateTable: defaultRateTable, limits };
    const decideAll = (): (readonly ApplicationEvent[])[] => [
      applicationDecider.decide(submitApplication(), applicationDecider.initialState, context),
      ...[lockRate(), changeRate('2.5'), updateProperty(), approveIncome(340_000), withdraw(), approve(), reject()].map((command) =>
        applicationDecider.decide(command, processing, context),
      ),
    ];

    t.mock.timers.enable({ apis: ['Date'], now: new Date('1999-12-31T23:59:59.000Z') });
    const atMillennium = decideAll();
    t.mock.timers.setTime(Date.parse('2041-06-15T12:00:00.000Z'));
    const decadesLater = decideAll();
    assert.deepEqual(atMillennium, decadesLater);
    for (const events of atMillennium) {
      const json = JSON.stringify(events);
      assert.ok(json.includes(now.toISOString()), json);
      assert.ok(!json.includes('1999-12-31') && !json.includes('2041-06-15'), json);
    }
  });

  it('gives the same events for the same command, state and context', () => {
    const state = given([submitted]).when(lockRate()).then([lockedOnSubmission]);
    const context = { now: daysAfter(submittedAt, 5), rateTable: defaultRateTable, limits };
    const first = applicationDecider.decide(changeRate('3'), state, context);
    const second = applicationDecider.decide(changeRate('3'), state, context);
    assert.deepEqual(first, second);
  });
});
