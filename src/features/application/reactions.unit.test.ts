import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { replay } from '../../domain/decider.ts';
import { defaultRateTable } from '../../domain/rates.ts';
import { applicationDecider, type SubmitApplication } from './decider.ts';
import { reactionTo } from './module.ts';

/** An outcome of another service, as the Application service reads it. */
type Outcome = Parameters<typeof reactionTo>[0];

const applicationId = '3f0b8c1e-6d1a-4b8e-9f1e-2a7c5d4e8b10';
const context = { now: new Date('2026-11-10T09:00:00.000Z'), rateTable: defaultRateTable, limits: { minLoanCents: 3_000_000 } };
const submit: SubmitApplication = {
  type: 'SubmitApplication',
  applicationId,
  applicant: {
    firstName: 'Giulia',
    lastName: 'Bianchi',
    taxCode: 'BNCGLI90C55F205Z',
    email: 'giulia.bianchi@example.it',
    phone: '+39 333 1234567',
    birthDate: '1990-03-15',
  },
  income: { monthlyNetCents: 350_000, monthlyDebtsCents: 20_000, employment: 'permanent' },
  property: { valueCents: 30_000_000, region: 'Lombardia', province: 'MI', type: 'apartment', energyClass: 'B' },
  loan: { amountCents: 20_000_000, termYears: 25, rateType: 'fixed', publicGuarantee: false },
};
const processing = replay(applicationDecider, applicationDecider.decide(submit, applicationDecider.initialState, context));

const anyReasons = fc.array(fc.string({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 12 });

describe("the application's reactions to the other services", () => {
  it('turns any final document rejection into a rejection the application accepts, whatever the length of the findings', () => {
    fc.assert(
      fc.property(anyReasons, (reasons) => {
        const event = { type: 'DocumentsRejected', data: { reasons, final: true } } as unknown as Outcome;
        const command = reactionTo(event);
        assert.ok(command?.type === 'RejectApplication');
        assert.ok(command.reason.startsWith('documents: '));
        const [rejected] = applicationDecider.decide(command, processing, context);
        assert.equal(rejected?.type, 'ApplicationRejected');
      }),
    );
  });

  it('turns any credit refusal and any failed booking into an accepted rejection', () => {
    fc.assert(
      fc.property(anyReasons, (texts) => {
        const credit = { type: 'CreditScoreRejected', data: { reasons: texts.map((message) => ({ code: 'X', message })) } } as unknown as Outcome;
        const booking = { type: 'MortgageFinalizationFailed', data: { reason: texts.join(' ') } } as unknown as Outcome;
        for (const event of [credit, booking]) {
          const command = reactionTo(event);
          assert.ok(command?.type === 'RejectApplication');
          assert.equal(applicationDecider.decide(command, processing, context)[0]?.type, 'ApplicationRejected');
        }
      }),
    );
  });

  it('waits for corrected documents after a rejection that is not final', () => {
    assert.equal(reactionTo({ type: 'DocumentsRejected', data: { reasons: ['the payslip is unreadable'], final: false } } as unknown as Outcome), undefined);
  });
});
