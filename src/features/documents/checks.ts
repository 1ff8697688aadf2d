import { checkTaxCode } from '../../domain/codice-fiscale.ts';
import { formatItalianEuros, parseItalianEuros } from '../../domain/money.ts';
import { assertNever } from '../../domain/errors.ts';
import type { PdfBudget } from './pdf-text.ts';
import type { DocumentKind } from './sample-pdfs.ts';

/** What the application declared, which the documents must support. */
export type ApplicationFacts = {
  readonly taxCode: string;
  readonly monthlyNetCents: number;
  readonly loanAmountCents: number;
  readonly propertyValueCents: number;
  readonly publicGuarantee: boolean;
};

export type DocumentCheck =
  | 'TAX_CODE_MATCHES'
  | 'NET_INCOME_WITHIN_10_PERCENT'
  | 'VALUE_SUPPORTS_LOAN'
  | 'PAGE_COUNT_WITHIN_LIMIT'
  | 'UNPACKED_SIZE_WITHIN_LIMIT'
  | 'READ_TIME_WITHIN_LIMIT'
  | 'READ_MEMORY_WITHIN_LIMIT';

/** A document that was not read because reading it would have cost more than a budget allows. */
export type OverBudget = { readonly budget: PdfBudget; readonly limit: number };

export type DocumentFinding = {
  readonly kind: DocumentKind;
  /** Stable code: clients may switch on it. */
  readonly check: DocumentCheck;
  readonly passed: boolean;
  /** What the document shows, normalized, in words that quote no personal data; null when nothing usable was found. */
  readonly found: string | null;
  readonly expected: string;
  readonly message: string;
};

export type DocumentsVerdict = { readonly valid: boolean; readonly findings: DocumentFinding[] };

/** Loan over appraised value, in percent, that a lender accepts without and with a public guarantee. */
export const MAX_LTV_PERCENT = 80;
export const MAX_LTV_PERCENT_WITH_GUARANTEE = 100;
export const NET_INCOME_TOLERANCE_PERCENT = 10;

/**
 * Every 16-character window of the text, with whitespace removed, that is a valid tax code,
 * so a code printed as "rss mra 80A01 H501U" is still found.
 */
function taxCodesIn(text: string): string[] {
  const compact = text.replace(/\s+/g, '').toUpperCase();
  const codes: string[] = [];
  for (let start = 0; start + 16 <= compact.length; start++) {
    const check = checkTaxCode(compact.slice(start, start + 16));
    if (check.valid && !codes.includes(check.normalized)) codes.push(check.normalized);
  }
  return codes;
}

/**
 * The finding refers to the tax code, never quotes it: findings are stored in the documents'
 * events in the clear, which outlive the applicant's erasure, and a card may carry someone
 * else's code too.
 */
function checkTaxCodeOnIdCard(declaredTaxCode: string, text: string): DocumentFinding {
  const declared = declaredTaxCode.replace(/\s+/g, '').toUpperCase();
  const base = { kind: 'id_card', check: 'TAX_CODE_MATCHES', expected: 'the tax code the applicant declared' } as const;
  const codes = taxCodesIn(text);
  if (codes.includes(declared)) {
    return { ...base, passed: true, found: 'the declared tax code', message: 'the ID card carries the declared tax code' };
  }
  if (codes.length === 0) {
    return { ...base, passed: false, found: null, message: 'no valid tax code could be read on the ID card' };
  }
  return { ...base, passed: false, found: 'another tax code', message: 'the ID card carries another tax code than the one the application declares' };
}

type LabelledAmount = { status: 'missing' } | { status: 'unparseable'; raw: string } | { status: 'found'; cents: number };

/** The amount written right after a label, across spaces, a colon, line breaks and a currency sign. */
function amountAfter(label: RegExp, text: string): LabelledAmount {
  const pattern = new RegExp(`${label.source}\\s*:?\\s*(?:€|EUR)?\\s*([0-9][0-9.,]*)`, 'i');
  const match = pattern.exec(text);
  if (match === null) return { status: 'missing' };
  // A trailing dot or comma is the sentence's punctuation, not part of the amount.
  const raw = (match[1] ?? '').replace(/[.,]+$/, '');
  const cents = parseItalianEuros(raw);
  return cents === null ? { status: 'unparseable', raw } : { status: 'found', cents };
}

const NET_PAY_LABEL = /netto\s+(?:in\s+busta|a\s+pagare|del\s+mese|mensile)/;
const MARKET_VALUE_LABEL = /valore\s+(?:di\s+mercato|di\s+stima|stimato)/;

function absolute(value: bigint): bigint {
  return value < 0n ? -value : value;
}

