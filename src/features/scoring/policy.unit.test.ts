import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { annualRateFromUnits } from '../../domain/annual-rate.ts';
import {
  canonicalJson,
  creditInputsHash,
  debtToIncomeBps,
  decideCredit,
  defaultCreditPolicy,
  riskBands,
  type BureauReport,
  type CreditDecision,
  type CreditInputs,
  type CreditReasonCode,
  type RiskBand,
} from './policy.ts';

// 200,000 € over 25 years at 2.50 % -> 897.23 €/month; property 300,000 €.
const baseInputs: CreditInputs = {
  applicationId: 'app-1',
  taxCode: 'RSSMRA85T10A562S',
  monthlyNetCents: 350_000,
  monthlyDebtsCents: 20_000,
  employment: 'permanent',
  loanAmountCents: 20_000_000,
  termYears: 25,
  annualRate: '2.5',
  propertyValueCents: 30_000_000,
  publicGuarantee: false,
};

const reportWithBand = (band: RiskBand): BureauReport => ({
  bureau: 'crif',
  modelVersion: 'CRIF-SIM-2.3',
  score: 700,
  band,
  reportId: 'r-1',
});

/** given the application facts and a bureau report, when the policy decides, then ... */
const given = (overrides: Partial<CreditInputs>, band: RiskBand = 'B') => ({
  decide: (policy = defaultCreditPolicy): CreditDecision => decideCredit({ ...baseInputs, ...overrides }, reportWithBand(band), policy),
});

const codes = (decision: CreditDecision): CreditReasonCode[] => decision.reasons.map((reason) => reason.code);

describe('decideCredit', () => {
  it('given a sound application and band B, then it is approved with the computed ratios', () => {
    const decision = given({}).decide();
    assert.equal(decision.outcome, 'approved');
    assert.deepEqual(decision.reasons, []);
    assert.equal(decision.installmentCents, 89_723);
    assert.equal(decision.dtiBps, 3135); // (897.23 + 200) / 3500 = 31.349 % rounded up
    assert.equal(decision.ltvBps, 6667); // 200,000 / 300,000 = 66.67 % rounded up
  });

  it('given a rate with three decimals, then the installment and the debt-to-income are computed at exactly that rate', () => {
    const decision = given({ annualRate: '3.875' }).decide();
    assert.equal(decision.installmentCents, 104_192); // 1041.9188 €, between 1041.37 € at 3.87 % and 1042.47 € at 3.88 %
    assert.equal(decision.dtiBps, 3549); // (1041.92 + 200) / 3500 = 35.483 % rounded up
    assert.deepEqual(codes(decision), ['DEBT_TO_INCOME']);
    assert.notEqual(creditInputsHash({ ...baseInputs, annualRate: '3.875' }, 'key'), creditInputsHash({ ...baseInputs, annualRate: '3.87' }, 'key'));
  });

  it('given band D or E, then it is rejected on score', () => {
    for (const band of ['D', 'E'] as const) {
      const decision = given({}, band).decide();
      assert.equal(decision.outcome, 'rejected');
      assert.deepEqual(codes(decision), ['SCORE_BAND']);
    }
  });

  it('given debts that push the ratio over 35 %, then it is rejected on debt-to-income', () => {
    const decision = given({ monthlyDebtsCents: 35_000 }).decide(); // (897.23 + 350) / 3500 = 35.64 %
    assert.deepEqual(codes(decision), ['DEBT_TO_INCOME']);
    assert.equal(decision.dtiBps, 3564);
  });

  it('given a ratio exactly at the cap, then it is approved', () => {
    // 1,225.00 € / 3,500.00 € is exactly 35 %
    const decision = given({ monthlyDebtsCents: 122_500 - 89_723 }).decide();
    assert.equal(decision.dtiBps, 3500);
    assert.equal(decision.outcome, 'approved');
  });

  it('given a ratio a fraction of a basis point over the cap, then rounding up still rejects it', () => {
    const decision = given({ monthlyDebtsCents: 122_500 - 89_723 + 1 }).decide();
    assert.equal(decision.dtiBps, 3501);
    assert.deepEqual(codes(decision), ['DEBT_TO_INCOME']);
  });

  it('given a 90 % loan without a guarantee, then it is rejected on loan-to-value', () => {
    const decision = given({ propertyValueCents: 22_222_223 }).decide();
    assert.equal(decision.ltvBps, 9000);
    assert.deepEqual(codes(decision), ['LOAN_TO_VALUE']);
  });

  it('given a 90 % loan with a public guarantee, then it is approved', () => {
    const decision = given({ propertyValueCents: 22_222_223, publicGuarantee: true }).decide();
    assert.equal(decision.outcome, 'approved');
  });

  it('given a 100 %+ loan even with a guarantee, then it is rejected on loan-to-value', () => {
    const decision = given({ propertyValueCents: 19_999_999, publicGuarantee: true }).decide();
    assert.equal(decision.ltvBps, 10001);
    assert.deepEqual(codes(decision), ['LOAN_TO_VALUE']);
  });

  it('given every rule broken, then every reason is listed in order score, DTI, LTV', () => {
    const decision = given({ monthlyDebtsCents: 200_000, propertyValueCents: 20_000_000 }, 'E').decide();
    assert.equal(decision.outcome, 'rejected');
    assert.deepEqual(codes(decision), ['SCORE_BAND', 'DEBT_TO_INCOME', 'LOAN_TO_VALUE']);
    for (const reason of decision.reasons) assert.ok(reason.message.length > 0);
  });

  it('given a stricter policy, then its caps and bands apply', () => {
    const strict = { ...defaultCreditPolicy, maxDtiBps: 3000, approvedBands: ['A'] as const };
    assert.deepEqual(codes(given({}).decide(strict)), ['SCORE_BAND', 'DEBT_TO_INCOME']);
  });

  it('given income or property value that are not positive, then it throws (an upstream bug, not a rejection)', () => {
    assert.throws(() => given({ monthlyNetCents: 0 }).decide(), RangeError);
    assert.throws(() => given({ propertyValueCents: 0 }).decide(), RangeError);
    assert.throws(() => given({ monthlyDebtsCents: -1 }).decide(), RangeError);
  });
});

