import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { annualRateFromUnits, annualRateUnits } from '../../src/domain/annual-rate.ts';
import { parseSimulationRequest } from '../../src/domain/simulation.ts';
import { injectedBearer, type DemoUserId } from '../../src/security/testing.ts';
import { sagaInputOf } from '../../src/features/bank-gateway/module.ts';
import { currentBookLayout, decodeRequest, encodeRequest, type BookRequest } from '../../src/features/bank-gateway/mainframe-protocol.ts';
import { reactToInput, initialSagaState, type SagaInput } from '../../src/features/bank-gateway/saga.ts';
import { platformEventCatalog, type PlatformEvent } from '../../src/app/catalog.ts';

const submission = JSON.parse(readFileSync(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as object;

/** Any rate Mutuo accepts: 0 to 20 %, with up to 4 decimals. */
const allowedRate = fc.integer({ min: 0, max: 200_000 }).map((units) => annualRateFromUnits(units, 4));

/**
 * A rate of any allowed precision, sent as a JSON number through the API, comes out as the
 * same decimal everywhere it goes: the published table, the events, the views, the
 * simulation's input and answer, and the Bank Gateway's booking record for the mainframe.
 */
describe('a rate of any allowed precision, end to end', () => {
  let dataDir: string;
  let platform: Platform;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-rates-'));
    platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0' }), false, {
      services: ['application', 'projector', 'query'],
    });
  });
  after(async () => {
    await platform?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function call<T>(method: InjectOptions['method'], url: string, payload?: object, user: DemoUserId = 'olivia', headers: Record<string, string> = {}) {
    const response = await platform.server.inject({
      method,
      url,
      headers: { ...(await injectedBearer(platform.server, user)), ...headers },
      ...(payload ? { payload } : {}),
    });
    assert.ok(response.statusCode < 300, `${method} ${url}: ${response.statusCode} ${response.body}`);
    return { body: response.json<T>(), text: response.body };
  }

  /** The number as JSON writes it: the decimal the API answered. */
  const written = (value: unknown) => JSON.stringify(value);

  it('is the same decimal in the table, the events, the views, the simulation and the mainframe record', async () => {
    await fc.assert(
      fc.asyncProperty(allowedRate, allowedRate, async (published, changed) => {
        // The operator publishes a table whose every band is at `published`.
        const band = { maxTermYears: 40, maxLtv: 100, annualRate: Number(published) };
        const table = await call<{ position: number }>('PUT', '/api/rates', { fixed: [band], variable: [band], reason: 'a finer table' });
        const shown = await call<{ fixed: { annualRate: number }[] }>('GET', `/api/rates?minPosition=${table.body.position}`);
        assert.equal(written(shown.body.fixed[0]!.annualRate), published);

        // An application locks it, and an operator changes it to `changed`.
        const { applicationId } = (await call<{ applicationId: string }>('POST', '/api/applications', submission, 'giulia')).body;
        await call('POST', `/api/applications/${applicationId}/rate-lock`, {});
        const change = await call<{ position: number }>('POST', `/api/applications/${applicationId}/rate`, {
          annualRate: Number(changed),
          reason: 'negotiated',
        });

        // After the submission, the rate events as stored, read with their personal data (the reason) revealed.
        const trail = await call<{ type: string; schemaVersion: number; data: unknown }[]>('GET', `/api/applications/${applicationId}/events`);
        const rateEvents = trail.body.slice(1).map((event) => platformEventCatalog.decode(event.type, event.schemaVersion, event.data) as PlatformEvent);
        const [locked, rateChanged] = rateEvents;
        assert.deepEqual(locked?.type === 'InterestRateLocked' && locked.data.annualRate, published);
        assert.deepEqual(rateChanged?.type === 'InterestRateChanged' && [rateChanged.data.annualRate, rateChanged.data.previousAnnualRate], [
          changed,
          published,
        ]);

        const customer = await call<{ rate: { annualRate: number } }>(
          'GET',
          `/api/applications/${applicationId}?minPosition=${change.body.position}`,
          undefined,
          'giulia',
        );
        assert.equal(written(customer.body.rate.annualRate), changed);
        const state = await call<{ rate: { annualRate: number } }>('GET', `/api/applications/${applicationId}/state`);
        assert.equal(written(state.body.rate.annualRate), changed);

        const simulation = { amount: 200_000, termYears: 25, annualRate: Number(changed) };
        const input = parseSimulationRequest(JSON.parse(JSON.stringify(simulation)));
        assert.equal(input.ok && input.value.annualRate, changed);
        assert.equal(written((await call<{ annualRate: number }>('POST', '/api/simulations', simulation)).body.annualRate), changed);

        // The Bank Gateway's saga, fed the rate events as its consumer is, books at `changed`.
        const inputs: SagaInput[] = [
          { type: 'MortgageApplicationSubmitted', applicationId, applicant: { $sealed: 'v1.subject.iv.ciphertext' }, amountCents: 20_000_000, termYears: 25 },
          ...rateEvents.map((event) => sagaInputOf(event as Parameters<typeof sagaInputOf>[0])!),
          { type: 'CreditScoreApproved' },
          { type: 'DocumentsValidated' },
        ];
        let saga = initialSagaState;
        const actions = inputs.flatMap((next) => {
          const step = reactToInput(saga, next, new Date());
          saga = step.state;
          return step.actions;
        });
        const [booking] = actions;
        assert.ok(booking?.type === 'RequestFinalization');
        const { applicant: _sealed, ...booked } = booking;
        // The Bank Gateway opens the sealed applicant for the tax code it books under.
        const request: BookRequest = {
          ...booked,
          taxCode: 'BNCGLI90C55F205Z',
          type: 'BOOK',
          layout: currentBookLayout,
          requestedAt: new Date('2026-11-23T10:00:00Z'),
        };
        const record = encodeRequest(request).toString('latin1');
        assert.equal(record.slice(0, 6), 'BOOK2 ');
        assert.equal(Number(record.slice(68, 77)), annualRateUnits(changed, 6), `the rate field of ${JSON.stringify(record)}`);
        assert.equal((decodeRequest(Buffer.from(record, 'latin1')) as BookRequest).annualRate, changed);
      }),
      { numRuns: 15 },
    );
  });
});
