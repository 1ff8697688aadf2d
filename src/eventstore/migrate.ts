import { readdir, readFile } from 'node:fs/promises';
import type { SqlClient } from './sql-client.ts';

const migrationsDir = new URL('./migrations/', import.meta.url);
const migrationFile = /^(\d{3})_[a-z0-9_]+\.sql$/;

/**
 * Applies the numbered SQL files of migrations/ that are not applied yet, in order,
 * in one transaction. The advisory lock lets several processes start at once: the
 * first applies, the others wait and then find nothing left to do.
 */
export async function migrate(client: SqlClient): Promise<number[]> {
  const files = (await readdir(migrationsDir)).filter((name) => migrationFile.test(name)).sort();
  return client.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('mutuo.migrations'))`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS mutuo_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const applied = new Set(
      (await tx.query<{ version: number }>('SELECT version FROM mutuo_migrations')).map((row) => row.version),
    );
    const appliedNow: number[] = [];
    for (const name of files) {
      const version = Number(name.slice(0, 3));
      if (applied.has(version)) continue;
      await tx.exec(await readFile(new URL(name, migrationsDir), 'utf8'));
      await tx.query('INSERT INTO mutuo_migrations (version, name) VALUES ($1, $2)', [version, name]);
      appliedNow.push(version);
    }
    return appliedNow;
  });
}
