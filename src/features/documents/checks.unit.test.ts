import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkTaxCode, computeCheckCharacter, MONTH_LETTERS } from '../../domain/codice-fiscale.ts';
import { formatItalianEuros } from '../../domain/money.ts';
import { checkDocuments } from './checks.ts';
import type { ApplicationFacts, DocumentFinding } from './checks.ts';
import type { DocumentKind } from './sample-pdfs.ts';

// Valid codes from test/fixtures/codice-fiscale.json.
const GIULIA = 'BNCGLI90C55F205Z';
const GENNARO = 'SPSGNR85T01F839M';

const facts: ApplicationFacts = {
  taxCode: GIULIA,
  monthlyNetCents: 250_000,
  loanAmountCents: 24_000_000,
  propertyValueCents: 30_000_000,
  publicGuarantee: false,
};

const goodTexts: Record<DocumentKind, string> = {
  id_card: "REPUBBLICA ITALIANA\nCarta d'identità\nCognome: BIANCHI\nCodice fiscale: BNCGLI90C55F205Z",
  payslip: 'Busta paga\nRetribuzione lorda: 3.472,22 EUR\nTotale trattenute: 972,22 EUR\nNetto in busta: 2.500,00 EUR',
  appraisal: 'Perizia di stima\nValore di mercato: 300.000,00 EUR',
};

function finding(applicationFacts: ApplicationFacts, texts: Partial<Record<DocumentKind, string>>, kind: DocumentKind): DocumentFinding {
  const verdict = checkDocuments(applicationFacts, { ...goodTexts, ...texts });
  const found = verdict.findings.find((f) => f.kind === kind);
  assert.ok(found, `no finding for ${kind}`);
  return found;
}

const payslipWithNet = (cents: number): string => `Busta paga\nNetto in busta: ${formatItalianEuros(cents)}`;
const appraisalWithValue = (cents: number): string => `Perizia di stima\nValore di mercato: ${formatItalianEuros(cents)}`;

/** Any valid tax code: letters, a real date, a place code (A–M or Z) other than 000, the computed check character. */
const validTaxCode = fc
  .record({
    letters: fc.array(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'), { minLength: 6, maxLength: 6 }),
    year: fc.integer({ min: 0, max: 99 }),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 28 }),
    female: fc.boolean(),
    placeLetter: fc.constantFrom(...'ABCDEFGHIJKLMZ'),
    placeNumber: fc.integer({ min: 1, max: 999 }),
  })
  .map(({ letters, year, month, day, female, placeLetter, placeNumber }) => {
    const first15 =
      letters.join('') +
      String(year).padStart(2, '0') +
      MONTH_LETTERS[month - 1] +
      String(female ? day + 40 : day).padStart(2, '0') +
      placeLetter +
      String(placeNumber).padStart(3, '0');
    return first15 + computeCheckCharacter(first15);
  });

