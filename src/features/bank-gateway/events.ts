import { Type, type Static } from '@sinclair/typebox';
import { annualRateFromBasisPoints, annualRatePattern } from '../../domain/annual-rate.ts';
import { defineEvent } from '../../platform/eventstore/event-definition.ts';

const Uuid = Type.String({ format: 'uuid' });
const Instant = Type.String({ format: 'date-time' });
const Cents = Type.Integer({ minimum: 0, description: 'euro cents' });

/** v1, before rates had more than two decimals: the rate in basis points. */
export const MortgageFinalizationRequestedV1 = defineEvent(
  'MortgageFinalizationRequested',
  1,
  Type.Object({
    applicationId: Uuid,
    /** Sent with every call for this booking, so a retry never books twice. */
    idempotencyKey: Type.String(),
    amountCents: Cents,
    annualRateBps: Type.Integer({ minimum: 0 }),
    termMonths: Type.Integer({ minimum: 1 }),
    rateLockExpiresAt: Instant,
    requestedAt: Instant,
  }),
);

/** The rate as a decimal percentage ("3.875" is 3.875 %); a v1 event is read with the same rate (the schemas alone could not read one as the other). */
export const MortgageFinalizationRequested = defineEvent(
  'MortgageFinalizationRequested',
  2,
  Type.Object({
    applicationId: Uuid,
    /** Sent with every call for this booking, so a retry never books twice. */
    idempotencyKey: Type.String(),
    amountCents: Cents,
    annualRate: Type.String({ pattern: annualRatePattern, description: 'annual rate, a decimal percentage ("3.875" is 3.875 %)' }),
    termMonths: Type.Integer({ minimum: 1 }),
    rateLockExpiresAt: Instant,
    requestedAt: Instant,
  }),
  {
    upcast: (previous) => {
      const { annualRateBps, ...rest } = previous as Static<typeof MortgageFinalizationRequestedV1.schema>;
      return { ...rest, annualRate: annualRateFromBasisPoints(annualRateBps) };
    },
  },
);

export const MortgageFinalized = defineEvent(
  'MortgageFinalized',
  1,
  Type.Object({
    applicationId: Uuid,
    idempotencyKey: Type.String(),
    contractNumber: Type.String(),
    attempts: Type.Integer({ minimum: 1 }),
    finalizedAt: Instant,
  }),
);

export const MortgageFinalizationFailed = defineEvent(
  'MortgageFinalizationFailed',
  1,
  Type.Object({
    applicationId: Uuid,
    idempotencyKey: Type.String(),
    /** The mainframe's refusal code (FUND, BLCK, …), or TIMEOUT / UNAVAILABLE when it never answered. */
    code: Type.String(),
    reason: Type.String(),
    attempts: Type.Integer({ minimum: 1 }),
    failedAt: Instant,
  }),
);

/** A booking made after the applicant withdrew, undone on the mainframe. */
export const MortgageBookingCancelled = defineEvent(
  'MortgageBookingCancelled',
  1,
  Type.Object({ applicationId: Uuid, contractNumber: Type.String(), reason: Type.String(), cancelledAt: Instant }),
);

export const gatewayEventHistory = [
  MortgageFinalizationRequestedV1,
  MortgageFinalizationRequested,
  MortgageFinalized,
  MortgageFinalizationFailed,
  MortgageBookingCancelled,
] as const;

export const finalizationStreamId = (applicationId: string): string => `finalization-${applicationId}`;
