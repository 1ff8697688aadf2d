import type { KafkaRecord, MessageToProduce } from '@platformatic/kafka';
import type { PublishOptions } from './bus.ts';
import { messageHeaders, republishedHeader, type EventMessage, type IncomingMessage } from './message.ts';

// How an event travels as a Kafka record, both ways: the bus publishes with it, the consumer group reads with it.

/** Kafka records have no message-id: the event's id travels as a header. */
export const eventIdHeader = 'x-event-id';
export const causationIdHeader = 'x-causation-id';

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

function recordHeaders(message: EventMessage, options: PublishOptions): Record<string, string> {
  const { causationId } = message.metadata;
  // Tracing context, when whoever recorded the event put it in the metadata.
  const { traceparent } = message.metadata as { readonly traceparent?: unknown };
  const headers = {
    ...messageHeaders(message, options),
    [eventIdHeader]: message.eventId,
    ...(causationId ? { [causationIdHeader]: causationId } : {}),
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

/** The record an event is published as: keyed by its application, so that its application's events share a partition. */
export function eventRecord(topic: string, message: EventMessage, options: PublishOptions): MessageToProduce<string, Buffer, string, string> {
  return { topic, key: message.partitionKey, value: encodeValue(message), headers: recordHeaders(message, options) };
}
