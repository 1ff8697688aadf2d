import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/app/config.ts';
import { openTestPostgres } from '../../src/platform/sql/testing.ts';
import { describeErasure, erasurePlatform } from './erasure.contract.ts';
import { testRedisUrl } from '../../src/platform/redis.fixture.ts';

/** On PostgreSQL, with the customer view's hot copy in Redis: the erasure must reach it too. */
describeErasure('on PostgreSQL with the hot copy in Redis', async () => {
  const database = await openTestPostgres();
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-erasure-'));
  const config = loadConfig({
    MUTUO_DATA_DIR: dataDir,
    PORT: '0',
    DATABASE_URL: database.connectionString!,
    REDIS_URL: testRedisUrl,
    RATE_LIMIT_PUBLIC_PER_MINUTE: '0',
  });
  return erasurePlatform(config, async () => {
    await database.dispose();
    await rm(dataDir, { recursive: true, force: true });
  });
});
