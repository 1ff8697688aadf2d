import { Type } from '@sinclair/typebox';
import type { Decider } from '../../domain/decider.ts';
import { assertNever, DomainError, invalidInput, type FieldError } from '../../domain/errors.ts';
import { createEventCatalog } from '../../platform/eventstore/event-catalog.ts';
import { erasedText } from '../../privacy/erased.ts';
import { defineEvent, type EventOf } from '../../platform/eventstore/event-definition.ts';

// A data subject's own stream holds nothing of them in the clear, so that it outlives their
// erasure: it is the record that the erasure happened, and why it could not happen sooner.
// The reasons of a hold are free text that may name the person: sealed with their key, they
// read as erased with the rest.

const Instant = Type.String({ format: 'date-time' });
const erasedReason = { personal: { ofStream: true, erased: { reason: erasedText } } } as const;

/** Litigation, a supervisory authority's request, a fraud inquiry: the data must be kept, whatever else says. */
export const LegalHoldPlaced = defineEvent('LegalHoldPlaced', 1, Type.Object({ reason: Type.String(), placedAt: Instant }), erasedReason);

export const LegalHoldReleased = defineEvent(
  'LegalHoldReleased',
  1,
  Type.Object({ reason: Type.Union([Type.String(), Type.Null()]), releasedAt: Instant }),
  erasedReason,
);

/** The subject's key was destroyed: their sealed data in these streams reads as erased from now on. */
export const PersonalDataErased = defineEvent(
  'PersonalDataErased',
  1,
  Type.Object({ subjectId: Type.String({ format: 'uuid' }), streams: Type.Array(Type.String()), erasedAt: Instant }),
);

export const dataSubjectEventDefinitions = [LegalHoldPlaced, LegalHoldReleased, PersonalDataErased] as const;

/** Every version ever defined, oldest first: what the schema registry and the catalog hold. */
export const dataSubjectEventHistory = [...dataSubjectEventDefinitions] as const;

/** Reads stored data subject events of any version as their latest version. */
export const dataSubjectEventCatalog = createEventCatalog(dataSubjectEventHistory);

type DataSubjectEventDefinition = (typeof dataSubjectEventDefinitions)[number];

/** A discriminated union: narrowing on `type` narrows `data`. */
export type DataSubjectEvent = {
  [D in DataSubjectEventDefinition as D['type']]: EventOf<D>;
}[DataSubjectEventDefinition['type']];

export const dataSubjectStreamId = (subjectId: string): string => `subject-${subjectId}`;

const uuidSuffix = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The ids of the streams of one kind an erasure names: `idsIn(streams, 'application-')`
 * are the applications whose copies of the person's data each service must drop.
 */
export function idsIn(streams: readonly string[], prefix: string): string[] {
  const ids = new Set<string>();
  for (const streamId of streams) {
    const id = streamId.startsWith(prefix) ? streamId.slice(prefix.length) : '';
    if (uuidSuffix.test(id)) ids.add(id.toLowerCase());
  }
  return [...ids];
}

// ---- commands ----

export type PlaceLegalHold = { readonly type: 'PlaceLegalHold'; readonly reason: string };
export type ReleaseLegalHold = { readonly type: 'ReleaseLegalHold'; readonly reason?: string };
/**
 * `streams`: those holding the subject's sealed data (SubjectKeys.streamsOf).
 * `relationship`: what the caller found in the subject's applications and mortgages —
 * ongoing while one is open or running, else the instant the last one ended.
 */
export type ErasePersonalData = {
  readonly type: 'ErasePersonalData';
  readonly streams: readonly string[];
  readonly relationship: { readonly ongoing: true } | { readonly ongoing: false; readonly endedAt: string };
};

export type DataSubjectCommand = PlaceLegalHold | ReleaseLegalHold | ErasePersonalData;

// ---- state ----

export type LegalHold = { readonly reason: string; readonly placedAt: string };

export type DataSubjectState =
  | { readonly status: 'active' }
  | { readonly status: 'on_hold'; readonly hold: LegalHold }
  | { readonly status: 'erased'; readonly streams: readonly string[]; readonly erasedAt: string };

/** `retentionYears`: how long after the relationship ends the law requires the records be kept (anti-money-laundering: 10). */
export type DataSubjectContext = { readonly now: Date; readonly retentionYears: number; readonly subjectId: string };

/** The longest free text (a reason) a command carries. */
export const maxReasonLength = 200;

const isoInstantPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The instant `years` calendar years after `from`, on the same day of the month; where
 * that year has no such day (29 February), the last day of the month, as terms in years
 * run under the Italian civil code (art. 2963).
 */
