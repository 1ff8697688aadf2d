import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPlatform } from '../cli/platform.ts';
import { loadConfig } from '../config.ts';
import { describeFlow } from './flow.contract.ts';

/** Every service in one process on PGlite and the in-process bus, with the simulated bureaus, mainframe and SMTP server. */
describeFlow(
  'embedded, one process',
  async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-flow-'));
    const config = loadConfig({
      MUTUO_DATA_DIR: dataDir,
      PORT: '0',
      BUREAU_TIMEOUT_MS: '200',
      MAINFRAME_TIMEOUT_MS: '300',
      SCORING_DEADLINE_MS: '1000',
    });
    const platform = await openPlatform(config, false);
    const url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
    return {
      applicationUrl: url,
      documentsUrl: url,
      notificationUrl: url,
      database: platform.client,
      close: async () => {
        await platform.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  },
  { crowd: 60 },
);
