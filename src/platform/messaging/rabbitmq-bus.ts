import { Connection, type AsyncMessage, type Channel, type Consumer } from 'rabbitmq-client';
import type { Bus, BusSubscription, ConsumerTopology, PublishOptions, Subscription } from './bus.ts';
import { messageHeaders, partitionCount, republishedHeader, type EventMessage, type IncomingMessage } from './message.ts';

/** Every event is published here, routing key = event type, message-id = event id. */
export const eventsExchange = 'mutuo.events';

export type RabbitMqBusOptions = {
  readonly url: string;
  /** Messages each partition's consumer may hold unacknowledged. */
  readonly prefetch?: number;
  readonly onError?: (error: unknown) => void;
};

export function consumerExchange(consumer: string): string {
  return `mutuo.consumer.${consumer}`;
}

export function partitionQueue(consumer: string, partition: number | 'unrouted'): string {
  return `${consumerExchange(consumer)}.${partition === 'unrouted' ? 'unrouted' : `p${partition}`}`;
}

/**
 * Closes a partition's consumer and keeps the partition in order. rabbitmq-client's
 * own close cancels the consumer first and returns its prefetched messages only when
 * the channel closes later; in between, the queue's next single active consumer (a
 * replica) would already get the messages after them. Closing the channel instead
 * makes the broker drop the consumer and return its unacknowledged messages in one
 * step, so the next replica starts with them. The message in hand may still commit
 * here: its redelivery then finds it in the inbox, behind the partition key's lock.
 */
async function closeKeepingOrder(consumer: Consumer): Promise<void> {
  const channel = (consumer as unknown as { _ch?: { close(): Promise<void> } })._ch;
  const closing = consumer.close(); // no reconnection from here on
  await channel?.close(); // marks the channel inactive at once: close() sends no basic.cancel
  await closing;
}

function incoming(message: AsyncMessage): IncomingMessage {
  const headers = message.headers ?? {};
  const base = { messageId: message.messageId, headers, redelivered: message.redelivered || headers[republishedHeader] !== undefined };
  if (!Buffer.isBuffer(message.body) && typeof message.body !== 'string') return { ...base, body: message.body, bodyIsJson: true };
  const text = message.body.toString();
  try {
    return { ...base, body: JSON.parse(text), bodyIsJson: true };
  } catch {
    return { ...base, body: text, bodyIsJson: false };
  }
}

/**
 * Hands what a partition queue's consumer receives over in order, in batches: whatever has
 * arrived by the time the batch before is done. Each message's callback (and with it its
 * ack) resolves once its batch is.
 */
function inBatches(deliver: (messages: readonly IncomingMessage[]) => Promise<void>, closing: () => boolean) {
  type Waiting = { readonly message: IncomingMessage; readonly resolve: () => void; readonly reject: (error: unknown) => void };
  let waiting: Waiting[] = [];
  let draining = false;
  async function drain(): Promise<void> {
    while (waiting.length > 0) {
      const batch = waiting;
      waiting = [];
      try {
        if (closing()) throw new Error('closing');
        await deliver(batch.map((entry) => entry.message));
        for (const entry of batch) entry.resolve();
      } catch (error) {
        // Closing: the broker hands these, and all after them, back with the channel, in order.
        for (const entry of [...batch, ...waiting.splice(0)]) entry.reject(error);
      }
    }
    draining = false;
  }
  return (message: IncomingMessage) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ message, resolve, reject });
      if (draining) return;
      draining = true;
      // The client hands over each message of a read from the socket in turn: the first batch
      // takes them all, rather than the first alone and the rest after it.
      setImmediate(() => void drain());
    });
}

/** A partition queue's arguments. No delivery limit and no dead-letter exchange: the consumer, not the broker, decides when to set a message aside. */
const partitionQueueArguments = { 'x-queue-type': 'quorum' as const, 'x-single-active-consumer': true };

/** A consumer's exchanges, queues and bindings, as both its declaration and its consumers name them. */
function topologyOf({ consumer, eventTypes }: ConsumerTopology) {
  const exchange = consumerExchange(consumer);
  const unroutedExchange = `${exchange}.unrouted`;
  return {
    exchanges: [
      { exchange: eventsExchange, type: 'topic', durable: true },
      { exchange: unroutedExchange, type: 'fanout', durable: true },
      { exchange, type: 'headers', durable: true, arguments: { 'alternate-exchange': unroutedExchange } },
    ],
    exchangeBindings: eventTypes.map((type) => ({ destination: exchange, source: eventsExchange, routingKey: type })),
    queues: [
      ...Array.from({ length: partitionCount }, (_, partition) => ({
        queue: partitionQueue(consumer, partition),
        binding: { exchange, arguments: { 'x-match': 'all', 'mutuo-partition': String(partition) } } as {
          exchange: string;
          arguments?: Record<string, string>;
        },
      })),
      { queue: partitionQueue(consumer, 'unrouted'), binding: { exchange: unroutedExchange } as { exchange: string; arguments?: Record<string, string> } },
    ],
  };
}

/**
 * Declares a queue as this version names it. A queue an earlier version declared with a
 * delivery limit and a dead-letter exchange (the broker then dropped what a consumer kept
 * failing on) is replaced when it is empty; one that still holds messages is refused, with
 * what to do, since replacing it would lose them.
 */
