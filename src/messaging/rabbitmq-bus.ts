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
  const consumers = new Set<Consumer>();
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
          (message) => subscription.deliver(incoming(message)),
        );
        consumer.on('error', (error) => options.onError?.(error));
        consumers.add(consumer);
        return consumer;
      });
      await Promise.all(created.map((consumer) => new Promise<void>((resolve) => consumer.once('ready', () => resolve()))));
      return {
        close: async () => {
          // Consumer.close waits for the handler in flight, then cancels: graceful.
          await Promise.all(created.map((consumer) => consumer.close()));
          for (const consumer of created) consumers.delete(consumer);
        },
      };
    },

    async close() {
      await Promise.all([...consumers].map((consumer) => consumer.close()));
      await publisher.close();
      await connection.close();
    },
  };
}
