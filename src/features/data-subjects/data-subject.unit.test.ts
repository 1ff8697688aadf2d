import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { replay } from '../../domain/decider.ts';
import { DomainError } from '../../domain/errors.ts';
import { forDecider } from '../../domain/given-when-then.ts';
import {
  addCalendarYears,
  dataSubjectDecider,
  dataSubjectEventCatalog,
  dataSubjectStreamId,
  type DataSubjectCommand,
  type DataSubjectEvent,
  type ErasePersonalData,
} from './data-subject.ts';

const subjectId = '6b1d3c1e-2f4a-4c8e-9a7b-0d5e3f2a1c90';
const now = new Date('2036-06-01T12:00:00.000Z');
const retentionYears = 10;
const given = forDecider(dataSubjectDecider, { now, retentionYears, subjectId });

const streams = ['application-3f0b8c1e-6d1a-4b8e-9f1e-2a7c5d4e8b10'];
// Ended more than ten years before `now`: erasure is due.
const endedLongAgo = '2025-03-10T09:00:00.000Z';

// ---- commands ----

const placeHold = (reason = 'litigation 123/2035'): DataSubjectCommand => ({ type: 'PlaceLegalHold', reason });
const releaseHold = (reason?: string): DataSubjectCommand => ({ type: 'ReleaseLegalHold', ...(reason !== undefined ? { reason } : {}) });
const erase = (relationship: ErasePersonalData['relationship'] = { ongoing: false, endedAt: endedLongAgo }, onStreams = streams): DataSubjectCommand => ({
  type: 'ErasePersonalData',
  streams: onStreams,
  relationship,
});

// ---- events ----

const at = now.toISOString();
const holdPlaced = (reason = 'litigation 123/2035', placedAt = at): DataSubjectEvent => ({ type: 'LegalHoldPlaced', data: { reason, placedAt } });
const holdReleased = (reason: string | null = null): DataSubjectEvent => ({ type: 'LegalHoldReleased', data: { reason, releasedAt: at } });
const erased = (onStreams = streams, erasedAt = at): DataSubjectEvent => ({ type: 'PersonalDataErased', data: { subjectId, streams: onStreams, erasedAt } });

describe('PlaceLegalHold', () => {
  it('places a hold when none is in force', () => {
    const state = given([]).when(placeHold()).then([holdPlaced()]);
    assert.deepEqual(state, { status: 'on_hold', hold: { reason: 'litigation 123/2035', placedAt: at } });
  });

  it('places a hold again once the last one was released', () => {
    given([holdPlaced(), holdReleased()])
      .when(placeHold('tax audit'))
      .then([holdPlaced('tax audit')]);
  });

  it('trims the reason', () => {
    given([])
      .when(placeHold('  tax audit '))
      .then([holdPlaced('tax audit')]);
  });

  it('refuses a second hold while one is in force', () => {
    given([holdPlaced()]).when(placeHold('another')).thenFails('rule', 'LEGAL_HOLD_IN_FORCE');
  });

  it('refuses a hold on erased data', () => {
    given([erased()]).when(placeHold()).thenFails('rule', 'ALREADY_ERASED');
  });

  it('needs a reason of 1 to 200 characters', () => {
    given([]).when(placeHold('  ')).thenFails('invalid', 'INVALID_INPUT', ['reason']);
    given([])
      .when(placeHold('x'.repeat(201)))
      .thenFails('invalid', 'INVALID_INPUT', ['reason']);
  });
});

describe('ReleaseLegalHold', () => {
  it('releases the hold in force, with or without a reason', () => {
    const state = given([holdPlaced()]).when(releaseHold()).then([holdReleased()]);
    assert.deepEqual(state, { status: 'active' });
    given([holdPlaced()])
      .when(releaseHold(' case closed '))
      .then([holdReleased('case closed')]);
  });

  it('refuses to release when no hold is in force', () => {
    given([]).when(releaseHold()).thenFails('rule', 'NO_LEGAL_HOLD');
    given([holdPlaced(), holdReleased()]).when(releaseHold()).thenFails('rule', 'NO_LEGAL_HOLD');
  });
});

