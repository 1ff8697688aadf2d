import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPlatform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { describeFlow } from './flow.contract.ts';
import { startSmtpSink } from '../../src/features/notification/smtp-sink.ts';

/**
 * Every service in one process on PGlite and the in-process bus, with the simulated
 * bureaus and mainframe; the emails go to an SMTP server of the test's own, and the
 * services' clock is the test's to move.
 */
describeFlow(
  'embedded, one process',
  async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-flow-'));
    const smtp = await startSmtpSink();
    const config = loadConfig({
      MUTUO_DATA_DIR: dataDir,
      PORT: '0',
      SMTP_URL: smtp.url,
      // Long enough that a busy process (every service, the read side and the simulators share
      // it, and a slow machine may run it at a third of its usual speed) is not taken for a
      // silent bureau or mainframe: a crowd's ordinary applicant whose bureau answered late
      // was rejected for "no bureau answered" (200 ms, then a 1 s deadline) on such a machine,
      // and one for "the mainframe did not answer in time after 3 attempts" (1 s each).
      BUREAU_TIMEOUT_MS: '2000',
      MAINFRAME_TIMEOUT_MS: '3000',
      // Still short, for the test of the deadline itself (both bureaus down) to end soon.
      SCORING_DEADLINE_MS: '8000',
    });
    let clockOffsetMs = 0;
    const platform = await openPlatform(config, false, { clock: () => new Date(Date.now() + clockOffsetMs) });
    const url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
    return {
      applicationUrl: url,
      documentsUrl: url,
      notificationUrl: url,
      queryUrl: url,
      database: platform.client,
      wake: platform.wake,
      mails: () => smtp.messages(),
      advanceClock: (ms) => {
        clockOffsetMs += ms;
        platform.wake();
      },
      close: async () => {
        await platform.close();
        await smtp.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  },
  { crowd: 60, clockControl: true },
);
