import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { defaultRateTable } from '../../domain/rates.ts';
import { SqlEventStore } from '../../eventstore/store.ts';
import { openTestPglite, type TestDatabase } from '../../eventstore/testing.ts';
import { applicationStreamId } from './events.ts';
import { createApplicationService, type ApplicationService } from './service.ts';

const context = { correlationId: randomUUID(), actor: 'test' };

describe('PropertyDetailsUpdated v1 read as v2', () => {
  let database: TestDatabase;
  let store: SqlEventStore;
  let applications: ApplicationService;

  before(async () => {
    database = await openTestPglite();
    store = new SqlEventStore(database.client);
    applications = createApplicationService({ store, clock: () => new Date(), newId: randomUUID, rateTable: () => defaultRateTable, limits: { minLoanCents: 3_000_000 } });
  });
  after(() => database.dispose());

  it('replays a stored v1 event with energyClass "unknown", and leaves the stored event as it was', async () => {
    const { applicationId } = await applications.submit(
      {
        applicant: { firstName: 'Giulia', lastName: 'Bianchi', taxCode: 'BNCGLI90C55F205Z', email: 'giulia@example.com' },
        income: { monthlyNetCents: 320_000, monthlyDebtsCents: 0, employment: 'permanent' },
        property: { valueCents: 30_000_000, region: 'Lombardia', energyClass: 'B' },
        loan: { amountCents: 20_000_000, termYears: 25, rateType: 'fixed', publicGuarantee: false },
      },
      context,
    );
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
    await applications.execute(applicationId, { type: 'UpdatePropertyDetails', property: { valueCents: 32_000_000, region: 'Lazio', energyClass: 'C' } }, context);
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
