import { annualRatePercent, type AnnualRate } from '../../domain/annual-rate.ts';
import { assertNever } from '../../domain/errors.ts';
import { centsToEuros } from '../../domain/money.ts';
import type { Sealed } from '../../privacy/sealing.ts';
import { sealedApplicant, type ApplicationFact } from './application-events.ts';

/** Free text about the applicant, as its event stored it: sealed, or in the clear where the event kept it so. */
export type StoredText = Sealed | string;

/**
 * What the customer view keeps of an application, in its own names: what the applicant's
 * answer is made of and nothing else. It is folded from the events by `customerViewAfter`,
 * never from the aggregate's state, so the write side can reshape its state without
 * touching a stored row. Personal data is kept as the events stored it, sealed: the
 * applicant's erasure leaves it unreadable, with nothing to scrub.
 */
export type CustomerViewDocument = CustomerViewFile &
  (
    | { readonly status: 'processing' }
    | { readonly status: 'approved'; readonly contractNumber: string }
    | { readonly status: 'rejected'; readonly reason: StoredText }
    | { readonly status: 'withdrawn'; readonly reason: StoredText | null }
  );

/** What every document holds, whatever the application's status. */
type CustomerViewFile = {
  readonly applicationId: string;
  readonly applicant: Sealed;
  readonly loan: {
    readonly amountCents: number;
    readonly termYears: number;
    readonly rateType: 'fixed' | 'variable';
    readonly publicGuarantee: boolean;
  };
  /** The rate that applies now: the one locked, or the one an operator set since. */
  readonly annualRate?: AnnualRate;
  readonly rateLock?: { readonly lockedAt: string; readonly expiresAt: string };
  readonly incomeApproved: boolean;
  readonly updatedAt: string;
};

/** The personal data of a document, opened (or read as erased): what its answer shows. */
export type OpenedPersonalData = {
  readonly applicant: { readonly firstName: string; readonly lastName: string };
  readonly reason: string | null;
};

/** A field's sealed form where its event stored one, else the value as the event reads. */
function storedText<Text extends string | null>(fact: ApplicationFact, field: string, value: Text): Text | Sealed {
  return fact.stored.sealed?.[field] ?? value;
}

/** The document after one more event of its application; undefined until the application is submitted. */
export function customerViewAfter(document: CustomerViewDocument | undefined, fact: ApplicationFact): CustomerViewDocument | undefined {
  const { event } = fact;
  if (event.type === 'MortgageApplicationSubmitted') {
    const { applicationId, loan, submittedAt } = event.data;
    return {
      applicationId,
      status: 'processing',
      applicant: sealedApplicant(fact.stored),
      loan: { amountCents: loan.amountCents, termYears: loan.termYears, rateType: loan.rateType, publicGuarantee: loan.publicGuarantee },
      incomeApproved: false,
      updatedAt: submittedAt,
    };
  }
  if (!document) return undefined;
  switch (event.type) {
    case 'IncomeApproved':
      return { ...document, incomeApproved: true, updatedAt: event.data.approvedAt };
    case 'InterestRateLocked': {
      const { annualRate, lockedAt, expiresAt } = event.data;
      return { ...document, annualRate, rateLock: { lockedAt, expiresAt }, updatedAt: lockedAt };
    }
    case 'InterestRateChanged':
      // A lock keeps its dates; the rate is now the operator's.
      return { ...document, annualRate: event.data.annualRate, updatedAt: event.data.changedAt };
    case 'InterestRateLockExpired': {
      // The lapsed lock's rate stays as the last one offered.
      const { rateLock: _lapsed, ...rest } = document;
      return { ...rest, updatedAt: event.data.expiredAt };
    }
    case 'PropertyDetailsUpdated':
      return { ...document, updatedAt: event.data.updatedAt };
    case 'ApplicationWithdrawn':
      return { ...withoutOutcome(document), status: 'withdrawn', reason: storedText(fact, 'reason', event.data.reason), updatedAt: event.data.withdrawnAt };
    case 'ApplicationApproved':
      return { ...withoutOutcome(document), status: 'approved', contractNumber: event.data.contractNumber, updatedAt: event.data.approvedAt };
    case 'ApplicationRejected':
      return { ...withoutOutcome(document), status: 'rejected', reason: storedText(fact, 'reason', event.data.reason), updatedAt: event.data.rejectedAt };
    default:
      return assertNever(event);
  }
}

/** The document without its status and what came with it, for the status that replaces them. */
function withoutOutcome(document: CustomerViewDocument): CustomerViewFile {
  const {
    status: _status,
    contractNumber: _contractNumber,
    reason: _reason,
    ...file
  } = document as CustomerViewFile & {
    status: string;
    contractNumber?: string;
    reason?: unknown;
  };
  return file;
}

/** The personal fields of a document as stored, for the vault to open: the applicant, and the reason where there is one. */
export function storedPersonalData(document: CustomerViewDocument): { readonly applicant: Sealed; readonly reason: StoredText | null | undefined } {
  return { applicant: document.applicant, reason: document.status === 'rejected' || document.status === 'withdrawn' ? document.reason : undefined };
}

function outcome(document: CustomerViewDocument, reason: string | null) {
  switch (document.status) {
    case 'approved':
      return { contractNumber: document.contractNumber };
    case 'rejected':
    case 'withdrawn':
      return { reason };
    case 'processing':
      return {};
  }
}

/** What the applicant reads (GET /api/applications/:id), in the units of the HTTP contract: euros and percentages. */
export function customerViewAnswer(document: CustomerViewDocument, version: number, personal: OpenedPersonalData) {
  const { loan, annualRate, rateLock } = document;
  return {
    applicationId: document.applicationId,
    status: document.status,
    version,
    applicant: { firstName: personal.applicant.firstName, lastName: personal.applicant.lastName },
    loan: { amount: centsToEuros(loan.amountCents), termYears: loan.termYears, rateType: loan.rateType, publicGuarantee: loan.publicGuarantee },
    ...(annualRate !== undefined
      ? { rate: { annualRate: annualRatePercent(annualRate), ...(rateLock ? { lockedAt: rateLock.lockedAt, lockExpiresAt: rateLock.expiresAt } : {}) } }
      : {}),
    steps: {
      submitted: true,
      incomeApproved: document.incomeApproved,
      rateLocked: rateLock !== undefined,
      decided: document.status !== 'processing',
    },
    ...outcome(document, personal.reason),
    updatedAt: document.updatedAt,
  };
}
