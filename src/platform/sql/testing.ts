import { randomUUID } from 'node:crypto';
import { migrate } from './migrate.ts';
import { createPgliteClient } from './pglite.ts';
import { createPostgresClient } from './postgres.ts';
import type { SqlClient } from './sql-client.ts';
import type { NewEvent } from '../eventstore/types.ts';
import { migrationFolders } from '../../app/migrations.ts';

/** The PostgreSQL server the integration tests use; they fail, never skip, when it is down. */
export const testDatabaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type TestDatabase = {
  readonly client: SqlClient;
  /** Opens another, independent client on the same database (for concurrent connections). */
  readonly openAnother: () => SqlClient;
  readonly dispose: () => Promise<void>;
  /** PostgreSQL only: a connection string that lands in this database's schema. */
  readonly connectionString?: string;
};

/** Up to which migration a test database is migrated: all of them unless told. */
export type TestMigrations = { readonly migratedThrough?: number };

/** A migrated, empty database in a schema of its own, dropped at dispose. */
export async function openTestPostgres(maxConnections = 20, { migratedThrough }: TestMigrations = {}): Promise<TestDatabase> {
  const schema = `mutuo_test_${randomUUID().replaceAll('-', '')}`;
  const admin = createPostgresClient({ connectionString: testDatabaseUrl, maxConnections: 1 });
  await admin.exec(`CREATE SCHEMA ${schema}`);
  const open = () => createPostgresClient({ connectionString: testDatabaseUrl, schema, maxConnections });
  const client = open();
  await migrate(client, migrationFolders, { through: migratedThrough });
  const others: SqlClient[] = [];
  const scoped = new URL(testDatabaseUrl);
  scoped.searchParams.set('options', `-c search_path=${schema}`);
  return {
    client,
    connectionString: scoped.toString(),
    openAnother: () => {
      const other = open();
      others.push(other);
      return other;
    },
    dispose: async () => {
      await Promise.all([client, ...others].map((c) => c.close()));
      await admin.exec(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    },
  };
}

export async function openTestPglite({ migratedThrough }: TestMigrations = {}): Promise<TestDatabase> {
  const client = await createPgliteClient();
  await migrate(client, migrationFolders, { through: migratedThrough });
  return {
    client,
    openAnother: () => {
      throw new Error('PGlite has a single connection');
    },
    dispose: () => client.close(),
  };
}

export function sampleEvent(type = 'SomethingHappened', data: unknown = { n: 1 }): NewEvent {
  return {
    eventId: randomUUID(),
    type,
    data,
    metadata: { correlationId: randomUUID(), causationId: null, actor: 'test', occurredAt: new Date().toISOString() },
  };
}
