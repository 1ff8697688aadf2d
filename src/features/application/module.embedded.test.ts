import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { pino } from 'pino';
import { loadConfig } from '../../app/config.ts';
import { openPlatform, type Platform } from '../../app/platform.ts';
import { sealingStore } from '../../platform/eventstore/testing.ts';
import { createSleeper } from '../../platform/runtime/sleeper.ts';
import { injectedBearer, type DemoUserId } from '../../security/testing.ts';
import { creditCheckStreamId } from '../scoring/index.ts';

const submission = JSON.parse(readFileSync(new URL('../../../test/fixtures/submission.json', import.meta.url), 'utf8')) as object;

type LogLine = { level: number; msg: string; eventId?: string; eventType?: string; applicationId?: string; code?: string; reason?: string };

describe('a reaction the application refuses', () => {
  let dataDir: string;
  let platform: Platform;
  const lines: LogLine[] = [];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-reactions-'));
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0' }), logger, {
      services: ['application'],
    });
  });
  after(async () => {
    await platform?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function call(method: InjectOptions['method'], url: string, payload?: object, user: DemoUserId = 'giulia') {
    const response = await platform.server.inject({ method, url, headers: await injectedBearer(platform.server, user), ...(payload ? { payload } : {}) });
    assert.ok(response.statusCode < 300, `${method} ${url}: ${response.statusCode} ${response.body}`);
    return response;
  }

  /** The refusals counted for this reaction and code, as /metrics shows them. */
  async function refusalsCounted(reaction: string, code: string): Promise<number> {
    const metrics = (await call('GET', '/metrics', undefined, 'prometheus')).body;
    const sample = metrics.split('\n').find((line) => line.startsWith(`mutuo_reactions_refused_total{reaction="${reaction}",code="${code}"} `));
    return sample ? Number(sample.split(' ')[1]) : 0;
  }

  it('is counted in /metrics and logged with the event and the reason', async () => {
    const { applicationId } = (await call('POST', '/api/applications', submission)).json<{ applicationId: string }>();
    await call('POST', `/api/applications/${applicationId}/withdrawal`, { reason: 'found another lender' });
    const before = await refusalsCounted('CreditScoreRejected', 'APPLICATION_CLOSED');

    // The credit check's rejection arrives after the applicant withdrew: the application is closed, and refuses it.
    const eventId = randomUUID();
    const now = new Date().toISOString();
    await sealingStore(platform.client).appendToStream(
      creditCheckStreamId(applicationId),
      [
        {
          eventId,
          type: 'CreditScoreRejected',
          data: {
            applicationId,
            bureau: null,
            bureauModelVersion: null,
            bureauReportId: null,
            score: null,
            band: null,
            policyVersion: 'mutuo-credit-policy-2',
            inputsHash: '0'.repeat(64),
            debtToIncomeBps: null,
            loanToValueBps: null,
            installmentCents: null,
            reasons: [{ code: 'BUREAU_UNAVAILABLE', message: 'no credit bureau answered' }],
            decidedAt: now,
          },
          metadata: { correlationId: randomUUID(), causationId: null, actor: 'system:scoring', occurredAt: now },
        },
      ],
      'no_stream',
    );
    platform.wake();

    const sleeper = createSleeper();
    for (let tries = 0; tries < 300 && (await refusalsCounted('CreditScoreRejected', 'APPLICATION_CLOSED')) === before; tries++) await sleeper.sleep(100);
    assert.equal(await refusalsCounted('CreditScoreRejected', 'APPLICATION_CLOSED'), before + 1);
    const logged = lines.filter((line) => line.eventId === eventId);
    assert.equal(logged.length, 1, JSON.stringify(logged));
    assert.equal(logged[0]!.level, 40, 'a warning');
    assert.deepEqual([logged[0]!.eventType, logged[0]!.applicationId, logged[0]!.code], ['CreditScoreRejected', applicationId, 'APPLICATION_CLOSED']);
    assert.match(logged[0]!.reason!, /withdrawn/);

    const view = (await call('GET', `/api/applications/${applicationId}/state`, undefined, 'olivia')).json<{ status: string }>();
    assert.equal(view.status, 'withdrawn', 'the refusal changed nothing');
  });
});
