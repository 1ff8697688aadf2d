import type { EventMessage, IncomingMessage } from './message.ts';

/**
 * A named consumer's subscription. The bus calls `deliver` for each message of the
 * given types, one at a time per partition and in publication order within it; a
 * resolved delivery is acknowledged, a rejected one is delivered again later.
 */
export type BusSubscription = {
  readonly consumer: string;
  readonly eventTypes: readonly string[];
  readonly deliver: (message: IncomingMessage) => Promise<void>;
};

export type Subscription = { readonly close: () => Promise<void> };

export interface Bus {
  /** Resolves once every message is safely with the bus, in the order given. */
  publish(messages: readonly EventMessage[]): Promise<void>;
  subscribe(subscription: BusSubscription): Promise<Subscription>;
  close(): Promise<void>;
}