describe('ErasePersonalData', () => {
  it('erases the data of a relationship whose retention has run out', () => {
    const state = given([]).when(erase()).then([erased()]);
    assert.deepEqual(state, { status: 'erased', streams, erasedAt: at });
  });

  it('erases once a released hold no longer keeps the data', () => {
    given([holdPlaced(), holdReleased()]).when(erase()).then([erased()]);
  });

  it('lists each stream once', () => {
    given([])
      .when(erase(undefined, ['application-a', 'application-b', 'application-a']))
      .then([erased(['application-a', 'application-b'])]);
  });

  it('refuses while a legal hold is in force, saying why it is held', () => {
    const error = given([holdPlaced('litigation 123/2035')])
      .when(erase())
      .thenFails('rule', 'LEGAL_HOLD');
    assert.match(error.message, /litigation 123\/2035/);
  });

  it('refuses while an application is open or a mortgage runs', () => {
    given([])
      .when(erase({ ongoing: true }))
      .thenFails('rule', 'RELATIONSHIP_ONGOING');
  });

  it('refuses within the retention period, saying until when', () => {
    const error = given([])
      .when(erase({ ongoing: false, endedAt: '2030-01-15T10:00:00.000Z' }))
      .thenFails('rule', 'RETENTION_PERIOD');
    assert.match(error.message, /2040-01-15T10:00:00\.000Z/);
  });

  it('refuses a millisecond before the retention ends and erases at its instant', () => {
    const endedAt = '2026-06-01T12:00:00.000Z';
    const retainedUntil = new Date('2036-06-01T12:00:00.000Z');
    given([])
      .when(erase({ ongoing: false, endedAt }), { now: new Date(retainedUntil.getTime() - 1) })
      .thenFails('rule', 'RETENTION_PERIOD');
    given([])
      .when(erase({ ongoing: false, endedAt }), { now: retainedUntil })
      .then([erased(streams, retainedUntil.toISOString())]);
  });

  it('counts calendar years: a relationship ended on 29 February is kept until 28 February', () => {
    const endedAt = '2028-02-29T08:00:00.000Z';
    given([])
      .when(erase({ ongoing: false, endedAt }), { now: new Date('2029-02-28T07:59:59.999Z'), retentionYears: 1 })
      .thenFails('rule', 'RETENTION_PERIOD');
    given([])
      .when(erase({ ongoing: false, endedAt }), { now: new Date('2029-02-28T08:00:00.000Z'), retentionYears: 1 })
      .then([erased(streams, '2029-02-28T08:00:00.000Z')]);
  });

  it('refuses to erase twice', () => {
    given([erased()]).when(erase()).thenFails('rule', 'ALREADY_ERASED');
  });

  it('needs an ISO end instant and stream ids', () => {
    given([])
      .when(erase({ ongoing: false, endedAt: 'last spring' }))
      .thenFails('invalid', 'INVALID_INPUT', ['relationship.endedAt']);
    given([])
      .when(erase(undefined, ['application-a', ' ']))
      .thenFails('invalid', 'INVALID_INPUT', ['streams.1']);
  });
});

describe('calendar years', () => {
  it('keeps the day and the time of day', () => {
    assert.equal(addCalendarYears(new Date('2026-11-10T09:30:00.000Z'), 10).toISOString(), '2036-11-10T09:30:00.000Z');
    assert.equal(addCalendarYears(new Date('2028-02-29T00:00:00.000Z'), 4).toISOString(), '2032-02-29T00:00:00.000Z');
    assert.equal(addCalendarYears(new Date('2028-02-29T00:00:00.000Z'), 10).toISOString(), '2038-02-28T00:00:00.000Z');
  });
});

describe('data subject invariants', () => {
  const command: fc.Arbitrary<DataSubjectCommand> = fc.oneof(
    fc.string({ maxLength: 30 }).map((reason) => placeHold(reason)),
    fc.option(fc.string({ maxLength: 30 }), { nil: undefined }).map((reason) => releaseHold(reason)),
    fc.constant(erase({ ongoing: true })),
    fc
      .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2040-01-01T00:00:00Z'), noInvalidDate: true })
      .map((ended) => erase({ ongoing: false, endedAt: ended.toISOString() })),
  );
  const context = fc.record({
    now: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }),
    retentionYears: fc.integer({ min: 0, max: 20 }),
  });

  /** Runs the commands in turn, keeping the events of those that are allowed. */
  function run(commands: readonly { command: DataSubjectCommand; context: { now: Date; retentionYears: number } }[]) {
    let state = dataSubjectDecider.initialState;
    const history: DataSubjectEvent[] = [];
    const steps: { before: typeof state; command: DataSubjectCommand; events: readonly DataSubjectEvent[] }[] = [];
    for (const step of commands) {
      let events: readonly DataSubjectEvent[] = [];
      try {
        events = dataSubjectDecider.decide(step.command, state, { ...step.context, subjectId });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
      }
      steps.push({ before: state, command: step.command, events });
      history.push(...events);
      state = events.reduce(dataSubjectDecider.evolve, state);
    }
    return { state, history, steps };
  }

  it('never erases while a legal hold is in force', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ command, context }), { maxLength: 12 }), (commands) => {
        for (const { before, command, events } of run(commands).steps) {
          if (before.status === 'on_hold' && command.type === 'ErasePersonalData') assert.deepEqual(events, []);
        }
      }),
    );
  });

  it('replays its events to the same state, and every event passes its schema', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ command, context }), { maxLength: 12 }), (commands) => {
        const { state, history } = run(commands);
        assert.deepEqual(replay(dataSubjectDecider, history), state);
        for (const event of history) dataSubjectEventCatalog.check(event.type, event.data);
        assert.ok(history.filter((event) => event.type === 'PersonalDataErased').length <= 1, 'erased at most once');
      }),
    );
  });
});

describe('dataSubjectStreamId', () => {
  it('names the subject stream', () => {
    assert.equal(dataSubjectStreamId(subjectId), `subject-${subjectId}`);
  });
});
