import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { defaultRateTable, type RateTable } from '../../domain/rates.ts';
import { publishedTable, rateTableView } from './rate-table.ts';
import type { Projection } from '../../platform/projections/projector.ts';
import { RateTablePublished } from './events.ts';

/** The published rate table (GET /api/rates, and the rate of a simulation without one): one row, the latest. */
export const ratesProjection: Projection = {
  name: 'rates',
  tables: ['rm_rate_table'],
  events: [RateTablePublished],
  async apply(tx, events, tables) {
    const last = events.at(-1)!;
    const table = publishedTable(last);
    await tx.query(
      `INSERT INTO ${tables.rm_rate_table} (id, version, rate_table, published_at) VALUES (1, $1, $2::jsonb, $3)
       ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, rate_table = EXCLUDED.rate_table, published_at = EXCLUDED.published_at`,
      [last.streamVersion, JSON.stringify(table), table.publishedAt],
    );
  },
};

export type PublishedRates = { readonly table: RateTable; readonly version: number };

/**
 * The table in force as the read model holds it (the default one until a table is
 * published), read with `db`: a caller inside a transaction reads it in that transaction,
 * from whichever process it runs in.
 */
async function readPublishedRates(db: SqlQueryable): Promise<PublishedRates> {
  const [row] = await db.query<{ version: number; rate_table: RateTable }>('SELECT version, rate_table FROM rm_rate_table WHERE id = 1');
  return row ? { table: row.rate_table, version: row.version } : { table: defaultRateTable, version: 0 };
}

/**
 * The table in force, kept in memory (simulations are on the read path, at thousands a
 * second). Once the table in memory is `ttlMs` old, the next caller starts one read of
 * the read model and every caller goes on with the table in memory until it lands: no
 * caller waits, and a hundred requests that find the table old share that one read
 * rather than sending a hundred (on PGlite, each would take its turn on the one
 * connection, on the serving thread). A table is served at most `maxStaleMs` old: past
 * that (no caller came for so long, or the database has not answered) callers wait for
 * the read, so that after a quiet spell a newly published table is not missed for long.
 * `fresh` reads the read model itself, for a reader that waited for a position: a read
 * already under way may have started before the position was reached.
 */
export function publishedRates(
  db: SqlQueryable,
  { ttlMs = 1_000, maxStaleMs = 5_000, now = Date.now }: { ttlMs?: number; maxStaleMs?: number; now?: () => number } = {},
) {
  let cached: { rates: PublishedRates; at: number } | undefined;
  let reading: Promise<PublishedRates> | undefined;
  async function read(): Promise<PublishedRates> {
    const at = now();
    const rates = await readPublishedRates(db);
    // Reads may land out of order (a fresh one overtaking a shared one): an older table never replaces a newer one.
    if (!cached || rates.version >= cached.rates.version) cached = { rates, at };
    return rates;
  }
  function shared(): Promise<PublishedRates> {
    reading ??= read().finally(() => {
      reading = undefined;
    });
    return reading;
  }
  /** The table in memory, not older than `maxStaleMs`; one past `ttlMs` starts the shared read. */
  function inMemory(): PublishedRates | undefined {
    if (!cached) return undefined;
    const age = now() - cached.at;
    if (age >= ttlMs && !reading) shared().catch(() => undefined); // a failed read leaves the table to age; the next caller tries again
    return age < maxStaleMs ? cached.rates : undefined;
  }
  return {
    async current(fresh = false): Promise<PublishedRates> {
      if (fresh) return read();
      return inMemory() ?? shared();
    },
    /** What `current()` would answer without waiting for a read, if anything. */
    inMemory,
    view: (rates: PublishedRates) => rateTableView(rates.table, rates.version),
  };
}
