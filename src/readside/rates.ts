import type { SqlQueryable } from '../eventstore/sql-client.ts';
import { defaultRateTable, type RateTable } from '../domain/rates.ts';
import { rateTableView } from '../services/rates/rate-table.ts';
import type { Projection } from './projector.ts';

type Published = { bands: RateTable['bands']; publishedAt: string };

/** The published rate table (GET /api/rates, and the rate of a simulation without one): one row, the latest. */
export const ratesProjection: Projection = {
  name: 'rates',
  tables: ['rm_rate_table'],
  eventTypes: ['RateTablePublished'],
  async apply(tx, events, tables) {
    const last = events.at(-1)!;
    const data = last.data as Published;
    await tx.query(
      `INSERT INTO ${tables.rm_rate_table} (id, version, rate_table, published_at) VALUES (1, $1, $2::jsonb, $3)
       ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, rate_table = EXCLUDED.rate_table, published_at = EXCLUDED.published_at`,
      [last.streamVersion, JSON.stringify({ publishedAt: data.publishedAt, bands: data.bands }), data.publishedAt],
    );
  },
};

export type PublishedRates = { readonly table: RateTable; readonly version: number };

/**
 * The table in force, kept in memory for `ttlMs` (simulations are on the read path);
 * `fresh` reads the read model itself (a reader that waited for a position).
 */
export function publishedRates(db: SqlQueryable, ttlMs = 1_000) {
  let cached: { rates: PublishedRates; at: number } | undefined;
  async function read(): Promise<PublishedRates> {
    const [row] = await db.query<{ version: number; rate_table: RateTable }>('SELECT version, rate_table FROM rm_rate_table WHERE id = 1');
    return row ? { table: row.rate_table, version: row.version } : { table: defaultRateTable, version: 0 };
  }
  const inMemory = (): PublishedRates | undefined => (cached && Date.now() - cached.at < ttlMs ? cached.rates : undefined);
  return {
    async current(fresh = false): Promise<PublishedRates> {
      const kept = fresh ? undefined : inMemory();
      if (kept) return kept;
      const rates = await read();
      cached = { rates, at: Date.now() };
      return rates;
    },
    /** The table in memory if it is not older than `ttlMs`: what `current()` would answer without a read. */
    inMemory,
    view: (rates: PublishedRates) => rateTableView(rates.table, rates.version),
  };
}
