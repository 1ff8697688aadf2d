import type { SqlQueryable } from '../sql/sql-client.ts';
import { lagAfter, type Lag } from '../eventstore/lag.ts';

/** The relay's lag: the events appended after its checkpoint (none yet: from the start of the log). */
export async function relayLag(db: SqlQueryable, name = 'outbox'): Promise<Lag & { readonly position: number }> {
  const [row] = await db.query<{ position: string }>('SELECT position::text AS position FROM mutuo_relay WHERE name = $1', [name]);
  const position = Number(row?.position ?? 0);
  return { position, ...(await lagAfter(db, position)) };
}

/** The relays that have a checkpoint, by name. */
export async function relayNames(db: SqlQueryable): Promise<string[]> {
  return (await db.query<{ name: string }>('SELECT name FROM mutuo_relay ORDER BY name')).map((row) => row.name);
}

/**
 * Records the consumers a process runs and the event types each handles, so that their
 * lag can be read from the database alone (see consumerLag). A consumer whose types
 * changed is looked at from the start of the log again.
 */
export async function registerConsumers(
  db: SqlQueryable,
  consumers: readonly { readonly name: string; readonly eventTypes: readonly string[] }[],
): Promise<void> {
  if (consumers.length === 0) return;
  await db.query(
    `INSERT INTO mutuo_consumers AS c (name, event_types)
     SELECT r.name, ARRAY(SELECT json_array_elements_text(r.types) ORDER BY 1)
       FROM json_to_recordset($1::json) AS r(name text, types json)
     ON CONFLICT (name) DO UPDATE
       SET event_types = EXCLUDED.event_types, registered_at = now(),
           accounted_through = CASE WHEN c.event_types = EXCLUDED.event_types THEN c.accounted_through ELSE 0 END`,
    [JSON.stringify(consumers.map((consumer) => ({ name: consumer.name, types: consumer.eventTypes })))],
  );
}

export type ConsumerLag = Lag & {
  readonly consumer: string;
  /** Its dead letters still open (dead, or a redrive or discard asked and not carried out yet). */
  readonly openDeadLetters: number;
  /** Its messages parked behind a dead letter of their application. */
  readonly parked: number;
};

type ConsumerLagRow = {
  event_types: string[];
  accounted_through: string;
  head: string | null;
  n: string;
  first: string | null;
  lag_ms: number | string | null;
  below: string;
  dead: string;
  parked: string;
};

/**
 * A consumer's lag, exactly, whatever the partitions and replicas: the events of its types
 * that it has not passed (none in its inbox, none dead-lettered or parked for it), and how
 * long the oldest of them has waited. A consumer has no checkpoint of its own (it handles
 * sixteen partitions, each in order, interleaved), and the highest position in its inbox
 * says nothing of the partitions behind it; the inbox itself does, event by event.
 *
 * Each look reads the log from the consumer's accounted_through (every event at or below
 * it passed), the first from the start. With `remember`, the look moves it up to just
 * below the oldest event not passed, never past the read horizon (an event below the
 * horizon is committed, or never will be): the next look starts there. Rows in the inbox,
 * dead letters or parked are only ever moved between those tables in one transaction, so
 * an event once passed stays passed. Undefined for a consumer no process registered.
 */
export async function consumerLag(db: SqlQueryable, consumer: string, { remember = false } = {}): Promise<ConsumerLag | undefined> {
  const [row] = await db.query<ConsumerLagRow>(
    `WITH c AS (SELECT event_types, accounted_through FROM mutuo_consumers WHERE name = $1),
     pending AS (
       SELECT e.position, e.recorded_at FROM mutuo_events AS e, c
        WHERE e.position > c.accounted_through AND e.event_type = ANY (c.event_types)
          AND NOT EXISTS (SELECT 1 FROM mutuo_inbox AS i WHERE i.consumer = $1 AND i.event_id = e.event_id)
          AND NOT EXISTS (SELECT 1 FROM mutuo_dead_letters AS d WHERE d.consumer = $1 AND d.event_id = e.event_id)
          AND NOT EXISTS (SELECT 1 FROM mutuo_parked AS p WHERE p.consumer = $1 AND p.message -> 'body' ->> 'eventId' = e.event_id::text))
     SELECT c.event_types, c.accounted_through::text AS accounted_through,
            (SELECT max(position)::text FROM mutuo_events) AS head,
            (SELECT count(*)::text FROM pending) AS n,
            (SELECT min(position)::text FROM pending) AS first,
            (SELECT round(extract(epoch FROM clock_timestamp() - min(recorded_at)) * 1000)::float8 FROM pending) AS lag_ms,
            (pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 65536)::text AS below,
            (SELECT count(*)::text FROM mutuo_dead_letters
              WHERE consumer = $1 AND status IN ('dead', 'redrive_requested', 'discard_requested')) AS dead,
            (SELECT count(*)::text FROM mutuo_parked WHERE consumer = $1) AS parked
       FROM c`,
    [consumer],
  );
  if (!row) return undefined;
  if (remember) {
    const through = Math.min(Number(row.below), row.first === null ? Infinity : Number(row.first)) - 1;
    if (through > Number(row.accounted_through)) {
      await db.query('UPDATE mutuo_consumers SET accounted_through = greatest(accounted_through, $2) WHERE name = $1 AND event_types = $3', [
        consumer,
        through,
        row.event_types,
      ]);
    }
  }
  return {
    consumer,
    headPosition: Number(row.head ?? 0),
    behindEvents: Number(row.n),
    lagMs: Math.max(0, Number(row.lag_ms ?? 0)),
    openDeadLetters: Number(row.dead),
    parked: Number(row.parked),
  };
}

/** The consumers some process registered, by name. */
export async function consumerNames(db: SqlQueryable): Promise<string[]> {
  return (await db.query<{ name: string }>('SELECT name FROM mutuo_consumers ORDER BY name')).map((row) => row.name);
}
