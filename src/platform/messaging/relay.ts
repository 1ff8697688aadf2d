import { randomUUID } from 'node:crypto';
import type { SqlClient } from '../sql/sql-client.ts';
import type { EventStore } from '../eventstore/types.ts';
import type { Bus, ConsumerTopology } from './bus.ts';
import { toEventMessage } from './message.ts';
import { startFollower, type Lease, type Next } from '../runtime/follower.ts';

export type OutboxRelayOptions = {
  readonly client: SqlClient;
  /** The log as stored (see storedLog): the relay publishes personal data sealed, for each consumer to reveal. */
  readonly store: Pick<EventStore, 'readAll'>;
  readonly bus: Bus;
  /**
   * Every consumer the platform knows, declared on the bus before the first publish, so that
   * the bus keeps their messages even before they first start.
   */
  readonly consumers?: readonly ConsumerTopology[];
  /** Relays of one name share a checkpoint and take turns through the lease. */
  readonly name?: string;
  readonly batchSize?: number;
  readonly leaseMs?: number;
  /** How often to look for events appended by other processes when nothing wakes the relay. */
  readonly idleMs?: number;
  readonly onError?: (error: unknown) => void;
};

export type OutboxRelay = {
  /** Look for new events now (the store calls it after each append in this process). */
  readonly wake: () => void;
  /** Resolves once every event up to this position has been published. */
  readonly published: (position: number) => Promise<void>;
  readonly stop: () => Promise<void>;
};

/**
 * Publishes the event store's events to the bus in position order, at least once.
 *
 * The events are the outbox: they are written by the command's own transaction, so
 * nothing can be committed and not published. The relay reads them with the gap-safe
 * readAll, publishes a batch, waits for the bus to confirm it, and only then moves its
 * checkpoint; a crash in between publishes the batch again, marked as republished, which
 * consumers' inboxes absorb. Before its first publish it declares every consumer the
 * platform knows on the bus, so none misses what was published before it first started. One relay of a name publishes at a time: it holds a lease row and renews it
 * with every checkpoint, and a relay that lost its lease cannot move the checkpoint.
 */
export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { client, store, bus } = options;
  const name = options.name ?? 'outbox';
  const holder = randomUUID();
  const batchSize = options.batchSize ?? 500;
  const leaseMs = options.leaseMs ?? 10_000;
  const idleMs = options.idleMs ?? 100;

  /** The checkpoint: read when the relay takes the lease, moved with each batch the bus confirmed. */
  let publishedPosition = -1;
  /**
   * How far a relay before this one may have published without moving the checkpoint: it
   * publishes one batch at a time and moves the checkpoint before reading the next, so at
   * most one batch past the checkpoint, which is among the first `batchSize` events after
   * it (the read horizon keeps a later commit from landing below them). Those go out marked
   * as republished; what follows them is new, and consumers take it in batches.
   */
  let republishThrough = -1;
  let declared = options.consumers === undefined || options.consumers.length === 0;
  const waiters = new Set<{ position: number; resolve: () => void }>();

  function reached(position: number) {
    publishedPosition = position;
    for (const waiter of waiters) {
      if (waiter.position <= position) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  /** Takes or renews the lease; the checkpoint when held, undefined when another relay has it. */
  async function holdLease(): Promise<{ checkpoint: number; inFlightThrough: number } | undefined> {
    const rows = await client.query<{ position: string; in_flight_through: string }>(
      `INSERT INTO mutuo_relay AS r (name, holder, lease_until) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET holder = $2, lease_until = now() + $3 * interval '1 millisecond'
        WHERE r.holder = $2 OR r.lease_until < now()
       RETURNING r.position, (SELECT coalesce(max(position), r.position) FROM
         (SELECT position FROM mutuo_events WHERE position > r.position ORDER BY position LIMIT $4) AS batch) AS in_flight_through`,
      [name, holder, leaseMs, batchSize],
    );
    return rows[0] ? { checkpoint: Number(rows[0].position), inFlightThrough: Number(rows[0].in_flight_through) } : undefined;
  }

  /** Moves the checkpoint, renewing the lease; false when another relay holds it. */
  async function advance(position: number): Promise<boolean> {
    const rows = await client.query(
      `UPDATE mutuo_relay SET position = $3, lease_until = now() + $4 * interval '1 millisecond'
        WHERE name = $1 AND holder = $2 RETURNING name`,
      [name, holder, position, leaseMs],
    );
    return rows.length === 1;
  }

  const lease: Lease = {
    durationMs: leaseMs,
    standbyMs: leaseMs / 2,
    acquire: async () => {
      const held = await holdLease();
      if (held === undefined) return false;
      reached(held.checkpoint);
      republishThrough = held.inFlightThrough;
      return true;
    },
    renew: () => advance(publishedPosition),
    release: async () => {
      // Let another relay take over at once instead of waiting for the lease to lapse.
      await client.query(`UPDATE mutuo_relay SET lease_until = now() WHERE name = $1 AND holder = $2`, [name, holder]);
    },
  };

  async function publishNext(): Promise<Next> {
    if (!declared) {
      await bus.declare(options.consumers ?? []);
      declared = true;
    }
    const events = await store.readAll(publishedPosition, batchSize);
    if (events.length === 0) return { sleepMs: idleMs };
    // A batch is either all of what a relay before this one may have published, or all past it.
    const republished = events[0]!.position <= republishThrough;
    const batch = republished ? events.filter((event) => event.position <= republishThrough) : events;
    await bus.publish(batch.map(toEventMessage), { republished });
    const last = batch.at(-1)!.position;
    if (!(await advance(last))) return 'lease-lost';
    reached(last);
    return 'again';
  }

  // The broker or the database away: the relay tries again, backing off up to 5 s.
  const follower = startFollower({ step: publishNext, lease, onError: options.onError });
  return {
    wake: follower.wake,
    published: (position) => (position <= publishedPosition ? Promise.resolve() : new Promise((resolve) => waiters.add({ position, resolve }))),
    stop: follower.stop,
  };
}
