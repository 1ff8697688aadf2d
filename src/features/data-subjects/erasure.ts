import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { actorOf } from '../../platform/http/access.ts';
import { checkTaxCode } from '../../domain/codice-fiscale.ts';
import { replay } from '../../domain/decider.ts';
import { DomainError, invalidInput } from '../../domain/errors.ts';
import type { Session, UnitOfWork } from '../../platform/eventstore/session.ts';
import type { StoredEvent } from '../../platform/eventstore/types.ts';
import { scheduleJob } from '../../platform/messaging/jobs.ts';
import {
  addCalendarYears,
  dataSubjectDecider,
  dataSubjectEventCatalog,
  dataSubjectStreamId,
  type DataSubjectCommand,
  type DataSubjectEvent,
  type DataSubjectState,
  type ErasePersonalData,
} from './data-subject.ts';
import type { SubjectStream } from '../../privacy/subject-keys.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import { stampEvents } from '../../platform/service.ts';
import { applicationDecider, toApplicationEvent } from '../application/index.ts';

/** The job that forgets destroyed keys on disk (SubjectKeys.shredDestroyed), one for every erasure since it last ran. */
export const shredKeysQueue = 'privacy.shred-keys';

/**
 * A stream is recorded for a subject in the statement or transaction that writes their
 * events, so one recorded but empty is an append that wrote nothing (refused at its
 * version). Younger than this, it is taken for a write still on its way all the same: a
 * key provider outside the database may record it before the events commit.
 */
export const submissionInFlightMs = 60 * 60 * 1_000;

type Relationship = ErasePersonalData['relationship'];

export type PersonalDataStatus = {
  readonly subjectId: string;
  readonly status: 'active' | 'on_hold';
  readonly hold: { readonly reason: string; readonly placedAt: string } | null;
  /** The streams that hold the person's sealed data. */
  readonly streams: string[];
  readonly relationship: Relationship;
  /** Until when the records must be kept; null while the relationship is ongoing. */
  readonly retainedUntil: string | null;
  /** Whether an erasure would be carried out now, and if not, why. */
  readonly erasable: boolean;
  readonly refusal: { readonly code: string; readonly message: string } | null;
};

export type ErasureResult = { readonly subjectId: string; readonly streams: string[]; readonly erasedAt: string; readonly position: number };

export type ErasureDependencies = {
  readonly sessions: UnitOfWork;
  readonly personalData: PersonalDataVault;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly retentionYears: number;
};

type Request = { readonly correlationId: string; readonly actor: string };

type Subject = {
  readonly session: Session;
  readonly subjectId: string;
  readonly state: DataSubjectState;
  readonly version: number;
  readonly streams: readonly SubjectStream[];
  readonly relationship: Relationship;
};

const notHeld = () => new DomainError('not_found', 'PERSONAL_DATA_NOT_FOUND', 'no personal data is held for this tax code');

/**
 * Where a person stands with the bank, from their applications: ongoing while one is in
 * processing or its mortgage is still running (approval plus the term), else ended when
 * the last one did. A stream of theirs that is still empty may be a submission on its way.
 */
export function relationshipOf(streams: readonly { readonly stream: SubjectStream; readonly events: readonly StoredEvent[] }[], now: Date): Relationship {
  let endedAt = 0;
  for (const { stream, events } of streams) {
    if (events.length === 0) {
      if (now.getTime() - stream.recordedAt.getTime() < submissionInFlightMs) return { ongoing: true };
      continue;
    }
    let end = events.at(-1)!.recordedAt.getTime();
    if (stream.streamId.startsWith('application-')) {
      const state = replay(applicationDecider, events.map(toApplicationEvent));
      if (state.status === 'none' || state.status === 'processing') return { ongoing: true };
      end = new Date(state.file.updatedAt).getTime();
      if (state.status === 'approved') end = addCalendarYears(new Date(end), state.file.loan.termYears).getTime();
      if (end > now.getTime()) return { ongoing: true };
    }
    endedAt = Math.max(endedAt, end);
  }
  // Nothing of theirs holds data: there is nothing to retain (the epoch is long enough ago).
  return { ongoing: false, endedAt: new Date(endedAt).toISOString() };
}

