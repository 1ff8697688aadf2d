/**
 * The finalization saga, pure: what the Bank Gateway knows of one application, and
 * what it does about each thing it learns. It waits for an approved credit check,
 * validated documents and an unexpired rate lock, in any order; then asks the
 * mainframe to book, once. The mainframe's answer, a withdrawal or a rejection move it
 * on; a booking that lands after the applicant withdrew is cancelled.
 */
import type { AnnualRate } from '../../domain/annual-rate.ts';

export type RateLock = { readonly annualRate: AnnualRate; readonly expiresAt: string };

/**
 * The applicant as the submission carried them, sealed with their key: the saga only hands
 * it to the booking, which opens it for the tax code the mainframe books under. Kept sealed,
 * the saga's stored state holds nothing of the person once they are erased.
 */
export type SealedApplicant = { readonly $sealed: string };

export type SagaFacts = {
  readonly applicationId: string;
  readonly applicant: SealedApplicant;
  readonly amountCents: number;
  readonly termYears: number;
  readonly credit: 'pending' | 'approved' | 'rejected';
  readonly documents: 'pending' | 'validated' | 'rejected';
  readonly rateLock?: RateLock;
  /** The rate that applies now: the lock's, or one an operator set since. */
  readonly annualRate?: AnnualRate;
};

export type SagaState =
  | { readonly status: 'unknown' }
  | { readonly status: 'waiting'; readonly facts: SagaFacts }
  | { readonly status: 'finalizing'; readonly facts: SagaFacts; readonly idempotencyKey: string; readonly closedMeanwhile?: string }
  | { readonly status: 'booked'; readonly facts: SagaFacts; readonly contractNumber: string }
  | { readonly status: 'failed'; readonly facts: SagaFacts; readonly code: string }
  | { readonly status: 'closed'; readonly facts: SagaFacts; readonly reason: string }
  | { readonly status: 'cancelling' | 'cancelled'; readonly facts: SagaFacts; readonly contractNumber: string; readonly reason: string }
  | { readonly status: 'approved'; readonly facts: SagaFacts; readonly contractNumber: string };

export type SagaStatus = SagaState['status'];

/** What the saga hears: the other services' events, and the mainframe's answers to its own calls. */
export type SagaInput =
  | {
      readonly type: 'MortgageApplicationSubmitted';
      readonly applicationId: string;
      readonly applicant: SealedApplicant;
      readonly amountCents: number;
      readonly termYears: number;
    }
  | { readonly type: 'InterestRateLocked'; readonly annualRate: AnnualRate; readonly expiresAt: string }
  | { readonly type: 'InterestRateChanged'; readonly annualRate: AnnualRate }
  | { readonly type: 'InterestRateLockExpired'; readonly expiresAt: string }
  | { readonly type: 'CreditScoreApproved' }
  | { readonly type: 'CreditScoreRejected' }
  | { readonly type: 'DocumentsValidated' }
  | { readonly type: 'DocumentsRejected' }
  | { readonly type: 'ApplicationWithdrawn'; readonly reason: string }
  | { readonly type: 'ApplicationRejected'; readonly reason: string }
  | { readonly type: 'ApplicationApproved' }
  | { readonly type: 'BookingSucceeded'; readonly contractNumber: string }
  | { readonly type: 'BookingFailed'; readonly code: string }
  | { readonly type: 'BookingCancelled' };

export type SagaAction =
  | {
      readonly type: 'RequestFinalization';
      readonly idempotencyKey: string;
      readonly applicant: SealedApplicant;
      readonly amountCents: number;
      readonly annualRate: AnnualRate;
      readonly termMonths: number;
      readonly rateLockExpiresAt: string;
    }
  | { readonly type: 'CancelBooking'; readonly idempotencyKey: string; readonly contractNumber: string; readonly reason: string };

export type SagaStep = { readonly state: SagaState; readonly actions: readonly SagaAction[] };

export const initialSagaState: SagaState = { status: 'unknown' };

/** One booking per application: the key is the application id, so any retry of it is the same booking. */
export const idempotencyKeyFor = (applicationId: string): string => applicationId.replaceAll('-', '').toLowerCase();

