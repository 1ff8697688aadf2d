import type { SqlClient } from '../platform/sql/sql-client.ts';

import type { TokenRef } from '../platform/http/identity.ts';

/** What a revocation names: a token, by its id (see Identity.token), until it expires. */
export type RevocableToken = TokenRef;

export type TokenRevocations = {
  /**
   * Every request's token is checked: from memory while what this process knows of the
   * others' revocations is fresh (see TokenRevocationsOptions.refreshMs), else once the one
   * read every caller shares has landed.
   */
  readonly isRevoked: (token: RevocableToken) => boolean | Promise<boolean>;
  /** Revokes a token in every process: in this one at once, in the others at their next refresh. */
  readonly revoke: (token: RevocableToken) => Promise<void>;
  /** Reads what the other processes revoked since the last look. */
  readonly refresh: () => Promise<void>;
  /** Forgets the revocations of tokens that have expired, here and in the table. */
  readonly prune: () => Promise<void>;
  readonly close: () => void;
};

export type TokenRevocationsOptions = {
  /**
   * How old what this process knows of the other processes' revocations may be when a token
   * is checked; undefined where no other process shares the database (PGlite).
   */
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

  const forgetExpired = () => {
    const now = clock();
    for (const [id, expiresAtMs] of revoked) if (expiresAtMs <= now) revoked.delete(id);
  };

  async function refresh() {
    const rows = await db.query<RevocationRow>('SELECT seq::text AS seq, token_id, expires_at FROM mutuo_revoked_tokens WHERE seq > $1::bigint ORDER BY seq', [
      seen,
    ]);
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
  let refreshedAt = clock();
  let refreshing: Promise<void> | undefined;

  /**
   * Read when tokens are checked, not on a timer: a process that checks none (idle, or serving
   * public routes only) reads nothing. Past half the bound a check starts the read and goes on
   * from memory; past the bound it waits for the read, shared by every check meanwhile. A read
   * that fails is reported, and the checks go on with what memory holds.
   */
  function fresh(): Promise<void> | undefined {
    if (refreshMs === undefined) return undefined;
    const age = clock() - refreshedAt;
    if (age > refreshMs / 2 && refreshing === undefined) {
      const started = clock();
      refreshing = refresh()
        .then(
          () => void (refreshedAt = started),
          (error: unknown) => options.onError?.(error),
        )
        .finally(() => (refreshing = undefined));
    }
    return age > refreshMs ? refreshing : undefined;
  }

  return {
    isRevoked: (token) => {
      const waiting = fresh();
      if (waiting === undefined) return revoked.size > 0 && revoked.has(token.id);
      return waiting.then(() => revoked.has(token.id));
    },
    async revoke(token) {
      await db.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext('mutuo.token-revocations'))`);
        await tx.query('INSERT INTO mutuo_revoked_tokens (token_id, expires_at) VALUES ($1, $2) ON CONFLICT (token_id) DO NOTHING', [
          token.id,
          new Date(token.expiresAtMs),
        ]);
        // The table holds only revocations that still matter: each new one clears the expired ones.
        await tx.query('DELETE FROM mutuo_revoked_tokens WHERE expires_at <= $1', [new Date(clock())]);
      });
      revoked.set(token.id, token.expiresAtMs);
      forgetExpired();
    },
    refresh: async () => {
      const started = clock();
      await refresh();
      refreshedAt = started;
    },
    prune,
    close: () => undefined,
  };
}