function checkNetIncomeOnPayslip(declaredNetCents: number, text: string): DocumentFinding {
  const base = {
    kind: 'payslip',
    check: 'NET_INCOME_WITHIN_10_PERCENT',
    expected: `${formatItalianEuros(declaredNetCents)} ± ${NET_INCOME_TOLERANCE_PERCENT} %`,
  } as const;
  const amount = amountAfter(NET_PAY_LABEL, text);
  if (amount.status === 'missing') {
    return { ...base, passed: false, found: null, message: "no net pay ('Netto in busta') could be read on the payslip" };
  }
  if (amount.status === 'unparseable') {
    return { ...base, passed: false, found: null, message: `the payslip's net pay "${amount.raw}" is not a readable amount` };
  }
  const found = formatItalianEuros(amount.cents);
  const declared = BigInt(declaredNetCents);
  // |found - declared| <= 10 % of declared, multiplied out so no fraction of a cent is ever rounded.
  const passed = absolute(BigInt(amount.cents) - declared) * 100n <= declared * BigInt(NET_INCOME_TOLERANCE_PERCENT);
  const message = passed
    ? `the payslip's net pay ${found} is within ${NET_INCOME_TOLERANCE_PERCENT} % of the declared ${formatItalianEuros(declaredNetCents)}`
    : `the payslip's net pay ${found} differs from the declared ${formatItalianEuros(declaredNetCents)} by more than ${NET_INCOME_TOLERANCE_PERCENT} %`;
  return { ...base, passed, found, message };
}

function checkValueOnAppraisal(facts: ApplicationFacts, text: string): DocumentFinding {
  const maxLtvPercent = facts.publicGuarantee ? MAX_LTV_PERCENT_WITH_GUARANTEE : MAX_LTV_PERCENT;
  const loan = formatItalianEuros(facts.loanAmountCents);
  const base = {
    kind: 'appraisal',
    check: 'VALUE_SUPPORTS_LOAN',
    expected: `a market value of which the loan of ${loan} is at most ${maxLtvPercent} %`,
  } as const;
  const amount = amountAfter(MARKET_VALUE_LABEL, text);
  if (amount.status === 'missing') {
    return { ...base, passed: false, found: null, message: "no market value ('Valore di mercato') could be read on the appraisal" };
  }
  if (amount.status === 'unparseable') {
    return { ...base, passed: false, found: null, message: `the appraisal's market value "${amount.raw}" is not a readable amount` };
  }
  const found = formatItalianEuros(amount.cents);
  const passed = BigInt(facts.loanAmountCents) * 100n <= BigInt(amount.cents) * BigInt(maxLtvPercent);
  const declared = formatItalianEuros(facts.propertyValueCents);
  const message = passed
    ? `the appraised value ${found} (declared ${declared}) supports a loan of ${loan} at ${maxLtvPercent} %`
    : `the loan of ${loan} exceeds ${maxLtvPercent} % of the appraised value ${found} (declared ${declared})`;
  return { ...base, passed, found, message };
}

const documentNames: Readonly<Record<DocumentKind, string>> = { id_card: 'ID card', payslip: 'payslip', appraisal: 'appraisal' };

/** 104857600 -> "100 MB" */
function megabytes(bytes: number): string {
  return bytes < 1_048_576 ? `${Math.ceil(bytes / 1_024)} KB` : `${Math.round(bytes / 1_048_576)} MB`;
}

/** The finding of a document over a budget: which one and its limit, in the applicant's words; nothing of its content. */
function overBudgetFinding(kind: DocumentKind, { budget, limit }: OverBudget): DocumentFinding {
  const name = documentNames[kind];
  const base = { kind, passed: false, found: null } as const;
  switch (budget) {
    case 'pages':
      return {
        ...base,
        check: 'PAGE_COUNT_WITHIN_LIMIT',
        expected: `at most ${limit} pages`,
        message: `the ${name} has more than ${limit} pages: upload only the pages asked for`,
      };
    case 'inflatedBytes':
      return {
        ...base,
        check: 'UNPACKED_SIZE_WITHIN_LIMIT',
        expected: `at most ${megabytes(limit)} once unpacked`,
        message: `the ${name} unpacks to more than ${megabytes(limit)}: upload a simpler PDF, such as a scan at a lower resolution`,
      };
    case 'time':
      return {
        ...base,
        check: 'READ_TIME_WITHIN_LIMIT',
        expected: `read within ${limit / 1_000} s`,
        message: `the ${name} could not be read within ${limit / 1_000} s: upload a simpler PDF`,
      };
    case 'memory':
      return {
        ...base,
        check: 'READ_MEMORY_WITHIN_LIMIT',
        expected: `read within ${megabytes(limit)} of memory`,
        message: `the ${name} could not be read within ${megabytes(limit)} of memory: upload a simpler PDF`,
      };
    default:
      return assertNever(budget);
  }
}

/**
 * Checks the texts extracted from the three documents against what the application declared.
 * A document over a budget was not read: its finding says which budget, in place of its check.
 */
export function checkDocuments(facts: ApplicationFacts, documents: Readonly<Record<DocumentKind, string | OverBudget>>): DocumentsVerdict {
  const check = (kind: DocumentKind, checkText: (text: string) => DocumentFinding) => {
    const document = documents[kind];
    return typeof document === 'string' ? checkText(document) : overBudgetFinding(kind, document);
  };
  const findings = [
    check('id_card', (text) => checkTaxCodeOnIdCard(facts.taxCode, text)),
    check('payslip', (text) => checkNetIncomeOnPayslip(facts.monthlyNetCents, text)),
    check('appraisal', (text) => checkValueOnAppraisal(facts, text)),
  ];
  return { valid: findings.every((finding) => finding.passed), findings };
}
