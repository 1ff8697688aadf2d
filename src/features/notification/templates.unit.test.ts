import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { finalTemplates, formatEuroCents, renderEmail, templateNames, type EmailFacts } from './templates.ts';

const applicant = { firstName: 'Giulia', lastName: 'Bianchi', applicationId: '3f1c2a9e-0b7d-4e52-9a61-5c8d0e7f4b21' };
const everyFact: EmailFacts = {
  ...applicant,
  amountCents: 20_000_000,
  termYears: 25,
  contractNumber: 'MU-2026-000123',
  reason: 'Debt-to-income ratio above 35 %',
  reasons: ['Payslip is illegible', 'Identity card has expired'],
};

describe('formatEuroCents', () => {
  it('formats cents the Italian way, exactly', () => {
    assert.equal(formatEuroCents(20_000_000), '200.000,00 €');
    assert.equal(formatEuroCents(0), '0,00 €');
    assert.equal(formatEuroCents(5), '0,05 €');
    assert.equal(formatEuroCents(99_999), '999,99 €');
    assert.equal(formatEuroCents(100_000), '1.000,00 €');
    assert.equal(formatEuroCents(123_456_789), '1.234.567,89 €');
    assert.equal(formatEuroCents(-150), '-1,50 €');
  });

  it('stays exact up to the largest safe integer', () => {
    assert.equal(formatEuroCents(Number.MAX_SAFE_INTEGER), '90.071.992.547.409,91 €');
  });

  it('refuses fractions of a cent', () => {
    assert.throws(() => formatEuroCents(10.5), RangeError);
    assert.throws(() => formatEuroCents(Number.NaN), RangeError);
  });
});

describe('renderEmail', () => {
  it('renders every template with a subject naming the application and a greeting', () => {
    for (const template of templateNames) {
      const { subject, text } = renderEmail(template, everyFact);
      assert.match(subject, /\(ref\. 3f1c2a9e\)$/, template);
      assert.ok(text.startsWith('Dear Giulia Bianchi,\n\n'), template);
      assert.ok(text.includes(applicant.applicationId), template);
      assert.ok(!/undefined|null|NaN/.test(subject + text), template);
    }
  });

  it('states amount and term of a received application', () => {
    const { subject, text } = renderEmail('application-received', { ...applicant, amountCents: 20_000_000, termYears: 25 });
    assert.equal(subject, 'We have received your mortgage application (ref. 3f1c2a9e)');
    assert.ok(text.includes('a mortgage of 200.000,00 € over 25 years.'));
    assert.ok(renderEmail('application-received', { ...applicant, amountCents: 1, termYears: 1 }).text.includes('over 1 year.'));
  });

  it('lists the reasons documents were rejected and asks for corrected ones', () => {
    const { text } = renderEmail('documents-rejected', { ...applicant, reasons: ['Payslip is illegible', 'Identity card has expired'] });
    assert.ok(text.includes('\n\n- Payslip is illegible\n- Identity card has expired\n\n'));
    assert.ok(text.includes('upload corrected documents'));
    assert.ok(!renderEmail('documents-rejected', applicant).text.includes('- '), 'no empty list without reasons');
  });

  it('asks for a relock when the rate lock expired', () => {
    assert.ok(renderEmail('rate-lock-expired', applicant).text.includes('relock'));
  });

  it('gives the contract number of an approved application', () => {
    const { text } = renderEmail('application-approved', { ...applicant, contractNumber: 'MU-2026-000123' });
    assert.ok(text.includes('Your contract number is MU-2026-000123.'));
  });

  it('gives the reason of a rejection', () => {
    const { text } = renderEmail('application-rejected', { ...applicant, reason: 'Debt-to-income ratio above 35 %' });
    assert.ok(text.includes('Reason: Debt-to-income ratio above 35 %'));
  });

  it('mentions the reason of a withdrawal only when there is one', () => {
    assert.ok(renderEmail('application-withdrawn', { ...applicant, reason: 'Bought elsewhere' }).text.includes('Reason given: Bought elsewhere'));
    assert.ok(!renderEmail('application-withdrawn', { ...applicant, reason: null }).text.includes('Reason'));
    assert.ok(!renderEmail('application-withdrawn', applicant).text.includes('Reason'));
  });

  it('refuses to render without the facts a template needs', () => {
    assert.throws(() => renderEmail('application-received', { ...applicant, termYears: 25 }), /amountCents/);
    assert.throws(() => renderEmail('application-approved', applicant), /contractNumber/);
  });

  it('points to the record for a rejection whose reason it was not given', () => {
    const { text } = renderEmail('application-rejected', { ...applicant, reason: null });
    assert.ok(text.includes('The reason is recorded with your application'));
    assert.ok(!text.includes('Reason:'));
  });
});

describe('finalTemplates', () => {
  it('are the outcomes that close an application', () => {
    assert.deepEqual([...finalTemplates].sort(), ['application-approved', 'application-rejected', 'application-withdrawn']);
  });
});
