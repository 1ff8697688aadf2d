import { annualRateFromPercent, annualRatePercent, annualRateRule } from '../../domain/annual-rate.ts';
import { invalidInput, type FieldError } from '../../domain/errors.ts';
import { basisPointsToPercent, percentToBasisPoints } from '../../domain/money.ts';
import { defaultRateTable, type RateBand, type RateTable, type RateType } from '../../domain/rates.ts';
import type { StoredEvent } from '../../platform/eventstore/types.ts';
import { rateEventCatalog } from './events.ts';

export const rateTypes: readonly RateType[] = ['fixed', 'variable'];

/** The table a stored RateTablePublished published, of whatever version it was stored as. */
export function publishedTable(stored: StoredEvent): RateTable {
  const { data } = rateEventCatalog.decode(stored.type, stored.schemaVersion, stored.data);
  return { publishedAt: data.publishedAt, bands: data.bands };
}

/** The table in force after these events of the rate-table stream (the default before any). */
export function rateTableAfter(events: readonly StoredEvent[]): { table: RateTable; version: number } {
  const last = events.at(-1);
  if (!last) return { table: defaultRateTable, version: 0 };
  return { table: publishedTable(last), version: last.streamVersion };
}

/** The table in the units of the HTTP contract: percentages. */
export function rateTableView(table: RateTable, version: number) {
  const bands = (type: RateType) =>
    table.bands[type].map((band) => ({
      maxTermYears: band.maxTermYears,
      maxLtv: basisPointsToPercent(band.maxLtvBps),
      annualRate: annualRatePercent(band.annualRate),
    }));
  return { version, publishedAt: table.publishedAt, fixed: bands('fixed'), variable: bands('variable') };
}

/**
 * A table an operator sends: for each rate type, bands of { maxTermYears, maxLtv (%),
 * annualRate (%) }. Every loan the platform accepts (up to 40 years, up to 100 % of the
 * value) must find a band, so each type needs one reaching 40 years and 100 %.
 */
export function parseRateTable(body: unknown): { bands: RateTable['bands']; reason: string } {
  const errors: FieldError[] = [];
  const input = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  for (const key of Object.keys(input)) if (![...rateTypes, 'reason'].includes(key)) errors.push({ path: key, message: 'is not a field of a rate table' });
  const reason = typeof input.reason === 'string' ? input.reason.trim() : '';
  if (reason.length === 0 || reason.length > 200) errors.push({ path: 'reason', message: 'must be 1 to 200 characters' });
  const bands = {} as Record<RateType, RateBand[]>;
  for (const type of rateTypes) {
    const list = input[type];
    if (!Array.isArray(list) || list.length === 0 || list.length > 100) {
      errors.push({ path: type, message: 'must be a list of 1 to 100 bands' });
      continue;
    }
    bands[type] = [];
    list.forEach((raw: unknown, i) => {
      const band = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      const path = `${type}[${i}]`;
      const term = band.maxTermYears;
      if (!Number.isInteger(term) || (term as number) < 1 || (term as number) > 40)
        errors.push({ path: `${path}.maxTermYears`, message: 'must be a whole number of years, 1 to 40' });
      const ltv = typeof band.maxLtv === 'number' ? percentToBasisPoints(band.maxLtv) : null;
      if (ltv === null || ltv < 1 || ltv > 10_000)
        errors.push({ path: `${path}.maxLtv`, message: 'must be a percentage above 0 and at most 100, with at most two decimals' });
      const rate = typeof band.annualRate === 'number' ? annualRateFromPercent(band.annualRate) : null;
      if (rate === null) errors.push({ path: `${path}.annualRate`, message: annualRateRule });
      for (const key of Object.keys(band))
        if (!['maxTermYears', 'maxLtv', 'annualRate'].includes(key)) errors.push({ path: `${path}.${key}`, message: 'is not a field of a band' });
      if (ltv !== null && rate !== null) bands[type].push({ maxTermYears: term as number, maxLtvBps: ltv, annualRate: rate });
    });
    if (!bands[type].some((band) => band.maxTermYears === 40 && band.maxLtvBps === 10_000)) {
      errors.push({ path: type, message: 'needs a band up to 40 years and 100 %, so that every loan finds a rate' });
    }
  }
  if (errors.length > 0) throw invalidInput(errors);
  // The first band that fits applies: shortest terms, then lowest loan-to-value first.
  for (const type of rateTypes) bands[type].sort((a, b) => a.maxTermYears - b.maxTermYears || a.maxLtvBps - b.maxLtvBps);
  return { bands, reason };
}
