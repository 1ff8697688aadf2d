import { annualRateProblem, type AnnualRate } from '../../domain/annual-rate.ts';
import { checkTaxCode } from '../../domain/codice-fiscale.ts';
import { isEmailAddress } from '../../domain/email-address.ts';
import type { Decider } from '../../domain/decider.ts';
import { assertNever, DomainError, invalidInput, type FieldError } from '../../domain/errors.ts';
import { loanToValueBps, publishedRateFor, type RateTable, type RateType } from '../../domain/rates.ts';
import { canonicalRegion } from '../../domain/regions.ts';
import { employmentKinds, energyClasses, type Applicant, type ApplicationEvent, type Income, type Loan, type Property } from './events.ts';

// ---- commands: plain data, money in cents and rates as decimal percentages ----

export type PropertyInput = {
  readonly valueCents: number;
  readonly region: string;
  readonly province?: string;
  readonly type?: string;
  readonly energyClass?: string;
};

export type SubmitApplication = {
  readonly type: 'SubmitApplication';
  readonly applicationId: string;
  readonly applicant: Applicant;
  readonly income: { readonly monthlyNetCents: number; readonly monthlyDebtsCents: number; readonly employment: string };
  readonly property: PropertyInput;
  readonly loan: { readonly amountCents: number; readonly termYears: number; readonly rateType: RateType; readonly publicGuarantee: boolean };
};
export type ApproveIncome = { readonly type: 'ApproveIncome'; readonly verifiedMonthlyNetCents: number; readonly note?: string };
export type LockRate = { readonly type: 'LockRate'; readonly lockDays: number };
export type ChangeRate = { readonly type: 'ChangeRate'; readonly annualRate: AnnualRate; readonly reason: string };
export type UpdatePropertyDetails = { readonly type: 'UpdatePropertyDetails'; readonly property: PropertyInput };
export type WithdrawApplication = { readonly type: 'WithdrawApplication'; readonly reason?: string };
/** Issued by the lock's deadline; `expiresAt` names the lock it means, so a relock is left alone. */
export type ExpireRateLock = { readonly type: 'ExpireRateLock'; readonly expiresAt: string };
/** Issued by the finalization saga once the bank has booked the mortgage. */
export type ApproveApplication = { readonly type: 'ApproveApplication'; readonly contractNumber: string };
/** Issued by the saga when a check or the bank refuses. */
export type RejectApplication = { readonly type: 'RejectApplication'; readonly reason: string };

export type ApplicationCommand =
  | SubmitApplication
  | ApproveIncome
  | LockRate
  | ChangeRate
  | ExpireRateLock
  | UpdatePropertyDetails
  | WithdrawApplication
  | ApproveApplication
  | RejectApplication;

// ---- state: a union tagged by status ----

export type RateLock = { readonly annualRate: AnnualRate; readonly lockedAt: string; readonly expiresAt: string };

export type ApplicationFile = {
  readonly applicationId: string;
  readonly applicant: Applicant;
  readonly income: Income;
  readonly property: Property;
  readonly loan: Loan;
  readonly submittedAt: string;
  readonly verifiedMonthlyNetCents?: number;
  /** The rate that applies now: the locked one, or the one an operator set since. */
  readonly annualRate?: AnnualRate;
  readonly rateLock?: RateLock;
  readonly updatedAt: string;
};

export type ApplicationState =
  | { readonly status: 'none' }
  | { readonly status: 'processing'; readonly file: ApplicationFile }
  | { readonly status: 'approved'; readonly file: ApplicationFile; readonly contractNumber: string }
  | { readonly status: 'rejected'; readonly file: ApplicationFile; readonly reason: string }
  | { readonly status: 'withdrawn'; readonly file: ApplicationFile; readonly reason: string | null };

export type ApplicationStatus = ApplicationState['status'];

/** What the bank's configuration sets for the applications it takes. */
export type ApplicationLimits = {
  /** The smallest loan granted: below it an application is refused as implausible. */
  readonly minLoanCents: number;
};