/**
 * Erasure by crypto-shredding, and the legal holds that forbid it. Each request runs in
 * one transaction that holds the subject's key row: the erasure's event and the key's
 * destruction commit together (a crash leaves both or neither), and a submission sealing
 * data for the same person waits for it, then seals for a new subject (SubjectKeys.subjectsSealing, and the keys' CTE in the append's statement).
 */
export function createErasureService({ sessions, personalData, clock, newId, retentionYears }: ErasureDependencies) {
  async function withSubject<T>(taxCode: string, work: (subject: Subject) => Promise<T>): Promise<T> {
    const checked = checkTaxCode(taxCode);
    if (!checked.valid) throw invalidInput([{ path: 'taxCode', message: checked.message }]);
    const subjectId = await personalData.keys.findSubject(checked.normalized);
    if (!subjectId) throw notHeld();
    return sessions.run(async (session) => {
      const { tx } = session;
      const [held] = await tx.query('SELECT 1 FROM mutuo_subject_keys WHERE subject_id = $1 AND erased_at IS NULL FOR UPDATE', [subjectId]);
      if (!held) throw notHeld();
      const history = await session.readStream(dataSubjectStreamId(subjectId));
      const state = replay(
        dataSubjectDecider,
        history.map((stored) => dataSubjectEventCatalog.decode(stored.type, stored.schemaVersion, stored.data) as DataSubjectEvent),
      );
      const streams = await personalData.keys.within(tx).streamsOf(subjectId);
      const read = await Promise.all(streams.map(async (stream) => ({ stream, events: await session.readStream(stream.streamId) })));
      return work({ session, subjectId, state, version: history.length, streams, relationship: relationshipOf(read, clock()) });
    });
  }

  /** Decides the command and appends its events to the subject's stream, in the subject's transaction. */
  async function decideAndAppend(subject: Subject, command: DataSubjectCommand, request: Request, now: Date) {
    const decided = dataSubjectDecider.decide(command, subject.state, { now, retentionYears, subjectId: subject.subjectId });
    const stamped = stampEvents(dataSubjectEventCatalog, decided, { correlationId: request.correlationId, causationId: null }, request.actor, now, newId);
    // A hold's reason is sealed with the person's key.
    const appended = await subject.session.append(dataSubjectStreamId(subject.subjectId), stamped, subject.version);
    return { decided, appended };
  }

  const eraseCommand = (subject: Subject): ErasePersonalData => ({
    type: 'ErasePersonalData',
    streams: subject.streams.map((stream) => stream.streamId),
    relationship: subject.relationship,
  });

  async function status(taxCode: string): Promise<PersonalDataStatus> {
    return withSubject(taxCode, async (subject) => {
      const now = clock();
      let refusal: PersonalDataStatus['refusal'] = null;
      try {
        dataSubjectDecider.decide(eraseCommand(subject), subject.state, { now, retentionYears, subjectId: subject.subjectId });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        refusal = { code: error.code, message: error.message };
      }
      const { relationship, state } = subject;
      return {
        subjectId: subject.subjectId,
        status: state.status === 'on_hold' ? 'on_hold' : 'active',
        hold: state.status === 'on_hold' ? state.hold : null,
        streams: subject.streams.map((stream) => stream.streamId),
        relationship,
        retainedUntil: relationship.ongoing ? null : addCalendarYears(new Date(relationship.endedAt), retentionYears).toISOString(),
        erasable: refusal === null,
        refusal,
      };
    });
  }

  async function command(taxCode: string, command: DataSubjectCommand, request: Request): Promise<{ position: number }> {
    const position = await withSubject(taxCode, async (subject) => (await decideAndAppend(subject, command, request, clock())).appended.lastPosition);
    return { position };
  }

  async function erase(taxCode: string, request: Request): Promise<ErasureResult> {
    return withSubject(taxCode, async (subject) => {
      const { decided, appended } = await decideAndAppend(subject, eraseCommand(subject), request, clock());
      // Destroyed with the event's commit: from then on every read of the sealed fields
      // reveals their erased form, and the event tells the read models and the services
      // to drop the copies they made.
      const { tx } = subject.session;
      if (!(await personalData.keys.within(tx).destroy(tx, subject.subjectId))) throw notHeld();
      // The key's old row version is still on disk: a job (durable, so a crash cannot skip it) forgets it for good.
      if (personalData.keys.shredDestroyed) await scheduleJob(subject.session, { queue: shredKeysQueue, key: 'destroyed-keys', payload: {}, dueAt: clock() });
      const erased = decided[0]!;
      if (erased.type !== 'PersonalDataErased') throw new Error(`an erasure decided ${erased.type}`);
      return { subjectId: subject.subjectId, streams: [...erased.data.streams], erasedAt: erased.data.erasedAt, position: appended.lastPosition };
    });
  }

  return {
    status,
    erase,
    placeHold: (taxCode: string, reason: string, request: Request) => command(taxCode, { type: 'PlaceLegalHold', reason }, request),
    releaseHold: (taxCode: string, reason: string | undefined, request: Request) =>
      command(taxCode, { type: 'ReleaseLegalHold', ...(reason !== undefined ? { reason } : {}) }, request),
  };
}

