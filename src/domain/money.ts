const PLAIN_DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * Scales a number with at most two decimals by 100 exactly. Works on the
 * shortest decimal string of the number (what a JSON writer emits) because
 * `n * 100` rounds in binary (0.29 * 100 === 28.999999999999996), so it cannot
 * tell "two decimals" from "three decimals that happen to round close".
 */
function scaleByHundred(n: number): number | null {
  if (!Number.isFinite(n)) return null;
  // String() switches to exponent notation for very small or very large magnitudes; those are never exact cents.
  const match = PLAIN_DECIMAL.exec(String(n));
  if (match === null) return null;
  const [, sign, whole, fraction = ''] = match;
  if (fraction.length > 2) return null;
  const magnitude = BigInt((whole as string) + fraction.padEnd(2, '0'));
  if (magnitude > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  const value = Number(magnitude);
  return sign === '-' && value !== 0 ? -value : value;
}

/** Euros given as a number with at most two decimals -> integer cents; null if not representable that way. */
export function eurosToCents(euros: number): number | null {
  return scaleByHundred(euros);
}

/** 123456 -> 1234.56 */
export function centsToEuros(cents: number): number {
  return cents / 100;
}

/** A decimal percentage (2.5 means 2.5 %) with at most two decimals -> integer basis points (250); null otherwise. */
export function percentToBasisPoints(percent: number): number | null {
  return scaleByHundred(percent);
}

/** 250 -> 2.5 */
export function basisPointsToPercent(bps: number): number {
  return bps / 100;
}

const ITALIAN_AMOUNT = /^(?:€|EUR)?\s*(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{1,2}))?\s*(?:€|EUR)?$/i;
const DOT_BEFORE_DECIMALS = /\.\d{1,2}(?!\d)/;
const COMMA_BEFORE_THOUSANDS = /,\d{3}/;

/**
 * An amount written the Italian way -> integer cents, or why it is not one. A dot only
 * ever separates thousands, in groups of three ("200.000" is two hundred thousand euros,
 * "1.234.567"), or is left out ("200000"); a comma comes before at most two decimals
 * ("3.200,50"); "€" or "EUR" may stand before or after. What could be read two ways is
 * refused rather than guessed: "200000.50" or "2.5" (an English decimal point, or a
 * misplaced thousands dot?) and "2,500" (two and a half euros to three decimals, or an
 * English two thousand five hundred?).
 */
export function readItalianEuros(text: string): { readonly cents: number } | { readonly problem: string } {
  const trimmed = text.trim();
  const match = ITALIAN_AMOUNT.exec(trimmed);
  if (match === null) {
    if (COMMA_BEFORE_THOUSANDS.test(trimmed)) return { problem: 'has at most two decimals after the comma; thousands are separated by dots, as in 2.500' };
    if (DOT_BEFORE_DECIMALS.test(trimmed)) return { problem: 'separates thousands with dots: write the cents after a comma, as in 200000,50' };
    return { problem: 'must be an amount in euros, such as 200.000 or 3.200,50' };
  }
  const [, whole = '', fraction = ''] = match;
  // BigInt so that a huge amount is refused instead of silently losing cents.
  const cents = BigInt(whole.replaceAll('.', '') + fraction.padEnd(2, '0'));
  if (cents > BigInt(Number.MAX_SAFE_INTEGER)) return { problem: 'is too large an amount' };
  return { cents: Number(cents) };
}

/** An amount written the Italian way ("2.500,00", "€ 2.500", "2500,5 EUR") -> integer cents; null when it is not exactly one (see readItalianEuros). */
export function parseItalianEuros(text: string): number | null {
  const read = readItalianEuros(text);
  return 'cents' in read ? read.cents : null;
}

/** 250000 -> "2.500,00 EUR" */
export function formatItalianEuros(cents: number): string {
  if (!Number.isSafeInteger(cents)) throw new RangeError(`not an amount in cents: ${cents}`);
  const sign = cents < 0 ? '-' : '';
  const digits = String(Math.abs(cents)).padStart(3, '0');
  const whole = digits.slice(0, -2).replace(/\B(?=(\d{3})+$)/g, '.');
  return `${sign}${whole},${digits.slice(-2)} EUR`;
}
