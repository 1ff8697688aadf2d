import { PDFDocument, StandardFonts, rgb } from 'pdf-lib';
import type { PDFFont, PDFPage } from 'pdf-lib';
import { checkTaxCode, computeCheckCharacter } from '../../domain/codice-fiscale.ts';
import { assertNever } from '../../domain/errors.ts';
import { formatItalianEuros } from '../../domain/money.ts';

export type DocumentKind = 'id_card' | 'payslip' | 'appraisal';

export const documentKinds: readonly DocumentKind[] = ['id_card', 'payslip', 'appraisal'];

export type SampleFacts = {
  readonly firstName: string;
  readonly lastName: string;
  readonly taxCode: string;
  readonly monthlyNetCents: number;
  readonly propertyValueCents: number;
  readonly propertyAddress?: string;
  readonly region?: string;
};

/**
 * A flaw planted in a sample. Each concerns one kind (see `defectAffects`), except
 * `unreadable`, which turns any kind into a scan with no text layer.
 */
export type SampleDefect = 'none' | 'wrong-tax-code' | 'low-income' | 'low-value' | 'unreadable';

export const sampleDefects: readonly SampleDefect[] = ['none', 'wrong-tax-code', 'low-income', 'low-value', 'unreadable'];

const documentTitles: Readonly<Record<DocumentKind, string>> = {
  id_card: "Carta d'identità",
  payslip: 'Busta paga',
  appraisal: 'Perizia di stima',
};

const defectKind: Readonly<Record<'wrong-tax-code' | 'low-income' | 'low-value', DocumentKind>> = {
  'wrong-tax-code': 'id_card',
  'low-income': 'payslip',
  'low-value': 'appraisal',
};

/** Whether a document of this kind comes out differently because of the defect. */
export function defectAffects(defect: SampleDefect, kind: DocumentKind): boolean {
  if (defect === 'none') return false;
  if (defect === 'unreadable') return true;
  return defectKind[defect] === kind;
}

/** A different valid tax code for the same person: the first-name letters change, the check character follows. */
export function otherValidTaxCode(taxCode: string): string {
  const check = checkTaxCode(taxCode);
  if (!check.valid) throw new RangeError(`not a valid tax code: ${JSON.stringify(taxCode)}`);
  const code = check.normalized;
  const shifted = String.fromCharCode(((code.charCodeAt(3) - 65 + 1) % 26) + 65);
  const first15 = code.slice(0, 3) + shifted + code.slice(4, 15);
  return first15 + computeCheckCharacter(first15);
}

const PAGE_WIDTH = 595;
const PAGE_HEIGHT = 842;
const MARGIN = 56;
// A fixed date keeps the bytes of a sample identical from run to run, so content addressing deduplicates them.
const SAMPLE_DATE = new Date('2026-10-31T09:00:00.000Z');

type Line = { readonly text: string; readonly size?: number; readonly bold?: boolean; readonly gapBefore?: number };

type Fonts = { readonly regular: PDFFont; readonly bold: PDFFont };

/** Helvetica only encodes WinAnsi, so any other character falls back to its unaccented letter or "?". */
function printable(font: PDFFont, text: string): string {
  const supported = new Set(font.getCharacterSet());
  return Array.from(text, (char) => {
    if (supported.has(char.codePointAt(0) ?? 0)) return char;
    const base = char.normalize('NFD').charAt(0);
    return supported.has(base.codePointAt(0) ?? 0) ? base : '?';
  }).join('');
}

function drawLines(page: PDFPage, fonts: Fonts, lines: readonly Line[], top: number): void {
  let y = top;
  for (const line of lines) {
    const size = line.size ?? 11;
    y -= (line.gapBefore ?? 0) + size * 1.6;
    const font = line.bold === true ? fonts.bold : fonts.regular;
    page.drawText(printable(font, line.text), { x: MARGIN, y, size, font, color: rgb(0.1, 0.1, 0.15) });
  }
}