const inputsArb: fc.Arbitrary<CreditInputs> = fc.record({
  applicationId: fc.uuid(),
  taxCode: fc.stringMatching(/^[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]$/),
  monthlyNetCents: fc.integer({ min: 50_000, max: 2_000_000 }),
  monthlyDebtsCents: fc.integer({ min: 0, max: 500_000 }),
  employment: fc.constantFrom('permanent', 'fixed-term', 'self-employed', 'retired', 'other'),
  loanAmountCents: fc.integer({ min: 1_000_000, max: 100_000_000 }),
  termYears: fc.integer({ min: 5, max: 40 }),
  annualRate: fc.integer({ min: 0, max: 80_000 }).map((units) => annualRateFromUnits(units, 4)),
  propertyValueCents: fc.integer({ min: 1_000_000, max: 150_000_000 }),
  publicGuarantee: fc.boolean(),
});

const reportArb: fc.Arbitrary<BureauReport> = fc.record({
  bureau: fc.constantFrom('crif', 'experian'),
  modelVersion: fc.constantFrom('CRIF-SIM-2.3', 'EXP-SIM-7'),
  score: fc.integer({ min: 0, max: 999 }),
  band: fc.constantFrom(...riskBands),
  reportId: fc.uuid(),
});

describe('decideCredit properties', () => {
  it('approves exactly when there is no reason', () => {
    fc.assert(
      fc.property(inputsArb, reportArb, (inputs, report) => {
        const decision = decideCredit(inputs, report, defaultCreditPolicy);
        assert.equal(decision.outcome === 'approved', decision.reasons.length === 0);
      }),
    );
  });

  it('lists each reason exactly when its rule fails', () => {
    fc.assert(
      fc.property(inputsArb, reportArb, (inputs, report) => {
        const policy = defaultCreditPolicy;
        const decision = decideCredit(inputs, report, policy);
        const ltvCap = inputs.publicGuarantee ? policy.maxGuaranteedLtvBps : policy.maxLtvBps;
        const expected: CreditReasonCode[] = [];
        if (!policy.approvedBands.includes(report.band)) expected.push('SCORE_BAND');
        if (decision.dtiBps > policy.maxDtiBps) expected.push('DEBT_TO_INCOME');
        if (decision.ltvBps > ltvCap) expected.push('LOAN_TO_VALUE');
        assert.deepEqual(codes(decision), expected);
      }),
    );
  });

  it('never turns a rejection into an approval when debts rise', () => {
    fc.assert(
      fc.property(inputsArb, reportArb, fc.integer({ min: 0, max: 500_000 }), (inputs, report, extraDebtsCents) => {
        const before = decideCredit(inputs, report, defaultCreditPolicy);
        const after = decideCredit({ ...inputs, monthlyDebtsCents: inputs.monthlyDebtsCents + extraDebtsCents }, report, defaultCreditPolicy);
        assert.ok(after.dtiBps >= before.dtiBps);
        if (before.outcome === 'rejected') assert.equal(after.outcome, 'rejected');
      }),
    );
  });

  it('never makes a decision worse by adding a public guarantee', () => {
    fc.assert(
      fc.property(inputsArb, reportArb, (inputs, report) => {
        const without = decideCredit({ ...inputs, publicGuarantee: false }, report, defaultCreditPolicy);
        const withGuarantee = decideCredit({ ...inputs, publicGuarantee: true }, report, defaultCreditPolicy);
        if (without.outcome === 'approved') assert.equal(withGuarantee.outcome, 'approved');
      }),
    );
  });

  it('rounds the debt-to-income ratio up, never by a whole basis point', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 1, max: 10_000_000 }), (commitments, net) => {
        const dti = debtToIncomeBps(commitments, net);
        assert.ok(dti * net >= commitments * 10_000);
        assert.ok((dti - 1) * net < commitments * 10_000);
      }),
    );
  });
});

