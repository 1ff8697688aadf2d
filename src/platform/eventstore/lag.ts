import type { SqlQueryable } from '../sql/sql-client.ts';

/**
 * How far a follower of the log (the relay, a projection) is behind the head: the events
 * appended after its checkpoint, and how long the oldest of them has waited (0 when caught
 * up), on the database's clock, which stamped recordedAt. Events the read horizon holds
 * back (see horizon.ts) are appended and count: a stall shows here as a lag that grows.
 */
export type Lag = {
  readonly headPosition: number;
  readonly behindEvents: number;
  readonly lagMs: number;
};

/** Past this many events, "very far behind" is what matters: the count stops there. */
const countedUpTo = 1_000_000;

/** The lag of a follower whose checkpoint is `position` (see Lag). */
export async function lagAfter(db: SqlQueryable, position: number): Promise<Lag> {
  const [row] = await db.query<{ head: string | null; n: string; lag_ms: number | string | null }>(
    `SELECT (SELECT max(position)::text FROM mutuo_events) AS head, count(*)::text AS n,
            round(extract(epoch FROM clock_timestamp() - min(recorded_at)) * 1000)::float8 AS lag_ms
       FROM (SELECT recorded_at FROM mutuo_events WHERE position > $1 ORDER BY position LIMIT ${countedUpTo}) AS pending`,
    [position],
  );
  return {
    headPosition: Number(row?.head ?? 0),
    behindEvents: Number(row?.n ?? 0),
    lagMs: Math.max(0, Number(row?.lag_ms ?? 0)),
  };
}
