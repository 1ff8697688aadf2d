import { Type, type Static } from '@sinclair/typebox';
import { annualRateFromBasisPoints, annualRatePattern } from '../../domain/annual-rate.ts';
import { createEventCatalog } from '../../platform/eventstore/event-catalog.ts';
import { defineEvent, type EventOf } from '../../platform/eventstore/event-definition.ts';
import { erasedText } from '../../privacy/erased.ts';

/** The applicant of an erased person's application, in the events and in every read model. */
export const erasedApplicant = { firstName: erasedText, lastName: erasedText, taxCode: erasedText, email: erasedText } as const;

const Cents = Type.Integer({ minimum: 0, description: 'euro cents' });
/** How rates were stored until they could have more than two decimals (v1 of the rate events). */
const BasisPoints = Type.Integer({ minimum: 0, description: 'annual rate in basis points (250 = 2.50 %)' });
const AnnualRate = Type.String({ pattern: annualRatePattern, description: 'annual rate, a decimal percentage ("3.875" is 3.875 %)' });
const Instant = Type.String({ format: 'date-time' });

export const energyClasses = ['A4', 'A3', 'A2', 'A1', 'B', 'C', 'D', 'E', 'F', 'G', 'unknown'] as const;
export const employmentKinds = ['permanent', 'fixed-term', 'self-employed', 'retired', 'other'] as const;

export const ApplicantSchema = Type.Object({
  firstName: Type.String(),
  lastName: Type.String(),
  taxCode: Type.String(),
  email: Type.String(),
  phone: Type.Optional(Type.String()),
  birthDate: Type.Optional(Type.String({ format: 'date' })),
});

export const IncomeSchema = Type.Object({
  monthlyNetCents: Cents,
  monthlyDebtsCents: Cents,
  employment: Type.Union(employmentKinds.map((kind) => Type.Literal(kind))),
});

export const PropertySchema = Type.Object({
  valueCents: Cents,
  region: Type.String(),
  province: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  // The default is what a property recorded before energy classes were asked for reads as.
  energyClass: Type.Union(
    energyClasses.map((energyClass) => Type.Literal(energyClass)),
    { default: 'unknown' },
  ),
});

export const LoanSchema = Type.Object({
  amountCents: Cents,
  termYears: Type.Integer(),
  rateType: Type.Union([Type.Literal('fixed'), Type.Literal('variable')]),
  publicGuarantee: Type.Boolean(),
});

/**
 * The applicant is personal data: sealed with their key when stored, read as erased
 * names once the key is destroyed. The rest (income, property, loan) are the facts of
 * the application, kept for the bank's records.
 */
export const MortgageApplicationSubmitted = defineEvent(
  'MortgageApplicationSubmitted',
  1,
  Type.Object({
    applicationId: Type.String({ format: 'uuid' }),
    applicant: ApplicantSchema,
    income: IncomeSchema,
    property: PropertySchema,
    loan: LoanSchema,
    submittedAt: Instant,
  }),
  {
    personal: {
      taxCode: (data) => data.applicant.taxCode,
      erased: { applicant: { ...erasedApplicant } },
    },
  },
);

/**
 * Free text an operator or the applicant writes about the application may name the person:
 * sealed for the applicant whose data the application's stream holds, read as erased with it.
 */
const freeText = <Field extends string>(field: Field) => ({ personal: { ofStream: true, erased: { [field]: erasedText } } }) as const;

export const IncomeApproved = defineEvent(
  'IncomeApproved',
  1,
  Type.Object({ verifiedMonthlyNetCents: Cents, note: Type.Union([Type.String(), Type.Null()]), approvedAt: Instant }),
  freeText('note'),
);

/**
 * The rate events' v1 held the rate in basis points, which cannot say 3.875 %; v2 holds it
 * as a decimal percentage. A stored v1 event is read as v2 with the same rate, by the
 * upcast of each v2: the schemas alone could not read one as the other.
 */
const rateInBasisPointsRead = <Data extends { readonly annualRateBps: number }>({ annualRateBps, ...rest }: Data) => ({
  ...rest,
  annualRate: annualRateFromBasisPoints(annualRateBps),
});

export const InterestRateLockedV1 = defineEvent(
  'InterestRateLocked',
  1,
  Type.Object({ annualRateBps: BasisPoints, lockDays: Type.Integer({ minimum: 1 }), lockedAt: Instant, expiresAt: Instant }),
);

export const InterestRateLocked = defineEvent(
  'InterestRateLocked',
  2,
  Type.Object({ annualRate: AnnualRate, lockDays: Type.Integer({ minimum: 1 }), lockedAt: Instant, expiresAt: Instant }),
  { upcast: (previous) => rateInBasisPointsRead(previous as Static<typeof InterestRateLockedV1.schema>) },
);

