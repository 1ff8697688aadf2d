import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { defaultRateTable } from '../../domain/rates.ts';
import type { SqlEventStore } from '../../platform/eventstore/store.ts';
import { sealingStore } from '../../platform/eventstore/testing.ts';
import { openTestPglite, type TestDatabase } from '../../platform/sql/testing.ts';
import { applicationStreamId } from './events.ts';
import { createApplicationService, type ApplicationService } from './service.ts';
import { applicationStateView } from './view.ts';

const context = { correlationId: randomUUID(), actor: 'test' };
const giulias = {
  applicant: { firstName: 'Giulia', lastName: 'Bianchi', taxCode: 'BNCGLI90C55F205Z', email: 'giulia@example.com' },
  income: { monthlyNetCents: 320_000, monthlyDebtsCents: 0, employment: 'permanent' },
  property: { valueCents: 30_000_000, region: 'Lombardia', energyClass: 'B' },
  loan: { amountCents: 20_000_000, termYears: 25, rateType: 'fixed', publicGuarantee: false },
} as const;

describe('application events stored at an older version, read at the latest', () => {
  let database: TestDatabase;
  let store: SqlEventStore;
  let applications: ApplicationService;

  before(async () => {
    database = await openTestPglite();
    store = sealingStore(database.client);
    applications = createApplicationService({
      store,
      clock: () => new Date(),
      newId: randomUUID,
      rateTable: () => defaultRateTable,
      limits: { minLoanCents: 3_000_000 },
    });
  });
  after(() => database.dispose());

  it('replays a stored v1 event with energyClass "unknown", and leaves the stored event as it was', async () => {
    const { applicationId } = await applications.submit(giulias, context);
    const v1Data = { property: { valueCents: 31_000_000, region: 'Lombardia', province: 'MI' }, updatedAt: '2025-03-01T10:00:00.000Z' };
    await store.appendToStream(
      applicationStreamId(applicationId),
      [
        {
          eventId: randomUUID(),
          type: 'PropertyDetailsUpdated',
          schemaVersion: 1,
          data: v1Data,
          metadata: { correlationId: randomUUID(), causationId: null, actor: 'before energy classes', occurredAt: v1Data.updatedAt },
        },
      ],
      1,
    );

    const { state, version } = await applications.stateAt(applicationId);
    assert.equal(version, 2);
    assert.equal(state.status, 'processing');
    assert.deepEqual(state.status === 'processing' && state.file.property, {
      valueCents: 31_000_000,
      region: 'Lombardia',
      province: 'MI',
      energyClass: 'unknown',
    });

    const [submitted, updated] = await store.readStream(applicationStreamId(applicationId));
    assert.equal(submitted?.schemaVersion, 1);
    assert.equal(updated?.type, 'PropertyDetailsUpdated');
    assert.equal(updated?.schemaVersion, 1);
    assert.deepEqual(updated?.data, v1Data);
  });

  it('replays rate events stored in basis points (v1) with the same rates, and records the next change at v2 with its previous rate', async () => {
    const { applicationId } = await applications.submit(giulias, context);
    const lockedAt = new Date(Date.now() - 86_400_000).toISOString();
    const expiresAt = new Date(Date.now() + 29 * 86_400_000).toISOString();
    const stored = (type: string, data: object) => ({
      eventId: randomUUID(),
      type,
      schemaVersion: 1,
      data,
      metadata: { correlationId: randomUUID(), causationId: null, actor: 'before finer rates', occurredAt: lockedAt },
    });
    await store.appendToStream(
      applicationStreamId(applicationId),
      [
        stored('InterestRateLocked', { annualRateBps: 345, lockDays: 30, lockedAt, expiresAt }),
        stored('InterestRateChanged', { annualRateBps: 295, previousAnnualRateBps: 345, reason: 'loyal customer', changedAt: lockedAt }),
      ],
      1,
    );

    const { state, version } = await applications.stateAt(applicationId);
    assert.equal(version, 3);
    assert.ok(state.status === 'processing');
    assert.equal(state.file.annualRate, '2.95');
    assert.deepEqual(state.file.rateLock, { annualRate: '2.95', lockedAt, expiresAt });
    assert.equal(applicationStateView(state, version).rate?.annualRate, 2.95, 'the percentage shown before');

    await applications.execute(applicationId, { type: 'ChangeRate', annualRate: '2.875', reason: 'a finer rate' }, context);
    const events = await store.readStream(applicationStreamId(applicationId));
    assert.deepEqual(
      events.slice(1).map((event) => [event.type, event.schemaVersion, event.data]),
      [
        ['InterestRateLocked', 1, { annualRateBps: 345, lockDays: 30, lockedAt, expiresAt }],
        ['InterestRateChanged', 1, { annualRateBps: 295, previousAnnualRateBps: 345, reason: 'loyal customer', changedAt: lockedAt }],
        ['InterestRateChanged', 2, { annualRate: '2.875', previousAnnualRate: '2.95', reason: 'a finer rate', changedAt: events[3]!.metadata.occurredAt }],
      ],
    );
  });

  it('writes new events at the latest version of their type', async () => {
    const { applicationId } = await applications.submit(
      {
        applicant: { firstName: 'Marco', lastName: 'Rossi', taxCode: 'RSSMRA85T10A562S', email: 'marco@example.com' },
        income: { monthlyNetCents: 320_000, monthlyDebtsCents: 0, employment: 'permanent' },
        property: { valueCents: 30_000_000, region: 'Lazio' },
        loan: { amountCents: 20_000_000, termYears: 25, rateType: 'fixed', publicGuarantee: false },
      },
      context,
    );
    await applications.execute(
      applicationId,
      { type: 'UpdatePropertyDetails', property: { valueCents: 32_000_000, region: 'Lazio', energyClass: 'C' } },
      context,
    );
    const events = await store.readStream(applicationStreamId(applicationId));
    assert.deepEqual(
      events.map((event) => [event.type, event.schemaVersion]),
      [
        ['MortgageApplicationSubmitted', 1],
        ['PropertyDetailsUpdated', 2],
      ],
    );
  });
});
