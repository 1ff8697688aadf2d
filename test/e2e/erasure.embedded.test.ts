import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/app/config.ts';
import { describeErasure, erasurePlatform } from './erasure.contract.ts';

describeErasure('embedded, one process on PGlite', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-erasure-'));
  const config = loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0' });
  return erasurePlatform(config, () => rm(dataDir, { recursive: true, force: true }));
});