describe('checkDocuments', () => {
  it('accepts documents that support the application', () => {
    const verdict = checkDocuments(facts, goodTexts);
    assert.equal(verdict.valid, true);
    assert.deepEqual(
      verdict.findings.map((f) => [f.kind, f.check, f.passed, f.found]),
      [
        ['id_card', 'TAX_CODE_MATCHES', true, 'the declared tax code'],
        ['payslip', 'NET_INCOME_WITHIN_10_PERCENT', true, '2.500,00 EUR'],
        ['appraisal', 'VALUE_SUPPORTS_LOAN', true, '300.000,00 EUR'],
      ],
    );
  });

  describe('TAX_CODE_MATCHES', () => {
    it('finds the declared code whatever its spacing and case', () => {
      const spacing = fc.array(fc.constantFrom('', '', ' ', '  ', '\n', '\t'), { minLength: 16, maxLength: 16 });
      const upper = fc.array(fc.boolean(), { minLength: 16, maxLength: 16 });
      fc.assert(
        fc.property(validTaxCode, spacing, upper, fc.constantFrom('Codice fiscale:', 'C.F.', 'CF', ''), (code, spaces, cases, label) => {
          const printed = Array.from(code, (char, i) => (cases[i] ? char : char.toLowerCase()) + (spaces[i] ?? '')).join('');
          const result = finding({ ...facts, taxCode: code.toLowerCase() }, { id_card: `Carta d'identità\n${label} ${printed}\nNato il` }, 'id_card');
          assert.equal(result.passed, true, printed);
          assert.equal(result.found, 'the declared tax code');
        }),
      );
    });

    it('reports that the card carries a different valid code, without quoting either', () => {
      assert.equal(checkTaxCode(GENNARO).valid, true);
      const result = finding(facts, { id_card: `Carta d'identità\nCodice fiscale: ${GENNARO}` }, 'id_card');
      assert.equal(result.passed, false);
      assert.equal(result.found, 'another tax code');
      assert.match(result.message, /another tax code/);
    });

    it('quotes no tax code in any finding, declared or read, whatever the card carries', () => {
      fc.assert(
        fc.property(validTaxCode, validTaxCode, fc.boolean(), (declared, printed, same) => {
          const onCard = same ? declared : printed;
          const verdict = checkDocuments({ ...facts, taxCode: declared }, { ...goodTexts, id_card: `Codice fiscale: ${onCard}` });
          const text = JSON.stringify(verdict).toUpperCase();
          assert.ok(!text.includes(declared) && !text.includes(onCard), text);
        }),
      );
    });

    it('fails with nothing found when no valid code is printed', () => {
      for (const text of ['', "Carta d'identità\nCodice fiscale:", 'Codice fiscale: BNCGLI90C55F205A']) {
        const result = finding(facts, { id_card: text }, 'id_card');
        assert.equal(result.passed, false);
        assert.equal(result.found, null);
        assert.match(result.message, /no valid tax code/);
      }
    });
  });

  describe('NET_INCOME_WITHIN_10_PERCENT', () => {
    it('passes exactly at ±10 % and fails one cent beyond', () => {
      fc.assert(
        fc.property(fc.integer({ min: 10, max: 100_000_000 }), (declared) => {
          const tolerance = Math.floor(declared / 10);
          const withNet = (net: number): boolean => finding({ ...facts, monthlyNetCents: declared }, { payslip: payslipWithNet(net) }, 'payslip').passed;
          assert.equal(withNet(declared + tolerance), true);
          assert.equal(withNet(declared + tolerance + 1), false);
          assert.equal(withNet(declared - tolerance), true);
          assert.equal(withNet(declared - tolerance - 1), false);
        }),
      );
    });

    it('fails a net 25 % below the declared one', () => {
      const result = finding(facts, { payslip: payslipWithNet(187_500) }, 'payslip');
      assert.equal(result.passed, false);
      assert.equal(result.found, '1.875,00 EUR');
      assert.equal(result.expected, '2.500,00 EUR ± 10 %');
    });

    it('reads the net line only, across line breaks and a currency sign', () => {
      const text = 'Retribuzione lorda: 9.999,00 EUR\nNETTO A PAGARE\n€ 2.400,00.\nTotale trattenute: 1,00 EUR';
      const result = finding(facts, { payslip: text }, 'payslip');
      assert.equal(result.found, '2.400,00 EUR');
      assert.equal(result.passed, true);
    });

    it('fails with nothing found when the net is missing or unreadable', () => {
      const missing = finding(facts, { payslip: 'Busta paga\nRetribuzione lorda: 3.472,22 EUR' }, 'payslip');
      assert.deepEqual([missing.passed, missing.found], [false, null]);
      assert.match(missing.message, /no net pay/);
      const unreadable = finding(facts, { payslip: 'Netto in busta: 2,5,00 EUR' }, 'payslip');
      assert.deepEqual([unreadable.passed, unreadable.found], [false, null]);
      assert.match(unreadable.message, /"2,5,00" is not a readable amount/);
    });
  });

  describe('VALUE_SUPPORTS_LOAN', () => {
    it('passes a loan of exactly 80 % of the appraised value and fails one cent more', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 1_000_000_000 }), fc.boolean(), (valueUnits, guaranteed) => {
          // A value in multiples of 5 cents makes 80 % a whole number of cents.
          const value = valueUnits * 5;
          const cap = guaranteed ? value : (value * 4) / 5;
          const withLoan = (loan: number): boolean =>
            finding({ ...facts, loanAmountCents: loan, publicGuarantee: guaranteed }, { appraisal: appraisalWithValue(value) }, 'appraisal').passed;
          assert.equal(withLoan(cap), true);
          assert.equal(withLoan(cap + 1), false);
        }),
      );
    });

    it('fails an appraisal at half the declared value, and a public guarantee does not save a loan above it', () => {
      const half = appraisalWithValue(15_000_000);
      const result = finding(facts, { appraisal: half }, 'appraisal');
      assert.equal(result.passed, false);
      assert.equal(result.found, '150.000,00 EUR');
      assert.equal(finding({ ...facts, publicGuarantee: true }, { appraisal: half }, 'appraisal').passed, false);
      assert.equal(finding({ ...facts, loanAmountCents: 15_000_000, publicGuarantee: true }, { appraisal: half }, 'appraisal').passed, true);
    });

    it('fails with nothing found when the value is missing', () => {
      const result = finding(facts, { appraisal: 'Perizia di stima\nSuperficie: 95 mq' }, 'appraisal');
      assert.deepEqual([result.passed, result.found], [false, null]);
      assert.match(result.message, /no market value/);
    });
  });

  describe('a document over a reading budget', () => {
    it('fails in place of its check, naming the document, the budget and its limit, and nothing of the application', () => {
      const overBudget = [
        [{ budget: 'pages', limit: 100 }, 'PAGE_COUNT_WITHIN_LIMIT', 'the appraisal has more than 100 pages: upload only the pages asked for'],
        [
          { budget: 'inflatedBytes', limit: 104_857_600 },
          'UNPACKED_SIZE_WITHIN_LIMIT',
          'the appraisal unpacks to more than 100 MB: upload a simpler PDF, such as a scan at a lower resolution',
        ],
        [{ budget: 'time', limit: 30_000 }, 'READ_TIME_WITHIN_LIMIT', 'the appraisal could not be read within 30 s: upload a simpler PDF'],
        [{ budget: 'memory', limit: 536_870_912 }, 'READ_MEMORY_WITHIN_LIMIT', 'the appraisal could not be read within 512 MB of memory: upload a simpler PDF'],
      ] as const;
      for (const [document, check, message] of overBudget) {
        const verdict = checkDocuments(facts, { ...goodTexts, appraisal: document });
        assert.equal(verdict.valid, false);
        assert.deepEqual(
          verdict.findings.map((f) => [f.kind, f.check, f.passed]),
          [
            ['id_card', 'TAX_CODE_MATCHES', true],
            ['payslip', 'NET_INCOME_WITHIN_10_PERCENT', true],
            ['appraisal', check, false],
          ],
        );
        const over = verdict.findings[2]!;
        assert.deepEqual([over.found, over.message], [null, message]);
        assert.ok(!JSON.stringify(over).includes('300.000') && !JSON.stringify(over).includes('240.000'), JSON.stringify(over));
      }
    });
  });

  it('is valid exactly when every finding passes', () => {
    const text = fc.constantFrom('', 'garbage');
    fc.assert(
      fc.property(fc.record({ id_card: text, payslip: text, appraisal: text }), fc.boolean(), fc.boolean(), fc.boolean(), (bad, a, b, c) => {
        const texts = {
          id_card: a ? goodTexts.id_card : bad.id_card,
          payslip: b ? goodTexts.payslip : bad.payslip,
          appraisal: c ? goodTexts.appraisal : bad.appraisal,
        };
        const verdict = checkDocuments(facts, texts);
        assert.equal(verdict.findings.length, 3);
        assert.equal(verdict.valid, a && b && c);
        assert.equal(
          verdict.valid,
          verdict.findings.every((f) => f.passed),
        );
      }),
    );
  });
});
