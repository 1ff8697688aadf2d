import { DomainError } from '../../domain/errors.ts';
import type { SqlQueryable } from '../sql/sql-client.ts';

export type DeadLetterStatus = 'dead' | 'redrive_requested' | 'discard_requested' | 'redriven' | 'discarded';

export type DeadLetter = {
  readonly id: number;
  readonly consumer: string;
  readonly partitionKey: string | null;
  readonly eventId: string | null;
  readonly eventType: string | null;
  readonly reason: string;
  readonly error: string;
  readonly attempts: number;
  readonly status: DeadLetterStatus;
  /** How many later messages of the same partition key wait behind it. */
  readonly parked: number;
  readonly createdAt: string;
  readonly resolvedAt: string | null;
};

export type DeadLetterDetail = DeadLetter & { readonly message: unknown };

type Row = {
  id: string;
  consumer: string;
  partition_key: string | null;
  event_id: string | null;
  event_type: string | null;
  reason: string;
  error: string;
  attempts: number;
  status: DeadLetterStatus;
  parked: number;
  created_at: Date;
  resolved_at: Date | null;
  message?: unknown;
};

const columns = `d.id::text AS id, d.consumer, d.partition_key, d.event_id::text AS event_id, d.event_type, d.reason, d.error,
  d.attempts, d.status, d.created_at, d.resolved_at,
  (SELECT count(*)::integer FROM mutuo_parked p WHERE p.consumer = d.consumer AND p.partition_key = d.partition_key) AS parked`;

function toDeadLetter(row: Row): DeadLetter {
  return {
    id: Number(row.id),
    consumer: row.consumer,
    partitionKey: row.partition_key,
    eventId: row.event_id,
    eventType: row.event_type,
    reason: row.reason,
    error: row.error,
    attempts: row.attempts,
    status: row.status,
    parked: row.parked,
    createdAt: row.created_at.toISOString(),
    resolvedAt: row.resolved_at?.toISOString() ?? null,
  };
}

const notFound = (id: number) => new DomainError('not_found', 'DEAD_LETTER_NOT_FOUND', `no dead letter ${id}`);

/**
 * Operators' side of the dead letters: list, inspect, and ask for a redrive or a
 * discard. The consumer that owns a dead letter carries the request out (it alone has
 * the handler), then releases what was parked behind it, in order. `onRequest` is called
 * once a request is recorded, for the consumers of this process to carry it out at once.
 */
export function createDeadLetters(db: SqlQueryable, options: { readonly onRequest?: () => void } = {}) {
  async function request(id: number, status: 'redrive_requested' | 'discard_requested'): Promise<DeadLetter> {
    const [row] = await db.query<{ status: DeadLetterStatus }>(
      `UPDATE mutuo_dead_letters SET status = $2 WHERE id = $1 AND status IN ('dead', 'redrive_requested', 'discard_requested')
       RETURNING status`,
      [id, status],
    );
    if (!row) {
      const existing = await get(id);
      throw new DomainError('rule', 'DEAD_LETTER_RESOLVED', `dead letter ${id} is already ${existing.status}`);
    }
    options.onRequest?.();
    return get(id);
  }

  async function get(id: number): Promise<DeadLetterDetail> {
    const [row] = await db.query<Row>(`SELECT ${columns}, d.message FROM mutuo_dead_letters d WHERE d.id = $1`, [id]);
    if (!row) throw notFound(id);
    return { ...toDeadLetter(row), message: row.message };
  }

  return {
    async list(filter: { consumer?: string; status?: DeadLetterStatus | 'open'; limit?: number; offset?: number } = {}) {
      const rows = await db.query<Row>(
        `SELECT ${columns} FROM mutuo_dead_letters d
          WHERE ($1::text IS NULL OR d.consumer = $1)
            AND ($2::text IS NULL OR d.status = $2 OR ($2 = 'open' AND d.status IN ('dead', 'redrive_requested', 'discard_requested')))
          ORDER BY d.id DESC LIMIT $3 OFFSET $4`,
        [filter.consumer ?? null, filter.status ?? null, filter.limit ?? 50, filter.offset ?? 0],
      );
      return rows.map(toDeadLetter);
    },
    get,
    requestRedrive: (id: number) => request(id, 'redrive_requested'),
    requestDiscard: (id: number) => request(id, 'discard_requested'),
  };
}

export type DeadLetters = ReturnType<typeof createDeadLetters>;
