import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { annualRateFromUnits } from '../../domain/annual-rate.ts';
import { idempotencyKeyFor, initialSagaState, reactToInput, type SagaAction, type SagaInput, type SagaState } from './saga.ts';

const applicationId = '0b9d6c1e-3f4a-4c2b-9a77-1d2e3f4a5b6c';
const now = new Date('2026-11-23T10:00:00Z');
const inAMonth = '2026-12-23T10:00:00.000Z';
const yesterday = '2026-11-22T10:00:00.000Z';

const submitted: SagaInput = {
  type: 'MortgageApplicationSubmitted',
  applicationId,
  applicant: { $sealed: 'v1.subject.iv.ciphertext' },
  amountCents: 20_000_000,
  termYears: 25,
};
const locked = (expiresAt = inAMonth, annualRate = '3.2'): SagaInput => ({ type: 'InterestRateLocked', annualRate, expiresAt });
const creditApproved: SagaInput = { type: 'CreditScoreApproved' };
const documentsValidated: SagaInput = { type: 'DocumentsValidated' };

function run(inputs: readonly SagaInput[], at = now): { state: SagaState; actions: SagaAction[] } {
  let state = initialSagaState;
  const actions: SagaAction[] = [];
  for (const input of inputs) {
    const step = reactToInput(state, input, at);
    state = step.state;
    actions.push(...step.actions);
  }
  return { state, actions };
}