export type DecisionContext = { readonly now: Date; readonly rateTable: RateTable; readonly limits: ApplicationLimits };

// ---- limits ----

export const minTermYears = 5;
export const maxTermYears = 40;
export const maxLtvBps = 8_000;
export const maxGuaranteedLtvBps = 10_000;
export const defaultLockDays = 30;
export const maxLockDays = 90;
/** One billion euros: above any mortgage, and it keeps amount × 10 000 an exact double. */
export const maxAmountCents = 100_000_000_000;
/** The longest free text (a reason, a name) a command carries. */
export const maxTextLength = 200;
const phonePattern = /^\+?[0-9 ]{6,20}$/;
const provincePattern = /^[A-Z]{2}$/;
const isoDatePattern = /^\d{4}-\d{2}-\d{2}$/;
const dayMs = 86_400_000;

// ---- decide ----

function decide(command: ApplicationCommand, state: ApplicationState, context: DecisionContext): ApplicationEvent[] {
  const at = context.now.toISOString();
  if (command.type === 'SubmitApplication') return submit(command, state, at, context.limits);
  if (state.status === 'none') throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');

  switch (command.type) {
    case 'ApproveIncome': {
      requireProcessing(state, 'approve the income of');
      const errors: FieldError[] = [];
      requirePositiveCents(command.verifiedMonthlyNetCents, 'verifiedMonthlyNet', errors);
      const note = optionalText(command.note, 'note', errors);
      if (errors.length > 0) throw invalidInput(errors);
      return [{ type: 'IncomeApproved', data: { verifiedMonthlyNetCents: command.verifiedMonthlyNetCents, note, approvedAt: at } }];
    }
    case 'LockRate': {
      const file = requireProcessing(state, 'lock the rate of');
      if (!Number.isInteger(command.lockDays) || command.lockDays < 1 || command.lockDays > maxLockDays) {
        throw invalidInput([{ path: 'lockDays', message: `must be a whole number of days from 1 to ${maxLockDays}` }]);
      }
      if (file.rateLock && Date.parse(file.rateLock.expiresAt) > context.now.getTime()) {
        throw new DomainError('rule', 'RATE_ALREADY_LOCKED', `the rate is locked until ${file.rateLock.expiresAt}`);
      }
      const annualRate = publishedRateFor(context.rateTable, {
        rateType: file.loan.rateType,
        termYears: file.loan.termYears,
        ltvBps: loanToValueBps(file.loan.amountCents, file.property.valueCents),
      });
      if (annualRate === undefined) {
        throw new DomainError('rule', 'NO_PUBLISHED_RATE', 'no published rate applies to this loan');
      }
      const expiresAt = new Date(context.now.getTime() + command.lockDays * dayMs).toISOString();
      return [{ type: 'InterestRateLocked', data: { annualRate, lockDays: command.lockDays, lockedAt: at, expiresAt } }];
    }
    case 'ChangeRate': {
      const file = requireProcessing(state, 'change the rate of');
      const errors: FieldError[] = [];
      const rateProblem = annualRateProblem(command.annualRate);
      if (rateProblem !== undefined) errors.push({ path: 'annualRate', message: rateProblem });
      const reason = requiredText(command.reason, 'reason', errors);
      if (errors.length > 0) throw invalidInput(errors);
      return [
        {
          type: 'InterestRateChanged',
          data: { annualRate: command.annualRate, previousAnnualRate: file.annualRate ?? null, reason, changedAt: at },
        },
      ];
    }
    case 'ExpireRateLock': {
      const file = requireProcessing(state, 'expire the rate lock of');
      const lock = file.rateLock;
      if (!lock || lock.expiresAt !== command.expiresAt || Date.parse(lock.expiresAt) > context.now.getTime()) {
        throw new DomainError('rule', 'RATE_LOCK_NOT_EXPIRED', 'this rate lock has not expired, or was replaced');
      }
      return [{ type: 'InterestRateLockExpired', data: { annualRate: lock.annualRate, lockedAt: lock.lockedAt, expiresAt: lock.expiresAt, expiredAt: at } }];
    }
    case 'UpdatePropertyDetails': {
      const file = requireProcessing(state, 'change the property of');
      const errors: FieldError[] = [];
      const property = validProperty(command.property, 'property', errors);
      if (errors.length > 0 || !property) throw invalidInput(errors);
      requireLoanToValue(file.loan, property, 'property.value');
      return [{ type: 'PropertyDetailsUpdated', data: { property, updatedAt: at } }];
    }
    case 'WithdrawApplication': {
      if (state.status === 'approved') {
        throw new DomainError('rule', 'APPLICATION_APPROVED', 'an approved application cannot be withdrawn');
      }
      requireProcessing(state, 'withdraw');
      const errors: FieldError[] = [];
      const reason = optionalText(command.reason, 'reason', errors);
      if (errors.length > 0) throw invalidInput(errors);
      return [{ type: 'ApplicationWithdrawn', data: { reason, withdrawnAt: at } }];
    }
    case 'ApproveApplication': {
      requireProcessing(state, 'approve');
      const errors: FieldError[] = [];
      const contractNumber = requiredText(command.contractNumber, 'contractNumber', errors);
      if (errors.length > 0) throw invalidInput(errors);
      return [{ type: 'ApplicationApproved', data: { contractNumber, approvedAt: at } }];
    }
    case 'RejectApplication': {
      requireProcessing(state, 'reject');
      const errors: FieldError[] = [];
      const reason = requiredText(command.reason, 'reason', errors);
      if (errors.length > 0) throw invalidInput(errors);
      return [{ type: 'ApplicationRejected', data: { reason, rejectedAt: at } }];
    }
    default:
      return assertNever(command);
  }
}

