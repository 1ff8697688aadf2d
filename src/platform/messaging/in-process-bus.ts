import type { Bus, BusSubscription, Subscription } from './bus.ts';
import { messageHeaders, partitionCount, partitionOf, type EventMessage, type IncomingMessage } from './message.ts';

type Queued = { readonly message: IncomingMessage; readonly settle: (error?: Error) => void };

const firstRedeliveryMs = 200;
const maxRedeliveryMs = 10_000;

/** One partition of one subscription: a FIFO delivered one message at a time. */
class Partition {
  private readonly queue: Queued[] = [];
  private draining = false;
  closed = false;

  constructor(private readonly deliver: (message: IncomingMessage) => Promise<void>) {}

  enqueue(message: IncomingMessage): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the subscription is closed'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ message, settle: (error) => (error ? reject(error) : resolve()) });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    let redeliveryMs = firstRedeliveryMs;
    while (this.queue.length > 0 && !this.closed) {
      const next = this.queue[0]!;
      try {
        await this.deliver(next.message);
        this.queue.shift();
        next.settle();
        redeliveryMs = firstRedeliveryMs;
      } catch {
        // The consumer could not even record the outcome (its database is away):
        // deliver the same message again later, as a broker would after a nack.
        await new Promise((resolve) => setTimeout(resolve, redeliveryMs));
        redeliveryMs = Math.min(redeliveryMs * 2, maxRedeliveryMs);
      }
    }
    this.draining = false;
  }

  close(): void {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.settle(new Error('the subscription closed before delivery'));
  }
}

/**
 * The embedded bus. A publish resolves only once every subscribed consumer has handled
 * the messages, so the relay, which publishes from the event store, never moves its
 * checkpoint past an event that a crash could still lose: after a restart it publishes
 * again from there, and the consumers' inboxes absorb what they had already handled.
 */
export function createInProcessBus(): Bus {
  const subscriptions = new Map<BusSubscription, Partition[]>();
  return {
    async publish(messages: readonly EventMessage[]) {
      const delivered: Promise<void>[] = [];
      for (const [subscription, partitions] of subscriptions) {
        for (const message of messages) {
          if (!subscription.eventTypes.includes(message.type)) continue;
          const incoming = { messageId: message.eventId, headers: messageHeaders(message), body: message, bodyIsJson: true };
          delivered.push(partitions[partitionOf(message.partitionKey)]!.enqueue(incoming));
        }
      }
      await Promise.all(delivered);
    },
    async subscribe(subscription: BusSubscription): Promise<Subscription> {
      const partitions = Array.from({ length: partitionCount }, () => new Partition(subscription.deliver));
      subscriptions.set(subscription, partitions);
      return {
        close: async () => {
          subscriptions.delete(subscription);
          for (const partition of partitions) partition.close();
        },
      };
    },
    async close() {
      for (const partitions of subscriptions.values()) for (const partition of partitions) partition.close();
      subscriptions.clear();
    },
  };
}