describe('creditInputsHash', () => {
  const key = 'a key of this test, as the platform derives one from its secret';

  it('is an HMAC-SHA256 hex digest', () => {
    assert.match(creditInputsHash(baseInputs, key), /^[0-9a-f]{64}$/);
  });

  it('cannot be recomputed without the key: a guessed tax code is not confirmed by a plain hash of the inputs', () => {
    fc.assert(
      fc.property(inputsArb, fc.string({ minLength: 1 }), (inputs, otherKey) => {
        fc.pre(otherKey !== key);
        const stored = creditInputsHash(inputs, key);
        assert.notEqual(createHash('sha256').update(canonicalJson(inputs)).digest('hex'), stored);
        assert.notEqual(creditInputsHash(inputs, otherKey), stored);
        assert.equal(creditInputsHash({ ...inputs }, key), stored);
      }),
    );
  });

  it('serialises with sorted keys at every level', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: null }], c: 'x' } }), '{"a":{"c":"x","d":[2,{"y":null,"z":1}]},"b":1}');
  });

  it('is stable under key order', () => {
    fc.assert(
      fc.property(inputsArb, fc.infiniteStream(fc.nat()), (inputs, seeds) => {
        const shuffled = Object.entries(inputs)
          .map(([key, value]) => ({ key, value, seed: seeds.next().value as number }))
          .sort((a, b) => a.seed - b.seed);
        const reordered = Object.fromEntries(shuffled.map(({ key, value }) => [key, value])) as CreditInputs;
        assert.equal(creditInputsHash(reordered, key), creditInputsHash(inputs, key));
      }),
    );
  });

  it('changes when any input changes', () => {
    fc.assert(
      fc.property(inputsArb, fc.integer({ min: 1, max: 1_000 }), (inputs, delta) => {
        assert.notEqual(creditInputsHash({ ...inputs, loanAmountCents: inputs.loanAmountCents + delta }, key), creditInputsHash(inputs, key));
        assert.notEqual(creditInputsHash({ ...inputs, publicGuarantee: !inputs.publicGuarantee }, key), creditInputsHash(inputs, key));
      }),
    );
  });
});