function submit(command: SubmitApplication, state: ApplicationState, at: string, limits: ApplicationLimits): ApplicationEvent[] {
  if (state.status !== 'none') {
    throw new DomainError('conflict', 'APPLICATION_EXISTS', `application ${command.applicationId} already exists`);
  }
  const errors: FieldError[] = [];
  const applicant = validApplicant(command.applicant, errors);
  const income = validIncome(command.income, errors);
  const property = validProperty(command.property, 'property', errors);
  const loan = command.loan;
  if (Number.isSafeInteger(loan.amountCents) && loan.amountCents > 0 && loan.amountCents < limits.minLoanCents) {
    errors.push({ path: 'loan.amount', message: `must be at least ${limits.minLoanCents / 100} euros, the smallest mortgage granted` });
  } else {
    requirePositiveCents(loan.amountCents, 'loan.amount', errors);
  }
  if (!Number.isInteger(loan.termYears) || loan.termYears < minTermYears || loan.termYears > maxTermYears) {
    errors.push({ path: 'loan.termYears', message: `must be a whole number of years from ${minTermYears} to ${maxTermYears}` });
  }
  if (loan.rateType !== 'fixed' && loan.rateType !== 'variable') {
    errors.push({ path: 'loan.rateType', message: 'must be fixed or variable' });
  }
  if (errors.length > 0 || !applicant || !income || !property) throw invalidInput(errors);
  const validLoan: Loan = {
    amountCents: loan.amountCents,
    termYears: loan.termYears,
    rateType: loan.rateType,
    publicGuarantee: loan.publicGuarantee,
  };
  requireLoanToValue(validLoan, property, 'loan.amount');
  return [
    {
      type: 'MortgageApplicationSubmitted',
      data: { applicationId: command.applicationId, applicant, income, property, loan: validLoan, submittedAt: at },
    },
  ];
}

function requireProcessing(state: ApplicationState, action: string): ApplicationFile {
  if (state.status === 'processing') return state.file;
  if (state.status === 'none') throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
  throw new DomainError('rule', 'APPLICATION_CLOSED', `cannot ${action} an application that is ${state.status}`);
}