export const InterestRateChangedV1 = defineEvent(
  'InterestRateChanged',
  1,
  Type.Object({
    annualRateBps: BasisPoints,
    previousAnnualRateBps: Type.Union([BasisPoints, Type.Null()]),
    reason: Type.String(),
    changedAt: Instant,
  }),
  freeText('reason'),
);

export const InterestRateChanged = defineEvent(
  'InterestRateChanged',
  2,
  Type.Object({
    annualRate: AnnualRate,
    previousAnnualRate: Type.Union([AnnualRate, Type.Null()]),
    reason: Type.String(),
    changedAt: Instant,
  }),
  {
    ...freeText('reason'),
    upcast: (previous) => {
      const { previousAnnualRateBps, ...rest } = previous as Static<typeof InterestRateChangedV1.schema>;
      return { ...rateInBasisPointsRead(rest), previousAnnualRate: previousAnnualRateBps === null ? null : annualRateFromBasisPoints(previousAnnualRateBps) };
    },
  },
);

/** Raised by the lock's deadline: the lock lapsed before the mortgage was booked. */
export const InterestRateLockExpiredV1 = defineEvent(
  'InterestRateLockExpired',
  1,
  Type.Object({ annualRateBps: BasisPoints, lockedAt: Instant, expiresAt: Instant, expiredAt: Instant }),
);

export const InterestRateLockExpired = defineEvent(
  'InterestRateLockExpired',
  2,
  Type.Object({ annualRate: AnnualRate, lockedAt: Instant, expiresAt: Instant, expiredAt: Instant }),
  { upcast: (previous) => rateInBasisPointsRead(previous as Static<typeof InterestRateLockExpiredV1.schema>) },
);

/**
 * v1, before `energyClass`: read as v2 through the schema's default (`unknown`). Spelled
 * out rather than derived from PropertySchema, so later changes to the property leave
 * this registered version as it was.
 */
export const PropertyDetailsUpdatedV1 = defineEvent(
  'PropertyDetailsUpdated',
  1,
  Type.Object({
    property: Type.Object({
      valueCents: Cents,
      region: Type.String(),
      province: Type.Optional(Type.String()),
      type: Type.Optional(Type.String()),
    }),
    updatedAt: Instant,
  }),
);

/** v2 added `energyClass`; v1 events are upcast on read. */
export const PropertyDetailsUpdated = defineEvent('PropertyDetailsUpdated', 2, Type.Object({ property: PropertySchema, updatedAt: Instant }));

export const ApplicationWithdrawn = defineEvent(
  'ApplicationWithdrawn',
  1,
  Type.Object({ reason: Type.Union([Type.String(), Type.Null()]), withdrawnAt: Instant }),
  freeText('reason'),
);

export const ApplicationApproved = defineEvent('ApplicationApproved', 1, Type.Object({ contractNumber: Type.String(), approvedAt: Instant }));

export const ApplicationRejected = defineEvent('ApplicationRejected', 1, Type.Object({ reason: Type.String(), rejectedAt: Instant }), freeText('reason'));

export const applicationEventDefinitions = [
  MortgageApplicationSubmitted,
  IncomeApproved,
  InterestRateLocked,
  InterestRateChanged,
  InterestRateLockExpired,
  PropertyDetailsUpdated,
  ApplicationWithdrawn,
  ApplicationApproved,
  ApplicationRejected,
] as const;

/** Every version ever defined, oldest first: what the schema registry and the catalog hold. */
export const applicationEventHistory = [
  PropertyDetailsUpdatedV1,
  InterestRateLockedV1,
  InterestRateChangedV1,
  InterestRateLockExpiredV1,
  ...applicationEventDefinitions,
] as const;

/** Reads stored application events of any version as their latest version. */
export const applicationEventCatalog = createEventCatalog(applicationEventHistory);

type ApplicationEventDefinition = (typeof applicationEventDefinitions)[number];

/** A discriminated union: narrowing on `type` narrows `data`. */
export type ApplicationEvent = {
  [D in ApplicationEventDefinition as D['type']]: EventOf<D>;
}[ApplicationEventDefinition['type']];

export type Applicant = ApplicationEventData<'MortgageApplicationSubmitted'>['applicant'];
export type Income = ApplicationEventData<'MortgageApplicationSubmitted'>['income'];
export type Property = ApplicationEventData<'MortgageApplicationSubmitted'>['property'];
export type Loan = ApplicationEventData<'MortgageApplicationSubmitted'>['loan'];
export type ApplicationEventData<T extends ApplicationEvent['type']> = Extract<ApplicationEvent, { type: T }>['data'];

export const applicationStreamId = (applicationId: string): string => `application-${applicationId}`;