export function addCalendarYears(from: Date, years: number): Date {
  const target = new Date(from.getTime());
  const day = from.getUTCDate();
  target.setUTCDate(1);
  target.setUTCFullYear(from.getUTCFullYear() + years);
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(day, lastDay));
  return target;
}

// ---- decide ----

function decide(command: DataSubjectCommand, state: DataSubjectState, context: DataSubjectContext): DataSubjectEvent[] {
  const at = context.now.toISOString();
  switch (command.type) {
    case 'PlaceLegalHold': {
      if (state.status === 'erased') throw alreadyErased(state);
      if (state.status === 'on_hold') {
        throw new DomainError('rule', 'LEGAL_HOLD_IN_FORCE', `a legal hold is already in force: ${state.hold.reason}`);
      }
      const errors: FieldError[] = [];
      const reason = requiredText(command.reason, 'reason', errors);
      if (errors.length > 0) throw invalidInput(errors);
      return [{ type: 'LegalHoldPlaced', data: { reason, placedAt: at } }];
    }
    case 'ReleaseLegalHold': {
      if (state.status !== 'on_hold') throw new DomainError('rule', 'NO_LEGAL_HOLD', 'no legal hold is in force');
      const errors: FieldError[] = [];
      const reason = command.reason === undefined || command.reason.trim() === '' ? null : requiredText(command.reason, 'reason', errors);
      if (errors.length > 0) throw invalidInput(errors);
      return [{ type: 'LegalHoldReleased', data: { reason, releasedAt: at } }];
    }
    case 'ErasePersonalData': {
      if (state.status === 'erased') throw alreadyErased(state);
      const errors: FieldError[] = [];
      command.streams.forEach((streamId, i) => {
        if (typeof streamId !== 'string' || streamId.trim() === '') errors.push({ path: `streams.${i}`, message: 'must be a stream id' });
      });
      const { relationship } = command;
      const endedAt = relationship.ongoing ? undefined : relationship.endedAt;
      if (endedAt !== undefined && !(isoInstantPattern.test(endedAt) && !Number.isNaN(Date.parse(endedAt)))) {
        errors.push({ path: 'relationship.endedAt', message: 'must be an ISO 8601 date-time' });
      }
      if (errors.length > 0) throw invalidInput(errors);
      // A hold outranks everything: even a subject whose retention has run out keeps their data.
      if (state.status === 'on_hold') {
        throw new DomainError('rule', 'LEGAL_HOLD', `a legal hold keeps this person's data: ${state.hold.reason}`);
      }
      if (endedAt === undefined) {
        throw new DomainError('rule', 'RELATIONSHIP_ONGOING', 'an application is still open or a mortgage still running');
      }
      if (!Number.isInteger(context.retentionYears) || context.retentionYears < 0) {
        throw new RangeError(`retentionYears must be a whole number of years, not ${context.retentionYears}`);
      }
      const retainedUntil = addCalendarYears(new Date(endedAt), context.retentionYears);
      if (context.now.getTime() < retainedUntil.getTime()) {
        throw new DomainError(
          'rule',
          'RETENTION_PERIOD',
          `the records must be kept for ${context.retentionYears} years after the relationship ended: until ${retainedUntil.toISOString()}`,
        );
      }
      return [{ type: 'PersonalDataErased', data: { subjectId: context.subjectId, streams: [...new Set(command.streams)], erasedAt: at } }];
    }
    default:
      return assertNever(command);
  }
}

function alreadyErased(state: Extract<DataSubjectState, { status: 'erased' }>): DomainError {
  return new DomainError('rule', 'ALREADY_ERASED', `this person's data was erased at ${state.erasedAt}`);
}

function requiredText(value: string, path: string, errors: FieldError[]): string {
  const text = typeof value === 'string' ? value.trim() : '';
  if (text.length === 0 || text.length > maxReasonLength) errors.push({ path, message: `must be 1 to ${maxReasonLength} characters` });
  return text;
}

// ---- evolve ----

// Each event says where the subject stands whatever came before: decide allowed it.
function evolve(_state: DataSubjectState, event: DataSubjectEvent): DataSubjectState {
  switch (event.type) {
    case 'LegalHoldPlaced':
      return { status: 'on_hold', hold: { reason: event.data.reason, placedAt: event.data.placedAt } };
    case 'LegalHoldReleased':
      return { status: 'active' };
    case 'PersonalDataErased':
      return { status: 'erased', streams: event.data.streams, erasedAt: event.data.erasedAt };
    default:
      return assertNever(event);
  }
}

export const dataSubjectDecider: Decider<DataSubjectCommand, DataSubjectEvent, DataSubjectState, DataSubjectContext> = {
  initialState: { status: 'active' },
  decide,
  evolve,
};
