import type { SqlClient } from '../eventstore/sql-client.ts';

/** What a revocation names: a token, by its id (see Identity.token), until it expires. */
export type RevocableToken = { readonly id: string; readonly expiresAtMs: number };

export type TokenRevocations = {
  /** A lookup in memory: every request's token is checked. */
  readonly isRevoked: (token: RevocableToken) => boolean;
  /** Revokes a token in every process: in this one at once, in the others at their next refresh. */
  readonly revoke: (token: RevocableToken) => Promise<void>;
  /** Reads what the other processes revoked since the last look. */
  readonly refresh: () => Promise<void>;
  /** Forgets the revocations of tokens that have expired, here and in the table. */
  readonly prune: () => Promise<void>;
  readonly close: () => void;
};

export type TokenRevocationsOptions = {
  /** How often to read the other processes' revocations; undefined where no other process shares the database (PGlite). */
  readonly refreshMs?: number;
  readonly clock?: () => number;
  readonly onError?: (error: unknown) => void;
};

type RevocationRow = { seq: string; token_id: string; expires_at: Date };

/**
 * The revoked tokens of the database (mutuo_revoked_tokens), kept in memory so that checking
 * a request's token costs one Map lookup. A process reads the rows after the last one it has
 * seen; since revocations commit in the order of their sequence (see the migration), none is
 * skipped.
 */
export async function openTokenRevocations(db: SqlClient, options: TokenRevocationsOptions = {}): Promise<TokenRevocations> {
  const clock = options.clock ?? Date.now;
  const revoked = new Map<string, number>();
  let seen = '0';
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const forgetExpired = () => {
    const now = clock();
    for (const [id, expiresAtMs] of revoked) if (expiresAtMs <= now) revoked.delete(id);
  };

  async function refresh() {
    const rows = await db.query<RevocationRow>('SELECT seq::text AS seq, token_id, expires_at FROM mutuo_revoked_tokens WHERE seq > $1::bigint ORDER BY seq', [seen]);
    for (const row of rows) {
      revoked.set(row.token_id, new Date(row.expires_at).getTime());
      seen = row.seq;
    }
    forgetExpired();
  }

  async function prune() {
    await db.query('DELETE FROM mutuo_revoked_tokens WHERE expires_at <= $1', [new Date(clock())]);
    forgetExpired();
  }

  await prune();
  await refresh();
  const { refreshMs } = options;
  const schedule = () => {
    timer = setTimeout(() => {
      refresh()
        .catch((error: unknown) => options.onError?.(error))
        .finally(() => {
          if (!closed) schedule();
        });
    }, refreshMs);
    timer.unref();
  };
  if (refreshMs !== undefined) schedule();

  return {
    isRevoked: (token) => revoked.size > 0 && revoked.has(token.id),
    async revoke(token) {
      await db.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext('mutuo.token-revocations'))`);
        await tx.query('INSERT INTO mutuo_revoked_tokens (token_id, expires_at) VALUES ($1, $2) ON CONFLICT (token_id) DO NOTHING', [token.id, new Date(token.expiresAtMs)]);
        // The table holds only revocations that still matter: each new one clears the expired ones.
        await tx.query('DELETE FROM mutuo_revoked_tokens WHERE expires_at <= $1', [new Date(clock())]);
      });
      revoked.set(token.id, token.expiresAtMs);
      forgetExpired();
    },
    refresh,
    prune,
    close: () => {
      closed = true;
      clearTimeout(timer);
    },
  };
}
