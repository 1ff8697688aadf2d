import { PGlite, types } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { lockFolder } from './folder-lock.ts';
import type { SqlClient, SqlQueryable } from './sql-client.ts';

type PgliteQueryable = Pick<PGlite, 'query' | 'exec'>;

function queryable(target: PgliteQueryable): SqlQueryable {
  return {
    async query<Row>(text: string, params?: readonly unknown[]) {
      const result = await target.query<Row>(text, params as unknown[] | undefined);
      return result.rows;
    },
    async exec(sql: string) {
      await target.exec(sql);
    },
  };
}

/**
 * PostgreSQL compiled to WASM, in this process. It has a single connection: PGlite
 * queues queries and transactions itself, so a transaction holds everyone else up
 * and must stay short. `dataDir` undefined keeps the database in memory; a folder is
 * held by one process at a time (two writing to it would corrupt it), see lockFolder.
 */
export async function createPgliteClient(dataDir?: string): Promise<SqlClient> {
  const lock = dataDir === undefined ? undefined : await lockFolder(dataDir);
  let db: PGlite;
  try {
    // int8 as text, as pg returns it, so both adapters hand the store the same values.
    // pg_trgm as on a PostgreSQL server: databases made before the search kept only keyed
    // digests (migration 018) have it installed.
    db = await PGlite.create(dataDir, { parsers: { [types.INT8]: (value: string) => value }, extensions: { pg_trgm } });
  } catch (error) {
    await lock?.release();
    throw error;
  }
  return {
    ...queryable(db),
    transaction: (work) => db.transaction((tx) => work(queryable(tx))),
    close: async () => {
      await db.close();
      await lock?.release();
    },
  };
}
