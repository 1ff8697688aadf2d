import { Connection, type AsyncMessage, type Consumer } from 'rabbitmq-client';
import type { Bus, BusSubscription, Subscription } from './bus.ts';
import { messageHeaders, partitionCount, type EventMessage, type IncomingMessage } from './message.ts';

/** Every event is published here, routing key = event type, message-id = event id. */
export const eventsExchange = 'mutuo.events';
/** Where the broker puts messages it gives up on (a consumer that keeps crashing on one). */
export const brokerDeadLetterExchange = 'mutuo.dead-letters';
export const brokerDeadLetterQueue = 'mutuo.dead-letters';

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
  const base = { messageId: message.messageId, headers: message.headers ?? {} };
  if (!Buffer.isBuffer(message.body) && typeof message.body !== 'string') return { ...base, body: message.body, bodyIsJson: true };
  const text = message.body.toString();
  try {
    return { ...base, body: JSON.parse(text), bodyIsJson: true };
  } catch {
    return { ...base, body: text, bodyIsJson: false };
  }
}

/**
 * The bus over RabbitMQ. Topology, declared by whoever starts first and again after
 * every reconnection:
 *
 *   mutuo.events (topic) ──routing key = event type──> mutuo.consumer.<name> (headers)
 *       ──mutuo-partition = 0..15──> mutuo.consumer.<name>.p<n>  (quorum, single active consumer)
 *       └─unroutable (no partition header)──> mutuo.consumer.<name>.unrouted
 *
 * The relay puts each application's events on one partition; a partition queue has one
 * active consumer among the replicas at a time and is handled one message after the
 * other, which keeps each application's events in order. A message redelivered too
 * often (a consumer crashing on it) goes to mutuo.dead-letters.
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

  const deadLetterTopology = {
    exchange: { exchange: brokerDeadLetterExchange, type: 'fanout', durable: true },
    queue: { queue: brokerDeadLetterQueue, durable: true, arguments: { 'x-queue-type': 'quorum' as const } },
  };

  return {
    async publish(messages: readonly EventMessage[]) {
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
              headers: messageHeaders(message),
            },
            message,
          ),
        ),
      );
    },

    async subscribe(subscription: BusSubscription): Promise<Subscription> {
      const exchange = consumerExchange(subscription.consumer);
      const unroutedExchange = `${exchange}.unrouted`;
      const exchanges = [
        { exchange: eventsExchange, type: 'topic', durable: true },
        { exchange: unroutedExchange, type: 'fanout', durable: true },
        { exchange, type: 'headers', durable: true, arguments: { 'alternate-exchange': unroutedExchange } },
        deadLetterTopology.exchange,
      ];
      const exchangeBindings = subscription.eventTypes.map((type) => ({ destination: exchange, source: eventsExchange, routingKey: type }));
      const queueArguments = {
        'x-queue-type': 'quorum' as const,
        'x-single-active-consumer': true,
        'x-dead-letter-exchange': brokerDeadLetterExchange,
        'x-delivery-limit': 20,
      };
      const setup = await connection.acquire();
      try {
        await setup.exchangeDeclare(deadLetterTopology.exchange);
        await setup.queueDeclare(deadLetterTopology.queue);
        await setup.queueBind({ queue: brokerDeadLetterQueue, exchange: brokerDeadLetterExchange });
      } finally {
        await setup.close();
      }
      const queues: { queue: string; binding: { exchange: string; arguments?: Record<string, string> } }[] = [
        ...Array.from({ length: partitionCount }, (_, partition) => ({
          queue: partitionQueue(subscription.consumer, partition),
          binding: { exchange, arguments: { 'x-match': 'all', 'mutuo-partition': String(partition) } },
        })),
        { queue: partitionQueue(subscription.consumer, 'unrouted'), binding: { exchange: unroutedExchange } },
      ];
      // Once closing, take nothing more on: a message buffered here is handed back by the
      // broker with the channel, and handling it now would put it ahead of those.
      let closing = false;
      const created = queues.map(({ queue, binding }) => {
        const consumer = connection.createConsumer(
          {
            queue,
            queueOptions: { durable: true, arguments: queueArguments },
            queueBindings: [{ queue, ...binding }],
            exchanges,
            exchangeBindings,
            qos: { prefetchCount: prefetch },
            // One message at a time per partition: that is the ordering guarantee.
            concurrency: 1,
            requeue: true,
          },
          (message) => (closing ? Promise.reject(new Error('closing')) : subscription.deliver(incoming(message))),
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
