import { annualRatePercent, type AnnualRate } from '../../domain/annual-rate.ts';
import { centsToEuros } from '../../domain/money.ts';
import type { ApplicationFile, ApplicationState } from './decider.ts';

/** The application in the units of the HTTP contract: euros and percentages. */
export function applicationFileView(file: ApplicationFile) {
  return {
    applicationId: file.applicationId,
    applicant: file.applicant,
    income: {
      monthlyNet: centsToEuros(file.income.monthlyNetCents),
      monthlyDebts: centsToEuros(file.income.monthlyDebtsCents),
      employment: file.income.employment,
      ...(file.verifiedMonthlyNetCents !== undefined ? { verifiedMonthlyNet: centsToEuros(file.verifiedMonthlyNetCents) } : {}),
    },
    property: {
      value: centsToEuros(file.property.valueCents),
      region: file.property.region,
      ...(file.property.province !== undefined ? { province: file.property.province } : {}),
      ...(file.property.type !== undefined ? { type: file.property.type } : {}),
      energyClass: file.property.energyClass,
    },
    loan: loanView(file),
    ...(file.annualRate !== undefined ? { rate: rateView(file.annualRate, file) } : {}),
    submittedAt: file.submittedAt,
    updatedAt: file.updatedAt,
  };
}

function loanView(file: ApplicationFile) {
  return {
    amount: centsToEuros(file.loan.amountCents),
    termYears: file.loan.termYears,
    rateType: file.loan.rateType,
    publicGuarantee: file.loan.publicGuarantee,
  };
}

function rateView(annualRate: AnnualRate, file: ApplicationFile) {
  return {
    annualRate: annualRatePercent(annualRate),
    ...(file.rateLock ? { lockedAt: file.rateLock.lockedAt, lockExpiresAt: file.rateLock.expiresAt } : {}),
  };
}

function outcome(state: Exclude<ApplicationState, { status: 'none' }>) {
  switch (state.status) {
    case 'approved':
      return { contractNumber: state.contractNumber };
    case 'rejected':
      return { reason: state.reason };
    case 'withdrawn':
      return { reason: state.reason };
    case 'processing':
      return {};
  }
}

/** The whole file as of a version, for operators and the time-travel query. */
export function applicationStateView(state: Exclude<ApplicationState, { status: 'none' }>, version: number) {
  return { status: state.status, version, ...outcome(state), ...applicationFileView(state.file) };
}