export type ErasureService = ReturnType<typeof createErasureService>;

const TaxCodeParams = Type.Object({ taxCode: Type.String({ maxLength: 32, description: "the person's codice fiscale" }) });
const Reason = Type.String({ maxLength: 200 });
const Refusal = Type.Object({ code: Type.String(), message: Type.String() });
const PersonalDataStatusSchema = Type.Object({
  subjectId: Type.String({ format: 'uuid' }),
  status: Type.Union([Type.Literal('active'), Type.Literal('on_hold')]),
  hold: Type.Union([Type.Object({ reason: Type.String(), placedAt: Type.String() }), Type.Null()]),
  streams: Type.Array(Type.String()),
  relationship: Type.Union([
    Type.Object({ ongoing: Type.Literal(true) }),
    Type.Object({ ongoing: Type.Literal(false), endedAt: Type.String({ format: 'date-time' }) }),
  ]),
  retainedUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  erasable: Type.Boolean(),
  refusal: Type.Union([Refusal, Type.Null()]),
});

/**
 * The admin's routes of erasure. The tax code is in the path, as the contract has it: the
 * server logs no request lines, and its error lines name the correlation id, not the path.
 */
export const erasureRoutes: FastifyPluginAsyncTypebox<{ erasure: ErasureService }> = async (app, { erasure }) => {
  const config = { permission: 'erasePersonalData' as const };
  const requestOf = (request: FastifyRequest) => ({ correlationId: request.id, actor: actorOf(request) });
  const tags = ['privacy'];

  app.get(
    '/api/applicants/:taxCode/personal-data',
    {
      config,
      schema: {
        summary: 'What personal data is held about a person, and whether it may be erased now',
        tags,
        params: TaxCodeParams,
        response: { 200: PersonalDataStatusSchema },
      },
    },
    async (request) => erasure.status(request.params.taxCode),
  );

  app.post(
    '/api/applicants/:taxCode/erasure',
    {
      config,
      schema: {
        summary: "Erase a person's personal data (crypto-shredding), unless a legal hold or the retention period forbids it (422 with the reason)",
        tags,
        params: TaxCodeParams,
        response: {
          200: Type.Object({ subjectId: Type.String(), streams: Type.Array(Type.String()), erasedAt: Type.String(), position: Type.Integer() }),
        },
      },
    },
    async (request) => erasure.erase(request.params.taxCode, requestOf(request)),
  );

  app.post(
    '/api/applicants/:taxCode/legal-hold',
    {
      config,
      schema: {
        summary: "Place a legal hold: the person's data is kept whatever else says",
        tags,
        params: TaxCodeParams,
        body: Type.Object({ reason: Reason }, { additionalProperties: false }),
        response: { 201: Type.Object({ position: Type.Integer() }) },
      },
    },
    async (request, reply) => {
      reply.status(201);
      return erasure.placeHold(request.params.taxCode, request.body.reason, requestOf(request));
    },
  );

  app.post(
    '/api/applicants/:taxCode/legal-hold/release',
    {
      config,
      preValidation: async (request) => void (request.body ??= {}),
      schema: {
        summary: 'Release the legal hold',
        tags,
        params: TaxCodeParams,
        body: Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false }),
        response: { 200: Type.Object({ position: Type.Integer() }) },
      },
    },
    async (request) => erasure.releaseHold(request.params.taxCode, request.body.reason, requestOf(request)),
  );
};
