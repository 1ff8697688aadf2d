import type { EventMetadata, StoredEvent } from '../eventstore/types.ts';

/** What travels on the bus: a stored event and where it belongs. */
export type EventMessage = {
  readonly eventId: string;
  readonly type: string;
  readonly schemaVersion: number;
  readonly streamId: string;
  readonly streamVersion: number;
  readonly position: number;
  /** Events with one key (one application) are handled in order. */
  readonly partitionKey: string;
  readonly data: unknown;
  readonly metadata: EventMetadata;
  readonly recordedAt: string;
};

/** What a bus hands a consumer: possibly anything, since anyone may publish on the exchange. */
export type IncomingMessage = {
  readonly messageId: string | undefined;
  readonly headers: Readonly<Record<string, unknown>>;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  readonly body: unknown;
  readonly bodyIsJson: boolean;
  /** It may have been delivered before (to a consumer that ended before acknowledging it, perhaps because of it). */
  readonly redelivered: boolean;
};

/** Partitions of every consumer; fixed, since publishers and consumers must agree on it. */
export const partitionCount = 16;

const trailingUuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The application an event belongs to: the id its streams end with (`application-<id>`,
 * `credit-check-<id>`, ...), so all of an application's streams share one partition.
 */
export function partitionKeyOf(streamId: string): string {
  return trailingUuid.exec(streamId)?.[0].toLowerCase() ?? streamId;
}

/** FNV-1a over the key: stable across processes and versions. */
export function partitionOf(partitionKey: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < partitionKey.length; i++) {
    hash ^= partitionKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitionCount;
}

export function toEventMessage(event: StoredEvent): EventMessage {
  return {
    eventId: event.eventId,
    type: event.type,
    schemaVersion: event.schemaVersion,
    streamId: event.streamId,
    streamVersion: event.streamVersion,
    position: event.position,
    partitionKey: partitionKeyOf(event.streamId),
    data: event.data,
    metadata: event.metadata,
    recordedAt: event.recordedAt.toISOString(),
  };
}

/** Marks a message the relay publishes again (see PublishOptions.republished). */
export const republishedHeader = 'mutuo-republished';

/** The event's type, which a bus can route or filter by without reading the body. */
export const eventTypeHeader = 'x-event-type';

/**
 * Headers every published message carries, so consumers can route and check before
 * parsing. The partition's name has no `x-` prefix: headers exchanges ignore those.
 */
export function messageHeaders(message: EventMessage, options: { readonly republished?: boolean } = {}): Record<string, string | number> {
  return {
    ...(options.republished ? { [republishedHeader]: 1 } : {}),
    [eventTypeHeader]: message.type,
    'x-schema-version': message.schemaVersion,
    'mutuo-partition': String(partitionOf(message.partitionKey)),
    'x-partition-key': message.partitionKey,
    'x-stream-id': message.streamId,
    'x-position': message.position,
    'x-correlation-id': message.metadata.correlationId,
  };
}