function requireLoanToValue(loan: Loan, property: Property, path: string): void {
  const cap = loan.publicGuarantee ? maxGuaranteedLtvBps : maxLtvBps;
  const ltv = loanToValueBps(loan.amountCents, property.valueCents);
  // Integers below 2^53 on both sides (amounts are capped), so the comparison is exact.
  if (loan.amountCents * 10_000 > cap * property.valueCents) {
    const message = `the loan is ${(ltv / 100).toFixed(2)} % of the property value; at most ${cap / 100} % is allowed${
      loan.publicGuarantee ? '' : ' without a public guarantee'
    }`;
    throw new DomainError('rule', 'LOAN_TO_VALUE_EXCEEDED', message, [{ path, message }]);
  }
}

// ---- field validation: each helper records what is wrong under its request path ----

function requirePositiveCents(cents: number, path: string, errors: FieldError[]): void {
  if (!Number.isSafeInteger(cents) || cents <= 0 || cents > maxAmountCents) {
    errors.push({ path, message: `must be a positive amount of euros up to ${maxAmountCents / 100}` });
  }
}

function requiredText(value: string, path: string, errors: FieldError[]): string {
  const text = value.trim();
  if (text.length === 0 || text.length > maxTextLength) {
    errors.push({ path, message: `must be 1 to ${maxTextLength} characters` });
  }
  return text;
}

function optionalText(value: string | undefined, path: string, errors: FieldError[]): string | null {
  if (value === undefined || value.trim() === '') return null;
  return requiredText(value, path, errors);
}

function validApplicant(applicant: Applicant, errors: FieldError[]): Applicant | undefined {
  const before = errors.length;
  const firstName = requiredText(applicant.firstName, 'applicant.firstName', errors);
  const lastName = requiredText(applicant.lastName, 'applicant.lastName', errors);
  const taxCode = checkTaxCode(applicant.taxCode);
  if (!taxCode.valid) errors.push({ path: 'applicant.taxCode', message: taxCode.message });
  const email = applicant.email.trim().toLowerCase();
  if (!isEmailAddress(email)) {
    errors.push({ path: 'applicant.email', message: 'must be one bare email address (name@example.com): no display name, quotes, spaces or second address' });
  }
  const phone = applicant.phone?.trim();
  if (phone !== undefined && !phonePattern.test(phone)) {
    errors.push({ path: 'applicant.phone', message: 'must be a phone number of 6 to 20 digits' });
  }
  const birthDate = applicant.birthDate;
  if (birthDate !== undefined) {
    const [year, month, day] = birthDate.split('-').map(Number);
    const isDate = isoDatePattern.test(birthDate) && new Date(`${birthDate}T00:00:00Z`).getUTCDate() === day;
    if (!isDate) {
      errors.push({ path: 'applicant.birthDate', message: 'must be a date (YYYY-MM-DD)' });
    } else if (taxCode.valid) {
      const coded = taxCode.birthDate;
      if (year! % 100 !== coded.yearTwoDigits || month !== coded.month || day !== coded.day) {
        errors.push({ path: 'applicant.birthDate', message: 'does not match the birth date in the tax code' });
      }
    }
  }
  if (errors.length > before || !taxCode.valid) return undefined;
  return {
    firstName,
    lastName,
    taxCode: taxCode.normalized,
    email,
    ...(phone !== undefined ? { phone } : {}),
    ...(birthDate !== undefined ? { birthDate } : {}),
  };
}

