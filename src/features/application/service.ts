import { replay } from '../../domain/decider.ts';
import { DomainError } from '../../domain/errors.ts';
import type { RateTable } from '../../domain/rates.ts';
import type { Session } from '../../platform/eventstore/session.ts';
import { WrongExpectedVersionError, type EventStore, type NewEvent, type ReadStreamOptions, type StoredEvent } from '../../platform/eventstore/types.ts';
import { applicationDecider, type ApplicationCommand, type ApplicationLimits, type ApplicationState, type SubmitApplication } from './decider.ts';
import { applicationEventCatalog, applicationStreamId, type ApplicationEvent } from './events.ts';

export type ApplicationServiceDependencies = {
  /** Where commands append (it seals and reveals the applicant's personal data). */
  readonly store: EventStore;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly rateTable: () => RateTable;
  /** The configured limits of the applications taken. */
  readonly limits: ApplicationLimits;
};

/** Who asks and in answer to what: it becomes every written event's metadata. */
export type CommandContext = {
  readonly correlationId: string;
  readonly causationId?: string | null;
  readonly actor: string;
  /** The version the caller last saw (If-Match): the command is refused if the stream has moved on. */
  readonly expectedVersion?: number;
  /** An applicant acting on their own applications only: another's answers as not found. */
  readonly owner?: string;
};

export type CommandResult = { readonly applicationId: string; readonly version: number; readonly position: number };

export type ApplicationAtVersion = {
  readonly state: ApplicationState;
  readonly version: number;
  /** The actor of the submission: the applicant the application belongs to. */
  readonly submittedBy: string | undefined;
};

/** Unconditional commands that lose a race re-read the stream and decide again, this many times. */
const conflictRetries = 3;

export type ApplicationService = ReturnType<typeof createApplicationService>;

export function createApplicationService({ store, clock, newId, rateTable, limits }: ApplicationServiceDependencies) {
  function toNewEvents(events: readonly ApplicationEvent[], context: CommandContext, now: Date): NewEvent[] {
    const metadata = {
      correlationId: context.correlationId,
      causationId: context.causationId ?? null,
      actor: context.actor,
      occurredAt: now.toISOString(),
    };
    return events.map((event) => {
      checkDecided(event);
      const schemaVersion = applicationEventCatalog.latestVersion(event.type);
      return { eventId: newId(), type: event.type, schemaVersion, data: event.data, metadata };
    });
  }

  async function load(applicationId: string, options?: ReadStreamOptions): Promise<ApplicationAtVersion> {
    const events = await store.readStream(applicationStreamId(applicationId), options);
    const state = replay(applicationDecider, events.map(toApplicationEvent));
    return { state, version: events.at(-1)?.streamVersion ?? 0, submittedBy: events[0]?.metadata.actor };
  }

  async function submit(command: Omit<SubmitApplication, 'type' | 'applicationId'>, context: CommandContext): Promise<CommandResult> {
    const applicationId = newId();
    const now = clock();
    // A fresh id has no history to read: decide on the empty state and create the stream.
    const events = applicationDecider.decide({ type: 'SubmitApplication', applicationId, ...command }, applicationDecider.initialState, {
      now,
      rateTable: rateTable(),
      limits,
    });
    const appended = await store.appendToStream(applicationStreamId(applicationId), toNewEvents(events, context, now), 'no_stream');
    return { applicationId, version: appended.nextVersion, position: appended.lastPosition };
  }

  async function execute(applicationId: string, command: Exclude<ApplicationCommand, SubmitApplication>, context: CommandContext): Promise<CommandResult> {
    for (let attempt = 0; ; attempt++) {
      const { state, version, submittedBy } = await load(applicationId);
      if (state.status === 'none' || (context.owner !== undefined && context.owner !== submittedBy)) {
        throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
      }
      if (context.expectedVersion !== undefined && context.expectedVersion !== version) {
        throw new WrongExpectedVersionError(applicationStreamId(applicationId), context.expectedVersion, version);
      }
      const now = clock();
      const events = applicationDecider.decide(command, state, { now, rateTable: rateTable(), limits });
      try {
        const appended = await store.appendToStream(applicationStreamId(applicationId), toNewEvents(events, context, now), version);
        return { applicationId, version: appended.nextVersion, position: appended.lastPosition };
      } catch (error) {
        const retry = error instanceof WrongExpectedVersionError && context.expectedVersion === undefined && attempt < conflictRetries;
        if (!retry) throw error;
      }
    }
  }

  /**
   * A command decided and appended in the caller's session (a consumer's or a job's), so
   * the events commit with the inbox row or the job's removal. Returns the refusal
   * instead of throwing it when the application's state makes the command moot (closed
   * already, or the lock it means was replaced): a reaction then has nothing to do.
   */
  async function executeInSession(
    session: Session,
    applicationId: string,
    command: Exclude<ApplicationCommand, SubmitApplication>,
    context: CommandContext,
  ): Promise<{ readonly refused?: DomainError }> {
    const stored = await session.readStream(applicationStreamId(applicationId));
    const state = replay(applicationDecider, stored.map(toApplicationEvent));
    const now = clock();
    let decided: readonly ApplicationEvent[];
    try {
      decided = applicationDecider.decide(command, state, { now, rateTable: rateTable(), limits });
    } catch (error) {
      if (error instanceof DomainError && (error.kind === 'rule' || error.kind === 'not_found')) return { refused: error };
      throw error;
    }
    await session.append(applicationStreamId(applicationId), toNewEvents(decided, context, now), stored.length);
    return {};
  }

  return {
    submit,
    execute,
    executeInSession,
    /** The application as it was after `version`, or at instant `asOf`, by replaying its stream. */
    stateAt: (applicationId: string, at: { readonly version?: number; readonly asOf?: Date } = {}) =>
      load(applicationId, { ...(at.version !== undefined ? { toVersion: at.version } : {}), ...(at.asOf ? { asOf: at.asOf } : {}) }),
    auditTrail: (applicationId: string) => store.readStream(applicationStreamId(applicationId)),
  };
}

/**
 * Stored events are the aggregate's own, written by this service through the decider,
 * at whatever version was current then: the catalog upcasts them to the latest one. A
 * type it does not know in an application stream is a bug, and throws.
 */
export function toApplicationEvent(event: StoredEvent): ApplicationEvent {
  return applicationEventCatalog.decode(event.type, event.schemaVersion, event.data);
}

/** An event the decider produced that fails its own schema is a bug here, never the caller's fault. */
function checkDecided(event: ApplicationEvent): void {
  try {
    applicationEventCatalog.check(event.type, event.data);
  } catch (error) {
    throw new Error(`the decider produced an invalid event: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
