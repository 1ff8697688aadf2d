import { createHmac } from 'node:crypto';
import { installmentCents } from '../../domain/amortization.ts';
import type { AnnualRate } from '../../domain/annual-rate.ts';
import { loanToValueBps } from '../../domain/rates.ts';
import type { employmentKinds } from '../application/index.ts';

/** Risk bands shared by every bureau once normalised: A is the best, E the worst. */
export const riskBands = ['A', 'B', 'C', 'D', 'E'] as const;
export type RiskBand = (typeof riskBands)[number];

export type BureauKind = 'crif' | 'experian';

/**
 * A bureau's answer, normalised. `score` stays on the bureau's own scale (CRIF
 * 300..850, Experian 0..999), so scores of different bureaus are not comparable;
 * the policy decides on `band` only.
 */
export type BureauReport = {
  readonly bureau: BureauKind;
  readonly modelVersion: string;
  readonly score: number;
  readonly band: RiskBand;
  readonly reportId: string;
};

export type EmploymentKind = (typeof employmentKinds)[number];

export type CreditInputs = {
  readonly applicationId: string;
  readonly taxCode: string;
  readonly monthlyNetCents: number;
  readonly monthlyDebtsCents: number;
  readonly employment: EmploymentKind;
  readonly loanAmountCents: number;
  readonly termYears: number;
  /** The published rate the new instalment is computed with. */
  readonly annualRate: AnnualRate;
  readonly propertyValueCents: number;
  /** A public guarantee (e.g. Fondo Garanzia Prima Casa) lifts the loan-to-value cap. */
  readonly publicGuarantee: boolean;
};

export type CreditPolicy = {
  readonly modelVersion: string;
  /** Cap on (new instalment + existing debts) / net income, in basis points. */
  readonly maxDtiBps: number;
  readonly maxLtvBps: number;
  readonly maxGuaranteedLtvBps: number;
  readonly approvedBands: readonly RiskBand[];
};

export const defaultCreditPolicy: CreditPolicy = {
  // 2: the same rules, with the rate among the hashed inputs as a decimal percentage (annualRate) instead of basis points.
  modelVersion: 'mutuo-credit-policy-2',
  maxDtiBps: 3500,
  maxLtvBps: 8000,
  maxGuaranteedLtvBps: 10000,
  approvedBands: ['A', 'B', 'C'],
};

/** Stable codes: clients and projections may switch on them. */
export type CreditReasonCode = 'SCORE_BAND' | 'DEBT_TO_INCOME' | 'LOAN_TO_VALUE';

export type CreditReason = { readonly code: CreditReasonCode; readonly message: string };

/**
 * `reasons` lists every failed rule, in the order score, DTI, LTV. An approval
 * carries no reasons, so `outcome === 'approved'` iff `reasons.length === 0`.
 */
export type CreditDecision = {
  readonly outcome: 'approved' | 'rejected';
  readonly reasons: readonly CreditReason[];
  readonly dtiBps: number;
  readonly ltvBps: number;
  readonly installmentCents: number;
};

function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  return (numerator + denominator - 1n) / denominator;
}

/** Debt-to-income in basis points, rounded up so that the cap is never passed by rounding. */
export function debtToIncomeBps(monthlyCommitmentsCents: number, monthlyNetCents: number): number {
  return Number(ceilDiv(BigInt(monthlyCommitmentsCents) * 10_000n, BigInt(monthlyNetCents)));
}

function percent(bps: number): string {
  return `${(bps / 100).toFixed(2)} %`;
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

/**
 * Decides a credit check. Pure: the same inputs, report and policy always give
 * the same decision. Inputs that the application service has already validated
 * (positive income and property value, integer cents) throw a RangeError when
 * broken, since they mean a bug upstream rather than a rejection.
 */
export function decideCredit(inputs: CreditInputs, report: BureauReport, policy: CreditPolicy): CreditDecision {
  assertPositiveInteger('monthlyNetCents', inputs.monthlyNetCents);
  assertPositiveInteger('propertyValueCents', inputs.propertyValueCents);
  if (!Number.isSafeInteger(inputs.monthlyDebtsCents) || inputs.monthlyDebtsCents < 0) {
    throw new RangeError(`monthlyDebtsCents must be a non-negative integer, got ${inputs.monthlyDebtsCents}`);
  }

  const installment = installmentCents({ principalCents: inputs.loanAmountCents, annualRate: inputs.annualRate, periods: 12 * inputs.termYears });
  const dtiBps = debtToIncomeBps(installment + inputs.monthlyDebtsCents, inputs.monthlyNetCents);
  const ltvBps = loanToValueBps(inputs.loanAmountCents, inputs.propertyValueCents);
  const ltvCapBps = inputs.publicGuarantee ? policy.maxGuaranteedLtvBps : policy.maxLtvBps;

  const reasons: CreditReason[] = [];
  if (!policy.approvedBands.includes(report.band)) {
    reasons.push({
      code: 'SCORE_BAND',
      message: `${report.bureau} risk band ${report.band} is not among the approved bands ${policy.approvedBands.join(', ')}`,
    });
  }
  if (dtiBps > policy.maxDtiBps) {
    reasons.push({ code: 'DEBT_TO_INCOME', message: `debt-to-income ${percent(dtiBps)} is over the ${percent(policy.maxDtiBps)} cap` });
  }
  if (ltvBps > ltvCapBps) {
    const cap = `${percent(ltvCapBps)}${inputs.publicGuarantee ? ' guaranteed' : ''} cap`;
    reasons.push({ code: 'LOAN_TO_VALUE', message: `loan-to-value ${percent(ltvBps)} is over the ${cap}` });
  }

  return {
    outcome: reasons.length === 0 ? 'approved' : 'rejected',
    reasons,
    dtiBps,
    ltvBps,
    installmentCents: installment,
  };
}

/** JSON with object keys sorted at every level, so equal data always serialises to the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * HMAC-SHA256 (hex) of the canonical JSON of the inputs, under `key`: proves later, to whoever
 * holds the key, which facts a decision was made on. Keyed, because the inputs hold the tax
 * code: a plain hash would let anyone confirm a guessed tax code against the stored event,
 * long after the person's erasure.
 */
export function creditInputsHash(inputs: CreditInputs, key: string): string {
  return createHmac('sha256', key).update(canonicalJson(inputs)).digest('hex');
}
