import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { loadConfig } from '../../app/config.ts';
import { openPlatform, type Platform } from '../../app/platform.ts';
import { installmentCents } from '../../domain/amortization.ts';
import { defaultRateTable, loanToValueBps, publishedRateFor } from '../../domain/rates.ts';
import { createSleeper } from '../../platform/runtime/sleeper.ts';
import { injectedBearer, type DemoUserId } from '../../security/testing.ts';
import { creditCheckStreamId } from './events.ts';

const submission = JSON.parse(readFileSync(new URL('../../../test/fixtures/submission.json', import.meta.url), 'utf8')) as {
  loan: { amount: number; termYears: number; rateType: 'fixed' | 'variable' };
  property: { value: number };
};

/** A published table far from the default one: every loan of either type at 9.125 %. */
const publishedRate = 9.125;
const oneBand = [{ maxTermYears: 40, maxLtv: 100, annualRate: publishedRate }];

describe('the Scoring service prices a credit check at the rate table published now', () => {
  let dataDir: string;
  let platform: Platform;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-scoring-'));
    platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0' }), false, {
      services: ['application', 'scoring', 'projector', 'query'],
    });
  });
  after(async () => {
    await platform?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function call<T>(method: InjectOptions['method'], url: string, payload?: object, user: DemoUserId = 'olivia') {
    const response = await platform.server.inject({ method, url, headers: await injectedBearer(platform.server, user), ...(payload ? { payload } : {}) });
    assert.ok(response.statusCode < 300, `${method} ${url}: ${response.statusCode} ${response.body}`);
    return response.json<T>();
  }

  /** The credit check's decision on the application, once the service has made it. */
  async function decision(applicationId: string): Promise<{ type: string; data: { installmentCents: number | null } }> {
    const sleeper = createSleeper();
    for (let tries = 0; tries < 600; tries++) {
      const [event] = await platform.client.query<{ type: string; data: { installmentCents: number | null } }>(
        `SELECT event_type AS type, data FROM mutuo_events WHERE stream_id = $1 AND event_type IN ('CreditScoreApproved', 'CreditScoreRejected')`,
        [creditCheckStreamId(applicationId)],
      );
      if (event) return event;
      await sleeper.sleep(100);
    }
    assert.fail(`no credit decision on ${applicationId}`);
  }

  it('takes the rate of the published table, not the default one', async () => {
    const published = await call<{ position: string }>('PUT', '/api/rates', { fixed: oneBand, variable: oneBand, reason: 'a market shock' });
    // The table is in the rates read model before the submission is made.
    const rates = await call<{ fixed: { annualRate: number }[] }>('GET', `/api/rates?minPosition=${published.position}`);
    assert.deepEqual(
      rates.fixed.map((band) => band.annualRate),
      [publishedRate],
    );

    const { applicationId } = await call<{ applicationId: string }>('POST', '/api/applications', submission, 'giulia');
    const { data } = await decision(applicationId);

    const loan = { principalCents: submission.loan.amount * 100, periods: 12 * submission.loan.termYears };
    const atPublished = installmentCents({ ...loan, annualRate: String(publishedRate) });
    const ltvBps = loanToValueBps(loan.principalCents, submission.property.value * 100);
    const defaultRate = publishedRateFor(defaultRateTable, { rateType: submission.loan.rateType, termYears: submission.loan.termYears, ltvBps })!;
    assert.notEqual(atPublished, installmentCents({ ...loan, annualRate: defaultRate }), 'the two tables price this loan apart');
    assert.equal(data.installmentCents, atPublished);
  });
});
