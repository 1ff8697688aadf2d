import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkTaxCode } from '../../domain/codice-fiscale.ts';
import { checkDocuments } from './checks.ts';
import type { ApplicationFacts } from './checks.ts';
import { extractPdfText, isPdf, PdfOverBudgetError, PdfUnreadableError, type PdfLimits } from './pdf-text.ts';
import { defectAffects, documentKinds, otherValidTaxCode, samplePdf, sampleDefects } from './sample-pdfs.ts';
import { inflationBombPdf, manyPagesPdf } from './testing.ts';
import type { DocumentKind, SampleDefect, SampleFacts } from './sample-pdfs.ts';

// Giulia Bianchi's code from test/fixtures/codice-fiscale.json.
const sample: SampleFacts = {
  firstName: 'Giulia',
  lastName: 'Bianchi',
  taxCode: 'BNCGLI90C55F205Z',
  monthlyNetCents: 250_000,
  propertyValueCents: 30_000_000,
  propertyAddress: 'Via Giuseppe Verdi 10, 20121 Milano',
  region: 'Lombardia',
};

const application: ApplicationFacts = {
  taxCode: sample.taxCode,
  monthlyNetCents: sample.monthlyNetCents,
  loanAmountCents: 24_000_000,
  propertyValueCents: sample.propertyValueCents,
  publicGuarantee: false,
};

/** The platform's default limits (src/config.ts). */
const limits: PdfLimits = { maxPages: 100, maxInflatedBytes: 100 * 1_048_576 };

const checkOf: Readonly<Record<DocumentKind, string>> = {
  id_card: 'TAX_CODE_MATCHES',
  payslip: 'NET_INCOME_WITHIN_10_PERCENT',
  appraisal: 'VALUE_SUPPORTS_LOAN',
};

async function textsFor(defect: SampleDefect, onlyKind?: DocumentKind): Promise<Record<DocumentKind, string>> {
  const entries = await Promise.all(
    documentKinds.map(async (kind) => {
      const applied = onlyKind === undefined || onlyKind === kind ? defect : 'none';
      return [kind, await extractPdfText(await samplePdf(kind, sample, applied), limits)] as const;
    }),
  );
  return Object.fromEntries(entries) as Record<DocumentKind, string>;
}

function failedChecks(texts: Record<DocumentKind, string>): string[] {
  return checkDocuments(application, texts)
    .findings.filter((finding) => !finding.passed)
    .map((finding) => finding.check);
}

