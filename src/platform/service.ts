import type { FastifyBaseLogger } from 'fastify';
import type { EventCatalog } from './eventstore/event-catalog.ts';
import type { EventStore, NewEvent } from './eventstore/types.ts';
import type { ServerRoutes } from './http/server.ts';
import type { ConsumedEvent, ConsumerDefinition } from './messaging/consumer.ts';
import type { JobHandler } from './messaging/jobs.ts';
import type { UnitOfWork } from './eventstore/session.ts';
import type { SqlClient } from './sql/sql-client.ts';

/** Why events are written: the correlation id of the whole flow and the event that caused them. */
export type Cause = { readonly correlationId: string; readonly causationId: string | null };

export const causedBy = (event: Pick<ConsumedEvent, 'eventId' | 'metadata'>): Cause => ({
  correlationId: event.metadata.correlationId,
  causationId: event.eventId,
});

/** What the composition root hands every service, beside what each needs of its own (its settings, its collaborators). */
export type ServiceContext = {
  readonly client: SqlClient;
  readonly store: EventStore;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly logger: FastifyBaseLogger | false;
  /**
   * Where a service writes anything beside a command's append (which the store batches):
   * each session seals personal data, and wakes, once committed, whoever it gave work to.
   */
  readonly sessions: UnitOfWork;
  /**
   * How long a follower of the event log (the relay, the projector) waits between looks
   * when nothing woke it. Commits in this process wake them at once; the look is for
   * other processes' commits, so where no other process can write (PGlite) it is long.
   */
  readonly idlePollMs: number | undefined;
};

export type JobDefinition = {
  readonly queue: string;
  /** Each queue's handler reads its own payload type (a handler of any payload fits `never`). */
  readonly handle: JobHandler<never>;
  readonly concurrency?: number;
  readonly leaseMs?: number;
};

/** A running service: what it consumes, the work it does in the background, its routes and adapters. */
export type ServiceParts = {
  readonly consumers?: readonly ConsumerDefinition[];
  readonly jobs?: readonly JobDefinition[];
  readonly routes?: readonly ServerRoutes[];
  /** Adapters to close after the consumers and jobs stopped (simulators, connections). */
  readonly close?: () => Promise<void>;
  /** One line for the start-up log: where its outside systems are. */
  readonly describe?: string;
  /** Called after every commit in this process: there may be new events to follow. */
  readonly wake?: () => void;
};

/** A service of the platform: started with the platform's context and what it needs of its own (`Needs`). */
export type ServiceModule<Needs = object> = {
  readonly name: string;
  /** What its consumer takes, known before it starts: every process's relay declares it on the bus before it publishes. */
  readonly consumes?: Pick<ConsumerDefinition, 'name' | 'events'>;
  readonly start: (context: ServiceContext & Needs) => Promise<ServiceParts>;
};

/**
 * Stamps a service's decided events for the store: ids, the latest schema version (in
 * `catalog`, the service's own events) and the metadata of their cause. An event that fails its own schema is a bug here, so
 * it throws before anything is written.
 */
export function stampEvents(
  catalog: Pick<EventCatalog, 'check' | 'latestVersion'>,
  events: readonly { readonly type: string; readonly data: unknown }[],
  cause: Cause,
  actor: string,
  now: Date,
  newId: () => string,
): NewEvent[] {
  const metadata = { correlationId: cause.correlationId, causationId: cause.causationId, actor, occurredAt: now.toISOString() };
  return events.map((event) => {
    catalog.check(event.type, event.data);
    return { eventId: newId(), type: event.type, schemaVersion: catalog.latestVersion(event.type), data: event.data, metadata };
  });
}
