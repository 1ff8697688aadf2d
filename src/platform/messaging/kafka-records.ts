import type { KafkaRecord, MessageToProduce } from '@platformatic/kafka';
import type { PublishOptions } from './bus.ts';
import { messageHeaders, republishedHeader, type EventMessage, type IncomingMessage } from './message.ts';

// How an event travels as a Kafka record, both ways: the bus publishes with it, the consumer group reads with it.

/** Kafka records have no message-id: the event's id travels as a header. */
export const eventIdHeader = 'x-event-id';

/*
 * An event as a record's value, and back: JSON, in these two functions only, so that another
 * encoding replaces them alone. A value that is not JSON is handed over as text, for the
 * consumer to dead-letter.
 */
function encodeValue(message: EventMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

function decodeValue(value: Buffer | null): Pick<IncomingMessage, 'body' | 'bodyIsJson'> {
  const text = value?.toString() ?? '';
  try {
    return { body: JSON.parse(text), bodyIsJson: true };
  } catch {
    return { body: text, bodyIsJson: false };
  }
}

/**
 * The whole envelope, beside the value: a reader routes and checks by the headers without
 * decoding the value, which a registry's encoding may make the event's data alone.
 */
function recordHeaders(message: EventMessage, options: PublishOptions): Record<string, string> {
  const { causationId, actor, occurredAt } = message.metadata;
  // Tracing context, when whoever recorded the event put it in the metadata.
  const { traceparent } = message.metadata as { readonly traceparent?: unknown };
  const headers = {
    ...messageHeaders(message, options),
    [eventIdHeader]: message.eventId,
    'x-stream-version': message.streamVersion,
    'x-actor': actor,
    'x-occurred-at': occurredAt,
    'x-recorded-at': message.recordedAt,
    ...(causationId ? { 'x-causation-id': causationId } : {}),
    ...(typeof traceparent === 'string' ? { traceparent } : {}),
  };
  // Kafka's headers are bytes: numbers travel as their decimal text.
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, String(value)]));
}

/** A fetched record's headers, read before its value: they say whether the consumer takes it. */
export function headersOf(record: KafkaRecord): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of record.headers) if (name) headers[name.toString()] = value?.toString() ?? '';
  return headers;
}

/** A fetched record as a consumer is handed it: redelivered when the relay published it again (the partition may say so too). */
export function incomingMessage(record: KafkaRecord, headers: Record<string, string>): IncomingMessage {
  return { messageId: headers[eventIdHeader], headers, redelivered: headers[republishedHeader] !== undefined, ...decodeValue(record.value) };
}

/**
 * The record an event is published as: keyed by its application, so that its application's
 * events share a partition, and stamped with the time it was recorded, so that the log's
 * time index finds an event by its recording time (a replay from a moment) however late the
 * relay published it. A broker refuses a stamp more than message.timestamp.after.max.ms
 * (an hour) ahead of its clock: the database's clock and the brokers' must agree that well.
 */
export function eventRecord(topic: string, message: EventMessage, options: PublishOptions): MessageToProduce<string, Buffer, string, string> {
  return {
    topic,
    key: message.partitionKey,
    value: encodeValue(message),
    headers: recordHeaders(message, options),
    timestamp: BigInt(Date.parse(message.recordedAt)),
  };
}