async function declareQueue(connection: Connection, queue: string): Promise<void> {
  const channel = await connection.acquire();
  try {
    await channel.queueDeclare({ queue, durable: true, arguments: partitionQueueArguments });
    return;
  } catch (error) {
    if (!/PRECONDITION_FAILED - inequivalent arg/.test((error as Error).message)) throw error;
  } finally {
    await channel.close().catch(() => undefined);
  }
  const replacing = await connection.acquire();
  try {
    await replacing.queueDelete({ queue, ifEmpty: true }).catch((error: Error) => {
      throw new Error(
        `the queue ${queue} was declared by an earlier version of Mutuo and still holds messages: ` +
          'let that version drain it (or move its messages) before starting this one',
        { cause: error },
      );
    });
    await replacing.queueDeclare({ queue, durable: true, arguments: partitionQueueArguments });
  } finally {
    await replacing.close().catch(() => undefined);
  }
}

async function declareTopology(connection: Connection, topology: ConsumerTopology): Promise<void> {
  const { exchanges, exchangeBindings, queues } = topologyOf(topology);
  for (const { queue } of queues) await declareQueue(connection, queue);
  const channel: Channel = await connection.acquire();
  try {
    for (const exchange of exchanges) await channel.exchangeDeclare(exchange);
    for (const binding of exchangeBindings) await channel.exchangeBind(binding);
    for (const { queue, binding } of queues) await channel.queueBind({ queue, ...binding });
  } finally {
    await channel.close();
  }
}

/**
 * The bus over RabbitMQ. Topology, declared for every known consumer before the relay
 * publishes (so that a consumer started later finds what was published before), and again
 * by each consumer after every reconnection:
 *
 *   mutuo.events (topic) ──routing key = event type──> mutuo.consumer.<name> (headers)
 *       ──mutuo-partition = 0..15──> mutuo.consumer.<name>.p<n>  (quorum, single active consumer)
 *       └─unroutable (no partition header)──> mutuo.consumer.<name>.unrouted
 *
 * The relay puts each application's events on one partition; a partition queue has one
 * active consumer among the replicas at a time and is handled one message after the
 * other, which keeps each application's events in order. Nothing is requeued behind later
 * messages and the broker drops nothing: a consumer retries in place, parks what keeps
 * failing in its database, and hands back its unacknowledged messages, in order, only by
 * closing its channel (or dying).
 */
export async function createRabbitMqBus(options: RabbitMqBusOptions): Promise<Bus> {
  const connection = new Connection({ url: options.url, connectionName: 'mutuo', retryLow: 200, retryHigh: 5_000 });
  connection.on('error', (error) => options.onError?.(error));
  const publisher = connection.createPublisher({
    confirm: true,
    exchanges: [{ exchange: eventsExchange, type: 'topic', durable: true }],
  });
  const subscriptions = new Set<Subscription>();
  const prefetch = options.prefetch ?? 64;

  return {
    async declare(consumers: readonly ConsumerTopology[]) {
      for (const consumer of consumers) await declareTopology(connection, consumer);
    },

    async publish(messages: readonly EventMessage[], publishOptions: PublishOptions = {}) {
      // One channel keeps publication order; confirms arrive for all before we resolve.
      await Promise.all(
        messages.map((message) =>
          publisher.send(
            {
              exchange: eventsExchange,
              routingKey: message.type,
              messageId: message.eventId,
              correlationId: message.metadata.correlationId,
              durable: true,
              headers: messageHeaders(message, publishOptions),
            },
            message,
          ),
        ),
      );
    },

    async subscribe(subscription: BusSubscription): Promise<Subscription> {
      await declareTopology(connection, subscription);
      const { exchanges, exchangeBindings, queues } = topologyOf(subscription);
      // Once closing, take nothing more on: a message buffered here is handed back by the
      // broker with the channel, and handling it now would put it ahead of those.
      let closing = false;
      const created = queues.map(({ queue, binding }) => {
        const handOver = inBatches(subscription.deliver, () => closing);
        const consumer = connection.createConsumer(
          {
            queue,
            queueOptions: { durable: true, arguments: partitionQueueArguments },
            queueBindings: [{ queue, ...binding }],
            exchanges,
            exchangeBindings,
            qos: { prefetchCount: prefetch },
            // Every prefetched message is taken at once, and handed over in order, in batches:
            // one batch at a time per partition is the ordering guarantee.
            concurrency: prefetch,
            // A delivery rejects only when closing: the messages go back with the channel, in order.
            requeue: true,
          },
          (message) => handOver(incoming(message)),
        );
        consumer.on('error', (error) => options.onError?.(error));
        return consumer;
      });
      await Promise.all(created.map((consumer) => new Promise<void>((resolve) => consumer.once('ready', () => resolve()))));
      const subscribed: Subscription = {
        close: async () => {
          closing = true;
          subscriptions.delete(subscribed);
          await Promise.all(created.map(closeKeepingOrder));
        },
      };
      subscriptions.add(subscribed);
      return subscribed;
    },

    async close() {
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
      await publisher.close();
      await connection.close();
    },
  };
}
