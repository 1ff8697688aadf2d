import { Type } from '@sinclair/typebox';
import { defineEvent } from '../../eventstore/event-definition.ts';

const Band = Type.Object({
  maxTermYears: Type.Integer({ minimum: 1, maximum: 40 }),
  /** Loan over property value, in basis points (8000 = 80 %). */
  maxLtvBps: Type.Integer({ minimum: 1, maximum: 10_000 }),
  annualRateBps: Type.Integer({ minimum: 0, maximum: 2_000 }),
});

/** An operator published a new rate table; it applies to rate locks from now on. */
export const RateTablePublished = defineEvent(
  'RateTablePublished',
  1,
  Type.Object({
    bands: Type.Object({ fixed: Type.Array(Band, { minItems: 1 }), variable: Type.Array(Band, { minItems: 1 }) }),
    reason: Type.String(),
    publishedAt: Type.String({ format: 'date-time' }),
  }),
);

export const rateEventHistory = [RateTablePublished] as const;

/** The one stream of the rate table: its versions are the table's versions. */
export const rateTableStreamId = 'rate-table';
