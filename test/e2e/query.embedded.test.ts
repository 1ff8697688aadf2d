import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPlatform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { describeQuerySide, keptLogs } from './query.contract.ts';

/** The application service, the projector and the query API in one process on PGlite: the embedded default. */
describeQuerySide('embedded, on PGlite with the hot copy in memory', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-query-'));
  const { logger, lines } = keptLogs();
  const platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0' }), logger, { services: ['application', 'projector', 'query'] });
  const url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
  return {
    platform,
    url,
    logs: lines,
    close: async () => {
      await platform.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});