function updateFacts(facts: SagaFacts, input: SagaInput): SagaFacts {
  switch (input.type) {
    case 'InterestRateLocked':
      return { ...facts, rateLock: { annualRate: input.annualRate, expiresAt: input.expiresAt }, annualRate: input.annualRate };
    case 'InterestRateChanged':
      return {
        ...facts,
        annualRate: input.annualRate,
        ...(facts.rateLock ? { rateLock: { ...facts.rateLock, annualRate: input.annualRate } } : {}),
      };
    case 'InterestRateLockExpired': {
      if (facts.rateLock?.expiresAt !== input.expiresAt) return facts;
      const { rateLock: _lapsed, ...rest } = facts;
      return rest;
    }
    case 'CreditScoreApproved':
      return { ...facts, credit: 'approved' };
    case 'CreditScoreRejected':
      return { ...facts, credit: 'rejected' };
    case 'DocumentsValidated':
      return { ...facts, documents: 'validated' };
    case 'DocumentsRejected':
      // Corrected documents may still be validated; only a validation unblocks the saga.
      return facts.documents === 'validated' ? facts : { ...facts, documents: 'rejected' };
    default:
      return facts;
  }
}

/** Ready to book: both checks passed and a lock holds at `now`. */
export function readyToBook(facts: SagaFacts, now: Date): boolean {
  return facts.credit === 'approved' && facts.documents === 'validated' && facts.rateLock !== undefined && Date.parse(facts.rateLock.expiresAt) > now.getTime();
}

const stay = (state: SagaState): SagaStep => ({ state, actions: [] });

export function reactToInput(state: SagaState, input: SagaInput, now: Date): SagaStep {
  if (state.status === 'unknown') {
    if (input.type !== 'MortgageApplicationSubmitted') return stay(state);
    const { applicationId, applicant, amountCents, termYears } = input;
    return stay({ status: 'waiting', facts: { applicationId, applicant, amountCents, termYears, credit: 'pending', documents: 'pending' } });
  }
  const facts = updateFacts(state.facts, input);
  switch (state.status) {
    case 'waiting': {
      if (input.type === 'ApplicationWithdrawn' || input.type === 'ApplicationRejected') {
        return stay({ status: 'closed', facts, reason: input.reason });
      }
      if (!readyToBook(facts, now)) return stay({ ...state, facts });
      const lock = facts.rateLock!;
      const idempotencyKey = idempotencyKeyFor(facts.applicationId);
      return {
        state: { status: 'finalizing', facts, idempotencyKey },
        actions: [
          {
            type: 'RequestFinalization',
            idempotencyKey,
            applicant: facts.applicant,
            amountCents: facts.amountCents,
            annualRate: facts.annualRate ?? lock.annualRate,
            termMonths: facts.termYears * 12,
            rateLockExpiresAt: lock.expiresAt,
          },
        ],
      };
    }
    case 'finalizing':
      switch (input.type) {
        case 'ApplicationWithdrawn':
        case 'ApplicationRejected':
          // The call is out and cannot be recalled: its answer decides what to undo.
          return stay({ ...state, facts, closedMeanwhile: input.reason });
        case 'BookingSucceeded':
          if (state.closedMeanwhile !== undefined) return cancel(facts, state.idempotencyKey, input.contractNumber, state.closedMeanwhile);
          return stay({ status: 'booked', facts, contractNumber: input.contractNumber });
        case 'BookingFailed':
          return stay({ status: 'failed', facts, code: input.code });
        default:
          return stay({ ...state, facts });
      }
    case 'booked':
      switch (input.type) {
        case 'ApplicationApproved':
          return stay({ status: 'approved', facts, contractNumber: state.contractNumber });
        case 'ApplicationWithdrawn':
        case 'ApplicationRejected':
          // The applicant withdrew before the booking reached the application.
          return cancel(facts, idempotencyKeyFor(facts.applicationId), state.contractNumber, input.reason);
        default:
          return stay({ ...state, facts });
      }
    case 'cancelling':
      return input.type === 'BookingCancelled' ? stay({ ...state, status: 'cancelled', facts }) : stay({ ...state, facts });
    case 'failed':
    case 'closed':
    case 'cancelled':
    case 'approved':
      return stay({ ...state, facts });
  }
}

function cancel(facts: SagaFacts, idempotencyKey: string, contractNumber: string, reason: string): SagaStep {
  return {
    state: { status: 'cancelling', facts, contractNumber, reason },
    actions: [{ type: 'CancelBooking', idempotencyKey, contractNumber, reason }],
  };
}
