import { readdir, readFile } from 'node:fs/promises';
import type { SqlClient } from './sql-client.ts';

const migrationFile = /^(\d{3})_[a-z0-9_]+\.sql$/;

type Migration = { readonly version: number; readonly name: string; readonly file: URL };

/** The numbered SQL files of these folders, in version order; a version found twice is refused, whichever folders hold it. */
async function migrationsIn(folders: readonly URL[]): Promise<Migration[]> {
  const found = new Map<number, Migration>();
  for (const folder of folders) {
    for (const name of (await readdir(folder)).filter((candidate) => migrationFile.test(candidate))) {
      const version = Number(name.slice(0, 3));
      const other = found.get(version);
      if (other) throw new Error(`migration ${version} is defined twice: ${other.file.pathname} and ${new URL(name, folder).pathname}`);
      found.set(version, { version, name, file: new URL(name, folder) });
    }
  }
  return [...found.values()].sort((a, b) => a.version - b.version);
}

/**
 * Applies the numbered SQL files of `folders` that are not applied yet, in the order of
 * their numbers across all folders (each module keeps the migrations of the tables it
 * owns; one numbering runs through them), in one transaction. The advisory lock lets
 * several processes start at once: the first applies, the others wait and then find
 * nothing left to do. `through` stops after that version: a migration's test lays the
 * schema it was written against, fills it as the code before it did, then migrates on.
 */
export async function migrate(client: SqlClient, folders: readonly URL[], { through = Infinity }: { readonly through?: number } = {}): Promise<number[]> {
  const migrations = (await migrationsIn(folders)).filter((migration) => migration.version <= through);
  return client.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('mutuo.migrations'))`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS mutuo_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const applied = new Set((await tx.query<{ version: number }>('SELECT version FROM mutuo_migrations')).map((row) => row.version));
    const appliedNow: number[] = [];
    for (const { version, name, file } of migrations) {
      if (applied.has(version)) continue;
      await tx.exec(await readFile(file, 'utf8'));
      await tx.query('INSERT INTO mutuo_migrations (version, name) VALUES ($1, $2)', [version, name]);
      appliedNow.push(version);
    }
    return appliedNow;
  });
}
