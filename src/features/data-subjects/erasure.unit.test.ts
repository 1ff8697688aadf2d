import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { StoredEvent } from '../../platform/eventstore/types.ts';
import { relationshipOf, submissionInFlightMs } from './erasure.ts';

const now = new Date('2040-06-01T12:00:00.000Z');
const yearsBefore = (years: number) => new Date(Date.UTC(now.getUTCFullYear() - years, now.getUTCMonth(), now.getUTCDate(), 12)).toISOString();

let position = 0;
function stored(streamId: string, version: number, type: string, data: unknown, at: string): StoredEvent {
  return {
    eventId: randomUUID(),
    streamId,
    streamVersion: version,
    position: ++position,
    type,
    schemaVersion: 1,
    data,
    metadata: { correlationId: randomUUID(), causationId: null, actor: 'dev:giulia', occurredAt: at },
    recordedAt: new Date(at),
  };
}

/** An application stream: submitted at `at`, then closed as `outcome` at `closedAt`. */
function application(at: string, outcome?: { type: 'approved' | 'rejected' | 'withdrawn'; at: string }, termYears = 25) {
  const streamId = `application-${randomUUID()}`;
  const events = [
    stored(
      streamId,
      1,
      'MortgageApplicationSubmitted',
      {
        applicationId: streamId.slice('application-'.length),
        applicant: { firstName: 'Giulia', lastName: 'Bianchi', taxCode: 'BNCGLI90C55F205Z', email: 'giulia@example.com' },
        income: { monthlyNetCents: 320_000, monthlyDebtsCents: 0, employment: 'permanent' },
        property: { valueCents: 30_000_000, region: 'Lombardia', energyClass: 'B' },
        loan: { amountCents: 20_000_000, termYears, rateType: 'fixed', publicGuarantee: false },
        submittedAt: at,
      },
      at,
    ),
  ];
  if (outcome?.type === 'approved') events.push(stored(streamId, 2, 'ApplicationApproved', { contractNumber: 'MU1', approvedAt: outcome.at }, outcome.at));
  if (outcome?.type === 'rejected') events.push(stored(streamId, 2, 'ApplicationRejected', { reason: 'income too low', rejectedAt: outcome.at }, outcome.at));
  if (outcome?.type === 'withdrawn') events.push(stored(streamId, 2, 'ApplicationWithdrawn', { reason: null, withdrawnAt: outcome.at }, outcome.at));
  return { stream: { streamId, recordedAt: new Date(at) }, events };
}

describe('the relationship an erasure weighs', () => {
  it('is ongoing while an application is in processing', () => {
    assert.deepEqual(relationshipOf([application(yearsBefore(20), { type: 'rejected', at: yearsBefore(20) }), application(yearsBefore(1))], now), {
      ongoing: true,
    });
  });

  it('is ongoing while an approved mortgage runs, and ends with its term', () => {
    assert.deepEqual(relationshipOf([application(yearsBefore(5), { type: 'approved', at: yearsBefore(5) })], now), { ongoing: true });
    const approvedAt = yearsBefore(30);
    assert.deepEqual(relationshipOf([application(approvedAt, { type: 'approved', at: approvedAt }, 20)], now), { ongoing: false, endedAt: yearsBefore(10) });
  });

  it('ended when the last rejected or withdrawn application closed', () => {
    const first = application(yearsBefore(12), { type: 'rejected', at: yearsBefore(12) });
    const last = application(yearsBefore(3), { type: 'withdrawn', at: yearsBefore(3) });
    assert.deepEqual(relationshipOf([last, first], now), { ongoing: false, endedAt: yearsBefore(3) });
  });

  it('takes a stream still empty for a submission on its way, unless it is long past', () => {
    const closed = application(yearsBefore(12), { type: 'withdrawn', at: yearsBefore(12) });
    const onItsWay = { stream: { streamId: `application-${randomUUID()}`, recordedAt: new Date(now.getTime() - 1_000) }, events: [] };
    assert.deepEqual(relationshipOf([closed, onItsWay], now), { ongoing: true });
    const crashed = { stream: { ...onItsWay.stream, recordedAt: new Date(now.getTime() - submissionInFlightMs - 1) }, events: [] };
    assert.deepEqual(relationshipOf([closed, crashed], now), { ongoing: false, endedAt: yearsBefore(12) });
  });

  it('has nothing to retain where nothing of the person is held', () => {
    assert.deepEqual(relationshipOf([], now), { ongoing: false, endedAt: new Date(0).toISOString() });
  });
});
