import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { annualRateFromBasisPoints, annualRatePattern } from '../../domain/annual-rate.ts';
import { createEventCatalog } from '../../platform/eventstore/event-catalog.ts';
import { defineEvent } from '../../platform/eventstore/event-definition.ts';

const MaxTermYears = Type.Integer({ minimum: 1, maximum: 40 });
/** Loan over property value, in basis points (8000 = 80 %). */
const MaxLtvBps = Type.Integer({ minimum: 1, maximum: 10_000 });

const tableOf = <Band extends TSchema>(band: Band) =>
  Type.Object({
    bands: Type.Object({ fixed: Type.Array(band, { minItems: 1 }), variable: Type.Array(band, { minItems: 1 }) }),
    reason: Type.String(),
    publishedAt: Type.String({ format: 'date-time' }),
  });

/** v1, before rates had more than two decimals: each band's rate in basis points. */
export const RateTablePublishedV1 = defineEvent(
  'RateTablePublished',
  1,
  tableOf(Type.Object({ maxTermYears: MaxTermYears, maxLtvBps: MaxLtvBps, annualRateBps: Type.Integer({ minimum: 0, maximum: 2_000 }) })),
);

type BandV1 = Static<typeof RateTablePublishedV1.schema>['bands']['fixed'][number];
const bandRead = ({ annualRateBps, ...band }: BandV1) => ({ ...band, annualRate: annualRateFromBasisPoints(annualRateBps) });

/**
 * An operator published a new rate table; it applies to rate locks from now on. Each
 * band's rate is a decimal percentage ("3.875" is 3.875 %); a v1 table is read with the
 * same rates (its upcast: the schemas alone could not read one as the other).
 */
export const RateTablePublished = defineEvent(
  'RateTablePublished',
  2,
  tableOf(
    Type.Object({
      maxTermYears: MaxTermYears,
      maxLtvBps: MaxLtvBps,
      annualRate: Type.String({ pattern: annualRatePattern, description: 'annual rate, a decimal percentage ("3.875" is 3.875 %)' }),
    }),
  ),
  {
    upcast: (previous) => {
      const { bands, ...rest } = previous as Static<typeof RateTablePublishedV1.schema>;
      return { ...rest, bands: { fixed: bands.fixed.map(bandRead), variable: bands.variable.map(bandRead) } };
    },
  },
);

export const rateEventHistory = [RateTablePublishedV1, RateTablePublished] as const;

/** Reads a stored rate table of any version as the latest. */
export const rateEventCatalog = createEventCatalog(rateEventHistory);

/** The one stream of the rate table: its versions are the table's versions. */
export const rateTableStreamId = 'rate-table';
