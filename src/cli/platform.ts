import { mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { buildServer } from '../api/server.ts';
import type { Config } from '../config.ts';
import { defaultRateTable } from '../domain/rates.ts';
import { migrate } from '../eventstore/migrate.ts';
import { createPgliteClient } from '../eventstore/pglite.ts';
import { createPostgresClient } from '../eventstore/postgres.ts';
import type { SqlClient } from '../eventstore/sql-client.ts';
import { SqlEventStore } from '../eventstore/store.ts';
import { createApplicationService } from '../services/application/service.ts';

export type Platform = { readonly server: FastifyInstance; readonly database: string; readonly close: () => Promise<void> };

/** The composition root: builds every adapter once from the configuration and wires them. */
export async function openPlatform(config: Config, logger: FastifyBaseLogger | false): Promise<Platform> {
  let client: SqlClient;
  let database: string;
  // PGlite has one connection: a second write in flight would only wait in its queue.
  let writeConcurrency = 1;
  if (config.databaseUrl) {
    client = createPostgresClient({ connectionString: config.databaseUrl, maxConnections: config.databasePoolSize });
    database = 'PostgreSQL';
    writeConcurrency = Math.min(config.databaseWriteConcurrency, config.databasePoolSize);
  } else {
    const folder = join(config.dataDir, 'pglite');
    await mkdir(folder, { recursive: true });
    client = await createPgliteClient(folder);
    database = `PGlite in ${folder}`;
  }
  try {
    await migrate(client);
  } catch (error) {
    await client.close();
    throw error;
  }
  const store = new SqlEventStore(client, { maxConcurrentWrites: writeConcurrency });
  const applications = createApplicationService({
    store,
    clock: () => new Date(),
    newId: randomUUID,
    rateTable: () => defaultRateTable,
  });
  const server = await buildServer({
    applications,
    checkReady: async () => {
      await client.query('SELECT 1');
    },
    logger,
  });
  return {
    server,
    database,
    close: async () => {
      // Stop taking requests and finish those in flight before the store goes away.
      await server.close();
      await store.close();
    },
  };
}
