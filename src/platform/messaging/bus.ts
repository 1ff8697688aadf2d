import type { EventMessage, IncomingMessage } from './message.ts';

/** A named consumer and the event types it takes: what the bus keeps messages for, from its declaration on. */
export type ConsumerTopology = {
  readonly consumer: string;
  readonly eventTypes: readonly string[];
};

/**
 * A named consumer's subscription. The bus calls `deliver` with the messages of the given
 * types that wait in a partition, in publication order (as many as are there, up to its
 * prefetch), one batch at a time per partition. A delivery resolves once every message's
 * outcome is recorded (handled, parked or dead-lettered), which acknowledges them; it
 * rejects only when the consumer is closing, and the bus then hands the messages, and every
 * later one of their partition, to the next consumer in order.
 */
export type BusSubscription = ConsumerTopology & {
  readonly deliver: (messages: readonly IncomingMessage[]) => Promise<void>;
};

export type Subscription = { readonly close: () => Promise<void> };

export type PublishOptions = {
  /**
   * The messages may have been published, and delivered, before: the relay publishes again
   * what a relay before it may have published without moving the checkpoint. Consumers
   * count their attempts at such a message, so that one that ends the process each time
   * is set aside rather than tried for ever.
   */
  readonly republished?: boolean;
};

export interface Bus {
  /**
   * Makes the bus keep every message of these consumers' types from now on, whether they are
   * subscribed yet or not. Called before the relay publishes, with every consumer the platform
   * knows: a consumer that starts later receives what was published before it started.
   */
  declare(consumers: readonly ConsumerTopology[]): Promise<void>;
  /** Resolves once every message is safely with the bus, in the order given. */
  publish(messages: readonly EventMessage[], options?: PublishOptions): Promise<void>;
  subscribe(subscription: BusSubscription): Promise<Subscription>;
  close(): Promise<void>;
}
