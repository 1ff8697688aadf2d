import { PGlite, types } from '@electric-sql/pglite';
import { migrate } from '../eventstore/migrate.ts';
import type { SqlClient, SqlQueryable } from '../eventstore/sql-client.ts';
import { openTestPglite, type TestDatabase } from '../eventstore/testing.ts';
import { describeReadModelsContract } from './read-models.contract.ts';

describeReadModelsContract('PGlite', openTestPglite, { splitRuns: 30, trigrams: true });

/**
 * PGlite without the pg_trgm extension, as on a server where it cannot be installed:
 * the migrations skip the fuzzy index and the search must fall back to prefixes.
 */
async function openPgliteWithoutTrigrams(): Promise<TestDatabase> {
  const db = await PGlite.create({ parsers: { [types.INT8]: (value: string) => value } });
  const queryable = (target: Pick<PGlite, 'query' | 'exec'>): SqlQueryable => ({
    query: async <Row>(text: string, params?: readonly unknown[]) => (await target.query<Row>(text, params as unknown[] | undefined)).rows,
    exec: async (sql: string) => void (await target.exec(sql)),
  });
  const client: SqlClient = {
    ...queryable(db),
    transaction: (work) => db.transaction((tx) => work(queryable(tx))),
    close: () => db.close(),
  };
  await migrate(client);
  if ((await client.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'`)).length > 0) throw new Error('expected no pg_trgm');
  return {
    client,
    openAnother: () => {
      throw new Error('PGlite has a single connection');
    },
    dispose: () => client.close(),
  };
}

describeReadModelsContract('PGlite without pg_trgm', openPgliteWithoutTrigrams, { splitRuns: 5, trigrams: false });