describe('samplePdf', () => {
  it('prints realistic documents whose text reads back', async () => {
    assert.equal(checkTaxCode(sample.taxCode).valid, true);
    const texts = await textsFor('none');
    assert.match(texts.id_card, /Carta d'identità/);
    assert.match(texts.id_card, /Cognome: BIANCHI/);
    assert.match(texts.id_card, /Nato\/a il: 15\/03\/1990/);
    assert.match(texts.id_card, /a: MILANO \(F205\)/);
    assert.match(texts.id_card, /Codice fiscale: BNCGLI90C55F205Z/);
    assert.match(texts.payslip, /Busta paga/);
    assert.match(texts.payslip, /Retribuzione lorda: 3\.472,22 EUR/);
    assert.match(texts.payslip, /Netto in busta: 2\.500,00 EUR/);
    assert.match(texts.appraisal, /Perizia di stima/);
    assert.match(texts.appraisal, /Immobile: Via Giuseppe Verdi 10, 20121 Milano/);
    assert.match(texts.appraisal, /Valore di mercato: 300\.000,00 EUR/);
  });

  it('gives documents that pass every check when there is no defect', async () => {
    const verdict = checkDocuments(application, await textsFor('none'));
    assert.equal(verdict.valid, true, JSON.stringify(verdict.findings));
  });

  for (const [defect, kind] of [
    ['wrong-tax-code', 'id_card'],
    ['low-income', 'payslip'],
    ['low-value', 'appraisal'],
  ] as const) {
    it(`with ${defect}, fails only the ${kind} check, even when every document is generated with the defect`, async () => {
      assert.deepEqual(failedChecks(await textsFor(defect)), [checkOf[kind]]);
      for (const other of documentKinds) assert.equal(defectAffects(defect, other), other === kind);
    });
  }

  it('prints a different valid tax code with wrong-tax-code', async () => {
    const text = await extractPdfText(await samplePdf('id_card', sample, 'wrong-tax-code'), limits);
    const printed = otherValidTaxCode(sample.taxCode);
    assert.notEqual(printed, sample.taxCode);
    assert.equal(checkTaxCode(printed).valid, true);
    assert.match(text, new RegExp(`Codice fiscale: ${printed}`));
  });

  for (const kind of documentKinds) {
    it(`with unreadable, gives a ${kind} without text that fails its check with nothing found`, async () => {
      const bytes = await samplePdf(kind, sample, 'unreadable');
      assert.equal(isPdf(bytes), true);
      const texts = await textsFor('unreadable', kind);
      assert.equal(texts[kind].trim(), '');
      const findings = checkDocuments(application, texts).findings.filter((finding) => !finding.passed);
      assert.deepEqual(
        findings.map((finding) => [finding.check, finding.found]),
        [[checkOf[kind], null]],
      );
    });
  }

  it('produces the same bytes for the same input', async () => {
    assert.deepEqual(await samplePdf('payslip', sample), await samplePdf('payslip', sample));
  });

  it('prints names outside the PDF font without failing', async () => {
    const text = await extractPdfText(await samplePdf('id_card', { ...sample, firstName: 'Łucja', lastName: 'Dvořák 😀' }), limits);
    assert.match(text, /Cognome: DVORÁK \?/);
    assert.match(text, /Nome: \?UCJA/);
  });

  it('covers every defect', () => {
    assert.deepEqual([...sampleDefects].sort(), ['low-income', 'low-value', 'none', 'unreadable', 'wrong-tax-code']);
  });
});

describe('extractPdfText', () => {
  it('leaves the caller bytes intact', async () => {
    const bytes = await samplePdf('payslip', sample);
    const length = bytes.byteLength;
    await extractPdfText(bytes, limits);
    assert.equal(bytes.byteLength, length);
    assert.equal(isPdf(bytes), true);
  });

  it('refuses what is not a PDF or cannot be opened with PdfUnreadableError', async () => {
    const inputs = [new Uint8Array(0), new TextEncoder().encode('hello'), new TextEncoder().encode('%PDF-1.7\nnot really')];
    for (const bytes of inputs) {
      await assert.rejects(extractPdfText(bytes, limits), (error: unknown) => {
        assert.ok(error instanceof PdfUnreadableError);
        assert.equal(error.code, 'PDF_UNREADABLE');
        assert.equal(error.kind, 'invalid');
        return true;
      });
    }
  });

  it('either reads or refuses a damaged PDF, never anything else', async () => {
    const original = await samplePdf('appraisal', sample);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 5, max: original.length - 1 }),
        fc.array(fc.record({ at: fc.nat(original.length - 1), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 20 }),
        async (keep, flips) => {
          const damaged = original.slice(0, keep);
          for (const { at, byte } of flips) if (at >= 5 && at < damaged.length) damaged[at] = byte;
          try {
            assert.equal(typeof (await extractPdfText(damaged, limits)), 'string');
          } catch (error) {
            assert.ok(error instanceof PdfUnreadableError, String(error));
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  const overBudget = (budget: string, limit: number) => (error: unknown) => {
    assert.ok(error instanceof PdfOverBudgetError, String(error));
    assert.deepEqual([error.budget, error.limit], [budget, limit]);
    return true;
  };

  it('refuses a PDF whose streams inflate past maxInflatedBytes, and reads one within it', async () => {
    const bomb = await inflationBombPdf(8 * 1_048_576);
    assert.ok(bomb.length < 64 * 1_024, `${bomb.length} bytes`);
    await assert.rejects(extractPdfText(bomb, { ...limits, maxInflatedBytes: 8 * 1_048_576 - 1 }), overBudget('inflatedBytes', 8 * 1_048_576 - 1));
    assert.equal((await extractPdfText(bomb, { ...limits, maxInflatedBytes: 8 * 1_048_576 })).trim(), '');
  });

  it('refuses a PDF of more pages than maxPages, and reads every page of one within it', async () => {
    await assert.rejects(extractPdfText(manyPagesPdf(11), { ...limits, maxPages: 10 }), overBudget('pages', 10));
    const text = await extractPdfText(manyPagesPdf(10), { ...limits, maxPages: 10 });
    assert.equal(text.match(/A page of many/g)?.length, 10);
  });
});