function validIncome(income: SubmitApplication['income'], errors: FieldError[]): Income | undefined {
  const before = errors.length;
  requirePositiveCents(income.monthlyNetCents, 'income.monthlyNet', errors);
  if (!Number.isSafeInteger(income.monthlyDebtsCents) || income.monthlyDebtsCents < 0 || income.monthlyDebtsCents > maxAmountCents) {
    errors.push({ path: 'income.monthlyDebts', message: 'must be zero or a positive amount of euros' });
  }
  const employment = employmentKinds.find((kind) => kind === income.employment);
  if (!employment) errors.push({ path: 'income.employment', message: `must be one of ${employmentKinds.join(', ')}` });
  if (errors.length > before || !employment) return undefined;
  return { monthlyNetCents: income.monthlyNetCents, monthlyDebtsCents: income.monthlyDebtsCents, employment };
}

function validProperty(property: PropertyInput, path: string, errors: FieldError[]): Property | undefined {
  const before = errors.length;
  requirePositiveCents(property.valueCents, `${path}.value`, errors);
  const region = canonicalRegion(property.region);
  if (!region) errors.push({ path: `${path}.region`, message: 'must be an Italian region' });
  const province = property.province?.trim().toUpperCase();
  if (province !== undefined && !provincePattern.test(province)) {
    errors.push({ path: `${path}.province`, message: 'must be a two-letter province code' });
  }
  const type = property.type === undefined ? undefined : requiredText(property.type, `${path}.type`, errors);
  const energyClass = energyClasses.find((known) => known === (property.energyClass ?? 'unknown'));
  if (!energyClass) errors.push({ path: `${path}.energyClass`, message: `must be one of ${energyClasses.join(', ')}` });
  if (errors.length > before || !region || !energyClass) return undefined;
  return {
    valueCents: property.valueCents,
    region,
    ...(province !== undefined ? { province } : {}),
    ...(type !== undefined ? { type } : {}),
    energyClass,
  };
}

// ---- evolve ----

function evolve(state: ApplicationState, event: ApplicationEvent): ApplicationState {
  if (event.type === 'MortgageApplicationSubmitted') {
    const { submittedAt, ...submitted } = event.data;
    return { status: 'processing', file: { ...submitted, submittedAt, updatedAt: submittedAt } };
  }
  if (state.status === 'none') return state;
  const file = state.file;
  switch (event.type) {
    case 'IncomeApproved':
      return { ...state, file: { ...file, verifiedMonthlyNetCents: event.data.verifiedMonthlyNetCents, updatedAt: event.data.approvedAt } };
    case 'InterestRateLocked': {
      const { annualRate, lockedAt, expiresAt } = event.data;
      return { ...state, file: { ...file, annualRate, rateLock: { annualRate, lockedAt, expiresAt }, updatedAt: lockedAt } };
    }
    case 'InterestRateChanged': {
      const { annualRate, changedAt } = event.data;
      // A lock keeps its expiry and now holds the rate the operator set.
      const rateLock = file.rateLock ? { ...file.rateLock, annualRate } : undefined;
      return { ...state, file: { ...file, annualRate, ...(rateLock ? { rateLock } : {}), updatedAt: changedAt } };
    }
    case 'InterestRateLockExpired': {
      // The lapsed lock's rate stays on file as the last rate offered; a relock takes the published one.
      const { rateLock: _lapsed, ...rest } = file;
      return { ...state, file: { ...rest, updatedAt: event.data.expiredAt } };
    }
    case 'PropertyDetailsUpdated':
      return { ...state, file: { ...file, property: event.data.property, updatedAt: event.data.updatedAt } };
    case 'ApplicationWithdrawn':
      return { status: 'withdrawn', file: { ...file, updatedAt: event.data.withdrawnAt }, reason: event.data.reason };
    case 'ApplicationApproved':
      return { status: 'approved', file: { ...file, updatedAt: event.data.approvedAt }, contractNumber: event.data.contractNumber };
    case 'ApplicationRejected':
      return { status: 'rejected', file: { ...file, updatedAt: event.data.rejectedAt }, reason: event.data.reason };
    default:
      return assertNever(event);
  }
}

export const applicationDecider: Decider<ApplicationCommand, ApplicationEvent, ApplicationState, DecisionContext> = {
  initialState: { status: 'none' },
  decide,
  evolve,
};
