import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { annualRateFromBasisPoints, annualRatePercent } from '../../domain/annual-rate.ts';
import { EventDecodeError } from '../../platform/eventstore/event-catalog.ts';
import { platformEventCatalog } from '../../app/catalog.ts';

/**
 * Until rates could have more than two decimals, every event that carries one stored it in
 * basis points (v1). Those events stay as they were stored; each is read as its v2, with
 * the same rate as a decimal percentage.
 */
const bps = fc.integer({ min: 0, max: 100_000 });
const instant = fc
  .date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true })
  .map((date) => date.toISOString());

/** The same rate: the decimal percentage of the basis points, which the API showed as bps / 100. */
function sameRate(rate: unknown, storedBps: number): void {
  assert.equal(rate, annualRateFromBasisPoints(storedBps));
  assert.equal(annualRatePercent(rate as string), storedBps / 100);
}

const read = (type: string, data: unknown) => {
  const event = platformEventCatalog.decode(type, 1, data);
  assert.equal(event.schemaVersion, 2);
  return event.data as Record<string, unknown>;
};

describe('rate events stored in basis points (v1), read as v2', () => {
  it('InterestRateLocked', () => {
    fc.assert(
      fc.property(bps, fc.integer({ min: 1, max: 90 }), instant, instant, (annualRateBps, lockDays, lockedAt, expiresAt) => {
        const { annualRate, ...rest } = read('InterestRateLocked', { annualRateBps, lockDays, lockedAt, expiresAt });
        sameRate(annualRate, annualRateBps);
        assert.deepEqual(rest, { lockDays, lockedAt, expiresAt });
      }),
    );
  });

  it('InterestRateChanged, with or without a previous rate', () => {
    fc.assert(
      fc.property(bps, fc.option(bps, { nil: null }), fc.string(), instant, (annualRateBps, previousAnnualRateBps, reason, changedAt) => {
        const { annualRate, previousAnnualRate, ...rest } = read('InterestRateChanged', { annualRateBps, previousAnnualRateBps, reason, changedAt });
        sameRate(annualRate, annualRateBps);
        if (previousAnnualRateBps === null) assert.equal(previousAnnualRate, null);
        else sameRate(previousAnnualRate, previousAnnualRateBps);
        assert.deepEqual(rest, { reason, changedAt });
      }),
    );
  });

  it('InterestRateLockExpired', () => {
    fc.assert(
      fc.property(bps, instant, instant, instant, (annualRateBps, lockedAt, expiresAt, expiredAt) => {
        const { annualRate, ...rest } = read('InterestRateLockExpired', { annualRateBps, lockedAt, expiresAt, expiredAt });
        sameRate(annualRate, annualRateBps);
        assert.deepEqual(rest, { lockedAt, expiresAt, expiredAt });
      }),
    );
  });

  it('MortgageFinalizationRequested', () => {
    fc.assert(
      fc.property(bps, fc.integer({ min: 1, max: 480 }), instant, (annualRateBps, termMonths, at) => {
        const stored = {
          applicationId: '0b9d6c1e-3f4a-4c2b-9a77-1d2e3f4a5b6c',
          idempotencyKey: '0b9d6c1e3f4a4c2b9a771d2e3f4a5b6c',
          amountCents: 20_000_000,
          annualRateBps,
          termMonths,
          rateLockExpiresAt: at,
          requestedAt: at,
        };
        const { annualRate, ...rest } = read('MortgageFinalizationRequested', stored);
        sameRate(annualRate, annualRateBps);
        const { annualRateBps: _stored, ...others } = stored;
        assert.deepEqual(rest, others);
      }),
    );
  });

  it('RateTablePublished, every band', () => {
    const band = fc.record({
      maxTermYears: fc.integer({ min: 1, max: 40 }),
      maxLtvBps: fc.integer({ min: 1, max: 10_000 }),
      annualRateBps: fc.integer({ min: 0, max: 2_000 }),
    });
    const bands = fc.array(band, { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(bands, bands, instant, (fixed, variable, publishedAt) => {
        const data = read('RateTablePublished', { bands: { fixed, variable }, reason: 'the ECB moved', publishedAt }) as {
          bands: Record<'fixed' | 'variable', { maxTermYears: number; maxLtvBps: number; annualRate: string }[]>;
        };
        for (const [type, stored] of [
          ['fixed', fixed],
          ['variable', variable],
        ] as const) {
          assert.equal(data.bands[type].length, stored.length);
          data.bands[type].forEach(({ annualRate, ...rest }, i) => {
            sameRate(annualRate, stored[i]!.annualRateBps);
            assert.deepEqual(rest, { maxTermYears: stored[i]!.maxTermYears, maxLtvBps: stored[i]!.maxLtvBps });
          });
        }
      }),
    );
  });

  it('refuses a v1 event whose rate is not a whole number of basis points, saying it could not be upcast', () => {
    for (const annualRateBps of [2.5, -1, '250', undefined]) {
      assert.throws(
        () =>
          platformEventCatalog.decode('InterestRateLockExpired', 1, {
            annualRateBps,
            lockedAt: '2026-01-01T00:00:00.000Z',
            expiresAt: '2026-01-31T00:00:00.000Z',
            expiredAt: '2026-01-31T00:00:00.000Z',
          }),
        (error) =>
          error instanceof EventDecodeError && error.reason === 'INVALID' && /InterestRateLockExpired v1 could not be upcast to v2/.test(error.message),
        String(annualRateBps),
      );
    }
  });
});
