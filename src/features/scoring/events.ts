import { Type } from '@sinclair/typebox';
import { defineEvent } from '../../platform/eventstore/event-definition.ts';

const Uuid = Type.String({ format: 'uuid' });
const Instant = Type.String({ format: 'date-time' });
const Cents = Type.Integer({ minimum: 0, description: 'euro cents' });
const Reason = Type.Object({ code: Type.String(), message: Type.String() });

/** What a supervisor needs to retrace a credit decision. */
const CreditDecision = {
  applicationId: Uuid,
  /** The bureau that answered; null when none did. */
  bureau: Type.Union([Type.Literal('crif'), Type.Literal('experian'), Type.Null()]),
  bureauModelVersion: Type.Union([Type.String(), Type.Null()]),
  bureauReportId: Type.Union([Type.String(), Type.Null()]),
  score: Type.Union([Type.Integer(), Type.Null()]),
  band: Type.Union([Type.String(), Type.Null()]),
  /** The credit policy that decided, e.g. mutuo-credit-2026.1. */
  policyVersion: Type.String(),
  /** sha256 of the canonical JSON of the inputs the policy read. */
  inputsHash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  debtToIncomeBps: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  loanToValueBps: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  installmentCents: Type.Union([Cents, Type.Null()]),
  reasons: Type.Array(Reason),
  decidedAt: Instant,
};

export const CreditScoreApproved = defineEvent('CreditScoreApproved', 1, Type.Object(CreditDecision));
export const CreditScoreRejected = defineEvent('CreditScoreRejected', 1, Type.Object(CreditDecision));

export const CreditHoldPlaced = defineEvent('CreditHoldPlaced', 1, Type.Object({ applicationId: Uuid, holdId: Uuid, amountCents: Cents, placedAt: Instant }));

export const CreditHoldReleased = defineEvent(
  'CreditHoldReleased',
  1,
  Type.Object({ applicationId: Uuid, holdId: Uuid, amountCents: Cents, reason: Type.String(), releasedAt: Instant }),
);

export const scoringEventHistory = [CreditScoreApproved, CreditScoreRejected, CreditHoldPlaced, CreditHoldReleased] as const;

export const creditCheckStreamId = (applicationId: string): string => `credit-check-${applicationId}`;