const KNOWN_PLACES: Readonly<Record<string, string>> = {
  A662: 'BARI',
  A944: 'BOLOGNA',
  B354: 'CAGLIARI',
  D612: 'FIRENZE',
  D969: 'GENOVA',
  F205: 'MILANO',
  F839: 'NAPOLI',
  G273: 'PALERMO',
  H501: 'ROMA',
  L219: 'TORINO',
  L736: 'VENEZIA',
  L781: 'VERONA',
};

const pad2 = (n: number): string => String(n).padStart(2, '0');

function birthAndExpiryLines(taxCode: string): Line[] {
  const check = checkTaxCode(taxCode);
  if (!check.valid) return [{ text: 'Nato/a il: non disponibile' }, { text: 'a: non disponibile' }];
  const { yearTwoDigits, month, day } = check.birthDate;
  // Applicants are adults, so a two-digit year above 08 cannot be this century.
  const year = yearTwoDigits <= 8 ? 2000 + yearTwoDigits : 1900 + yearTwoDigits;
  const place = check.placeCode.startsWith('Z') ? `STATO ESTERO (${check.placeCode})` : `${KNOWN_PLACES[check.placeCode] ?? 'COMUNE'} (${check.placeCode})`;
  return [
    { text: `Sesso: ${check.sex}` },
    { text: `Nato/a il: ${pad2(day)}/${pad2(month)}/${year}` },
    { text: `a: ${place}` },
    { text: `Scadenza: ${pad2(day)}/${pad2(month)}/2032` },
  ];
}

/** A document number that looks like a CIE one and is stable for a given tax code. */
function documentNumber(taxCode: string): string {
  let hash = 0;
  for (const char of taxCode) hash = (hash * 31 + char.charCodeAt(0)) % 10_000_000;
  const digits = String(hash % 100_000).padStart(5, '0');
  const letters = String.fromCharCode(65 + (hash % 26), 65 + (Math.floor(hash / 26) % 26));
  return `CA${digits}${letters}`;
}

function idCardLines(facts: SampleFacts, taxCode: string): Line[] {
  return [
    { text: 'REPUBBLICA ITALIANA', size: 16, bold: true },
    { text: "Carta d'identità", size: 14, bold: true },
    { text: "Ministero dell'Interno", size: 9 },
    { text: `Cognome: ${facts.lastName.toUpperCase()}`, gapBefore: 16 },
    { text: `Nome: ${facts.firstName.toUpperCase()}` },
    ...birthAndExpiryLines(taxCode),
    { text: 'Cittadinanza: ITA' },
    { text: `Numero documento: ${documentNumber(taxCode)}` },
    { text: `Codice fiscale: ${taxCode}`, bold: true, gapBefore: 8 },
  ];
}

/** Realistic deductions around a given net: about 28 % of gross, of which 9,19 % INPS. */
function payslipLines(facts: SampleFacts, taxCode: string, netCents: number): Line[] {
  const grossCents = Math.floor((netCents * 100 + 36) / 72);
  const pensionCents = Math.floor((grossCents * 919 + 5_000) / 10_000);
  const incomeTaxCents = grossCents - pensionCents - netCents;
  return [
    { text: 'Busta paga', size: 16, bold: true },
    { text: 'Cedolino retribuzione — Periodo di paga: ottobre 2026', size: 10 },
    { text: 'Datore di lavoro: Officine Lombarde S.p.A. — P.IVA 01234567890', gapBefore: 12 },
    { text: `Dipendente: ${facts.lastName.toUpperCase()} ${facts.firstName.toUpperCase()}` },
    { text: `Codice fiscale: ${taxCode}` },
    { text: 'Qualifica: impiegato, livello C2 — CCNL Metalmeccanici Industria' },
    { text: `Retribuzione lorda: ${formatItalianEuros(grossCents)}`, gapBefore: 12 },
    { text: `Contributi INPS a carico dipendente (9,19 %): ${formatItalianEuros(pensionCents)}` },
    { text: `Ritenute IRPEF e addizionali: ${formatItalianEuros(incomeTaxCents)}` },
    { text: `Totale trattenute: ${formatItalianEuros(pensionCents + incomeTaxCents)}` },
    { text: `Netto in busta: ${formatItalianEuros(netCents)}`, bold: true, gapBefore: 8 },
  ];
}

