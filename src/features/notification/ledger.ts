import { createClient } from 'redis';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import type { RedisErrors } from '../../platform/redis-errors.ts';

/**
 * Exactly one send per (event, channel). A sender claims before sending and marks the
 * claim sent afterwards. A claim expires after its TTL so that a sender that crashed
 * mid-send does not block the notification forever; the price is that a sender
 * slower than the TTL may send twice, so the TTL must be well above the mailer's
 * timeouts. The repeated email carries the same Message-ID, which clients merge.
 */
export type NotificationLedger = {
  /** true: this caller may send now. false: already sent, or another sender holds a fresh claim. */
  claim(eventId: string, channel: string): Promise<boolean>;
  markSent(eventId: string, channel: string): Promise<void>;
  /** The send failed: let a retry claim it again at once. */
  release(eventId: string, channel: string): Promise<void>;
  close(): Promise<void>;
};

export type LedgerOptions = { readonly claimTtlMs?: number };

const defaultClaimTtlMs = 300_000;

export type RedisLedgerOptions = LedgerOptions & {
  readonly keyPrefix?: string;
  /**
   * How long a 'sent' mark is kept. Redis holds everything in memory, so marks do not
   * live forever: after 400 days a replayed event would be sent again, which is why
   * the service must not notify about events that old in the first place.
   */
  readonly sentTtlMs?: number;
  /** The connection's errors while Redis is away (its commands fail meanwhile, and their callers try again), and its return. */
  readonly errors: RedisErrors;
};

// Only a claim still in flight may be released: never undo a 'sent'.
const releaseScript = `if redis.call('GET', KEYS[1]) == 'sending' then return redis.call('DEL', KEYS[1]) end return 0`;

export async function createRedisLedger(
  url: string,
  { claimTtlMs = defaultClaimTtlMs, keyPrefix = 'mutuo:notification:', sentTtlMs = 400 * 24 * 60 * 60 * 1000, errors }: RedisLedgerOptions,
): Promise<NotificationLedger> {
  // Without the offline queue a claim fails at once while Redis is down, instead of
  // waiting for a reconnect while the consumer holds its message.
  const client = createClient({ url, disableOfflineQueue: true });
  client.on('error', errors.error);
  client.on('ready', errors.ready);
  await client.connect();
  const key = (eventId: string, channel: string) => `${keyPrefix}${eventId}:${channel}`;
  return {
    async claim(eventId, channel) {
      const reply = await client.set(key(eventId, channel), 'sending', {
        condition: 'NX',
        expiration: { type: 'PX', value: claimTtlMs },
      });
      return reply === 'OK';
    },
    async markSent(eventId, channel) {
      await client.set(key(eventId, channel), 'sent', { expiration: { type: 'PX', value: sentTtlMs } });
    },
    async release(eventId, channel) {
      await client.eval(releaseScript, { keys: [key(eventId, channel)] });
    },
    close: () => client.close(),
  };
}

export type SqlLedgerOptions = LedgerOptions & {
  /** Omitted: the database's clock, which all senders share. */
  readonly clock?: () => Date;
};

/** The ledger in mutuo_notification_ledger. The client stays the caller's: close() leaves it open. */
export function createSqlLedger(client: SqlQueryable, { claimTtlMs = defaultClaimTtlMs, clock }: SqlLedgerOptions = {}): NotificationLedger {
  const now = () => clock?.().toISOString() ?? null;
  return {
    async claim(eventId, channel) {
      // One statement, so concurrent claims serialise on the row: the insert wins for
      // the first, and the update re-checks the row each later claimer finds locked.
      const rows = await client.query(
        `INSERT INTO mutuo_notification_ledger (event_id, channel, status, claimed_at)
         VALUES ($1, $2, 'sending', coalesce($3::timestamptz, now()))
         ON CONFLICT (event_id, channel) DO UPDATE SET claimed_at = excluded.claimed_at
         WHERE mutuo_notification_ledger.status = 'sending'
           AND mutuo_notification_ledger.claimed_at <= excluded.claimed_at - $4::double precision * interval '1 millisecond'
         RETURNING 1`,
        [eventId, channel, now(), claimTtlMs],
      );
      return rows.length === 1;
    },
    async markSent(eventId, channel) {
      await client.query(
        `INSERT INTO mutuo_notification_ledger (event_id, channel, status, claimed_at)
         VALUES ($1, $2, 'sent', coalesce($3::timestamptz, now()))
         ON CONFLICT (event_id, channel) DO UPDATE SET status = 'sent'`,
        [eventId, channel, now()],
      );
    },
    async release(eventId, channel) {
      await client.query(`DELETE FROM mutuo_notification_ledger WHERE event_id = $1 AND channel = $2 AND status = 'sending'`, [eventId, channel]);
    },
    close: async () => {},
  };
}
