import type { Bus, BusSubscription, ConsumerTopology, PublishOptions, Subscription } from './bus.ts';
import { messageHeaders, partitionCount, partitionOf, type EventMessage, type IncomingMessage } from './message.ts';

type Queued = { readonly message: IncomingMessage; readonly settle: (error?: Error) => void };
type Deliver = (messages: readonly IncomingMessage[]) => Promise<void>;

/** At most this many messages of a partition are handed over at once. */
const maxBatch = 64;

const firstRedeliveryMs = 200;
const maxRedeliveryMs = 10_000;

/** One partition of one consumer: a FIFO delivered in order, what waits in it at once (up to maxBatch), once a subscriber is there. */
class Partition {
  private readonly queue: Queued[] = [];
  private draining = false;
  private deliver: Deliver | undefined;

  enqueue(message: IncomingMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ message, settle: (error) => (error ? reject(error) : resolve()) });
      void this.drain();
    });
  }

  attach(deliver: Deliver): void {
    this.deliver = deliver;
    void this.drain();
  }

  /** The subscriber leaves; what is queued waits for the next one, in order. */
  detach(): void {
    this.deliver = undefined;
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    // A publish enqueues its messages one after another: the first batch takes them all.
    await Promise.resolve();
    let redeliveryMs = firstRedeliveryMs;
    for (let deliver = this.deliver; this.queue.length > 0 && deliver; deliver = this.deliver) {
      const batch = this.queue.slice(0, maxBatch);
      try {
        await deliver(batch.map((queued) => queued.message));
        this.queue.splice(0, batch.length);
        for (const queued of batch) queued.settle();
        redeliveryMs = firstRedeliveryMs;
      } catch {
        // The consumer is closing (or could not record the outcomes): the messages stay at the
        // head, for this subscriber or the next, as a broker would hand them back.
        await new Promise((resolve) => setTimeout(resolve, redeliveryMs));
        redeliveryMs = Math.min(redeliveryMs * 2, maxRedeliveryMs);
      }
    }
    this.draining = false;
  }

  close(): void {
    this.deliver = undefined;
    for (const pending of this.queue.splice(0)) pending.settle(new Error('the bus closed before delivery'));
  }
}

type Declared = { readonly eventTypes: Set<string>; readonly partitions: Partition[] };

/**
 * The embedded bus. Each declared consumer has its partitions' queues, which keep what
 * is published for it until it subscribes, and across its restarts within the process.
 * A publish resolves only once every declared consumer has handled the messages, so the
 * relay, which publishes from the event store, never moves its checkpoint past an event
 * that a crash could still lose: after a restart it publishes again from there, and the
 * consumers' inboxes absorb what they had already handled.
 */
export type InProcessBus = Bus & {
  /** Drops a consumer's queues and what they hold: one that will not subscribe again (a test's). */
  forget(consumer: string): void;
};

export function createInProcessBus(): InProcessBus {
  const consumers = new Map<string, Declared>();
  const declareOne = ({ consumer, eventTypes }: ConsumerTopology): Declared => {
    const declared = consumers.get(consumer) ?? { eventTypes: new Set<string>(), partitions: Array.from({ length: partitionCount }, () => new Partition()) };
    for (const type of eventTypes) declared.eventTypes.add(type);
    consumers.set(consumer, declared);
    return declared;
  };
  return {
    async declare(topologies: readonly ConsumerTopology[]) {
      for (const topology of topologies) declareOne(topology);
    },
    async publish(messages: readonly EventMessage[], options: PublishOptions = {}) {
      const delivered: Promise<void>[] = [];
      const redelivered = options.republished === true;
      for (const { eventTypes, partitions } of consumers.values()) {
        for (const message of messages) {
          if (!eventTypes.has(message.type)) continue;
          const incoming = { messageId: message.eventId, headers: messageHeaders(message, options), body: message, bodyIsJson: true, redelivered };
          delivered.push(partitions[partitionOf(message.partitionKey)]!.enqueue(incoming));
        }
      }
      await Promise.all(delivered);
    },
    async subscribe(subscription: BusSubscription): Promise<Subscription> {
      const { partitions } = declareOne(subscription);
      for (const partition of partitions) partition.attach(subscription.deliver);
      return {
        close: async () => {
          for (const partition of partitions) partition.detach();
        },
      };
    },
    forget(consumer: string) {
      for (const partition of consumers.get(consumer)?.partitions ?? []) partition.close();
      consumers.delete(consumer);
    },
    async close() {
      for (const { partitions } of consumers.values()) for (const partition of partitions) partition.close();
      consumers.clear();
    },
  };
}