function appraisalLines(facts: SampleFacts, taxCode: string, valueCents: number): Line[] {
  return [
    { text: 'Perizia di stima', size: 16, bold: true },
    { text: "Relazione di stima dell'immobile offerto in garanzia ipotecaria", size: 10 },
    { text: `Committente: ${facts.lastName.toUpperCase()} ${facts.firstName.toUpperCase()} — C.F. ${taxCode}`, gapBefore: 12 },
    { text: `Immobile: ${facts.propertyAddress ?? 'Via Giuseppe Verdi 10'}` },
    ...(facts.region === undefined ? [] : [{ text: `Regione: ${facts.region}` }]),
    { text: 'Categoria catastale: A/2 — abitazione di tipo civile' },
    { text: 'Metodo di stima: comparativo, su compravendite recenti di immobili simili' },
    { text: 'Data del sopralluogo: 28/10/2026' },
    { text: `Valore di mercato: ${formatItalianEuros(valueCents)}`, bold: true, gapBefore: 8 },
    { text: 'Il perito: Geom. Luca Verdi — iscritto al Collegio dei Geometri n. 1234', gapBefore: 24 },
  ];
}

function linesFor(kind: DocumentKind, facts: SampleFacts, defect: SampleDefect): Line[] {
  const taxCode = facts.taxCode.trim().toUpperCase();
  switch (kind) {
    case 'id_card':
      return idCardLines(facts, defect === 'wrong-tax-code' ? otherValidTaxCode(taxCode) : taxCode);
    case 'payslip':
      // 25 % below the declared net, rounded down to the cent.
      return payslipLines(facts, taxCode, defect === 'low-income' ? Math.floor((facts.monthlyNetCents * 3) / 4) : facts.monthlyNetCents);
    case 'appraisal':
      return appraisalLines(facts, taxCode, defect === 'low-value' ? Math.floor(facts.propertyValueCents / 2) : facts.propertyValueCents);
    default:
      return assertNever(kind);
  }
}

/** Grey blocks where a scan would show text: a page with no text layer at all. */
function drawUnreadableScan(page: PDFPage): void {
  let y = PAGE_HEIGHT - MARGIN;
  for (let row = 0; row < 14; row++) {
    y -= 22;
    const width = 180 + ((row * 97) % 300);
    page.drawRectangle({ x: MARGIN, y, width, height: 10, color: rgb(0.55, 0.55, 0.58) });
  }
}

/**
 * A realistic Italian document of the given kind for a sample application. The defect only
 * changes documents of the kind it concerns; the others print the facts as given.
 * `wrong-tax-code` needs a valid tax code to derive another one from, and throws a RangeError otherwise.
 */
export async function samplePdf(kind: DocumentKind, facts: SampleFacts, defect: SampleDefect = 'none'): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  doc.setCreationDate(SAMPLE_DATE);
  doc.setModificationDate(SAMPLE_DATE);
  doc.setProducer('Mutuo sample documents');
  const page = doc.addPage([PAGE_WIDTH, PAGE_HEIGHT]);

  if (defect === 'unreadable') {
    drawUnreadableScan(page);
    return doc.save();
  }

  const fonts = { regular: await doc.embedFont(StandardFonts.Helvetica), bold: await doc.embedFont(StandardFonts.HelveticaBold) };
  const lines = linesFor(kind, facts, defect);
  doc.setTitle(documentTitles[kind]);
  drawLines(page, fonts, lines, PAGE_HEIGHT - MARGIN);
  return doc.save();
}
