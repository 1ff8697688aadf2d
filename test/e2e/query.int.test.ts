import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPlatform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { openTestPostgres } from '../../src/platform/sql/testing.ts';
import { describeQuerySide, keptLogs } from './query.contract.ts';
import { testRedisUrl } from '../../src/platform/redis.fixture.ts';

/** The same on PostgreSQL, with the customer view's hot copy in Redis. */
describeQuerySide('on PostgreSQL with the hot copy in Redis', async () => {
  const database = await openTestPostgres();
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-query-'));
  const config = loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', DATABASE_URL: database.connectionString!, REDIS_URL: testRedisUrl });
  const { logger, lines } = keptLogs();
  const platform = await openPlatform(config, logger, { services: ['application', 'projector', 'query'] });
  const url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
  return {
    platform,
    url,
    logs: lines,
    close: async () => {
      await platform.close();
      await database.dispose();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});