describe('the finalization saga', () => {
  it('asks the mainframe once credit, documents and a lock are all in, whatever their order', () => {
    for (const order of [
      [creditApproved, documentsValidated, locked()],
      [locked(), documentsValidated, creditApproved],
      [documentsValidated, locked(), creditApproved],
    ]) {
      const { state, actions } = run([submitted, ...order]);
      assert.equal(state.status, 'finalizing');
      assert.deepEqual(actions, [
        {
          type: 'RequestFinalization',
          idempotencyKey: idempotencyKeyFor(applicationId),
          applicant: { $sealed: 'v1.subject.iv.ciphertext' },
          amountCents: 20_000_000,
          annualRate: '3.2',
          termMonths: 300,
          rateLockExpiresAt: inAMonth,
        },
      ]);
    }
  });

  it('books at the rate an operator set after the lock', () => {
    const { actions } = run([submitted, locked(), { type: 'InterestRateChanged', annualRate: '2.875' }, creditApproved, documentsValidated]);
    assert.equal(actions[0]?.type === 'RequestFinalization' && actions[0].annualRate, '2.875');
  });

  it('waits for a relock when the lock lapsed, whether or not the expiry was announced yet', () => {
    const lapsed = run([submitted, locked(yesterday), creditApproved, documentsValidated]);
    assert.equal(lapsed.state.status, 'waiting');
    assert.deepEqual(lapsed.actions, []);
    const announced = run([submitted, locked(), { type: 'InterestRateLockExpired', expiresAt: inAMonth }, creditApproved, documentsValidated]);
    assert.equal(announced.state.status, 'waiting');
    const relocked = run([
      submitted,
      locked(yesterday),
      creditApproved,
      documentsValidated,
      { type: 'InterestRateLockExpired', expiresAt: yesterday },
      locked(),
    ]);
    assert.equal(relocked.state.status, 'finalizing');
    assert.equal(relocked.actions.length, 1);
  });

  it('ignores the expiry of a lock that was replaced', () => {
    const { state } = run([submitted, locked(yesterday), locked(), { type: 'InterestRateLockExpired', expiresAt: yesterday }]);
    assert.equal(state.status === 'waiting' && state.facts.rateLock?.expiresAt, inAMonth);
  });

  it('takes corrected documents after a rejection', () => {
    const { state } = run([submitted, locked(), creditApproved, { type: 'DocumentsRejected' }, documentsValidated]);
    assert.equal(state.status, 'finalizing');
  });

  it('does nothing more for an application closed before the booking', () => {
    const { state, actions } = run([submitted, locked(), { type: 'ApplicationWithdrawn', reason: 'changed my mind' }, creditApproved, documentsValidated]);
    assert.equal(state.status, 'closed');
    assert.deepEqual(actions, []);
  });

  it('cancels a booking that lands after the applicant withdrew', () => {
    const key = idempotencyKeyFor(applicationId);
    const { state, actions } = run([
      submitted,
      locked(),
      creditApproved,
      documentsValidated,
      { type: 'ApplicationWithdrawn', reason: 'found a better offer' },
      { type: 'BookingSucceeded', contractNumber: 'MU0000000042' },
    ]);
    assert.equal(state.status, 'cancelling');
    assert.deepEqual(actions.slice(1), [{ type: 'CancelBooking', idempotencyKey: key, contractNumber: 'MU0000000042', reason: 'found a better offer' }]);
    const afterBooking = run([
      submitted,
      locked(),
      creditApproved,
      documentsValidated,
      { type: 'BookingSucceeded', contractNumber: 'MU0000000042' },
      { type: 'ApplicationWithdrawn', reason: 'found a better offer' },
      { type: 'BookingCancelled' },
    ]);
    assert.equal(afterBooking.state.status, 'cancelled');
    assert.equal(afterBooking.actions.filter((action) => action.type === 'CancelBooking').length, 1);
  });

  it('ends approved or failed on the booking outcome', () => {
    const ready = [submitted, locked(), creditApproved, documentsValidated];
    assert.equal(run([...ready, { type: 'BookingSucceeded', contractNumber: 'MU1' }, { type: 'ApplicationApproved' }]).state.status, 'approved');
    assert.equal(run([...ready, { type: 'BookingFailed', code: 'FUND' }]).state.status, 'failed');
  });

  it('property: in any order of any inputs, at most one booking is asked for, only when all three are in, and a cancel only follows a booking', () => {
    const input = fc.oneof(
      fc.constant<SagaInput>(creditApproved),
      fc.constant<SagaInput>({ type: 'CreditScoreRejected' }),
      fc.constant<SagaInput>(documentsValidated),
      fc.constant<SagaInput>({ type: 'DocumentsRejected' }),
      fc.constantFrom(inAMonth, yesterday).map((expiresAt) => locked(expiresAt)),
      fc.constantFrom(inAMonth, yesterday).map((expiresAt): SagaInput => ({ type: 'InterestRateLockExpired', expiresAt })),
      fc.integer({ min: 0, max: 200_000 }).map((units): SagaInput => ({ type: 'InterestRateChanged', annualRate: annualRateFromUnits(units, 4) })),
      fc.constant<SagaInput>({ type: 'ApplicationWithdrawn', reason: 'r' }),
      fc.constant<SagaInput>({ type: 'ApplicationRejected', reason: 'r' }),
      fc.constant<SagaInput>({ type: 'ApplicationApproved' }),
      fc.constant<SagaInput>({ type: 'BookingSucceeded', contractNumber: 'MU9' }),
      fc.constant<SagaInput>({ type: 'BookingFailed', code: 'FUND' }),
      fc.constant<SagaInput>({ type: 'BookingCancelled' }),
    );
    fc.assert(
      fc.property(fc.array(input, { maxLength: 30 }), (inputs) => {
        let state = reactToInput(initialSagaState, submitted, now).state;
        let requests = 0;
        let cancels = 0;
        let booked = false;
        for (const next of inputs) {
          const step = reactToInput(state, next, now);
          for (const action of step.actions) {
            if (action.type === 'RequestFinalization') {
              requests++;
              assert.ok(step.state.status === 'finalizing');
              const facts = step.state.facts;
              assert.equal(facts.credit, 'approved');
              assert.equal(facts.documents, 'validated');
              assert.ok(facts.rateLock && Date.parse(facts.rateLock.expiresAt) > now.getTime());
            } else {
              cancels++;
              assert.ok(booked || next.type === 'BookingSucceeded', 'a cancel follows a booking');
            }
          }
          if (state.status === 'finalizing' && next.type === 'BookingSucceeded') booked = true;
          state = step.state;
        }
        assert.ok(requests <= 1);
        assert.ok(cancels <= 1);
      }),
    );
  });
});
