/**
 * An annual interest rate as a percentage in canonical decimal form: "3.875" is 3.875 %.
 * It is the one form of a rate in Mutuo's events, state, read models and computations:
 * exact (never a binary float), unit-free (a finer cap needs no new unit), and canonical
 * (no sign, no leading zeros, no trailing fractional zeros), so that equal rates are equal
 * strings. The HTTP API carries it as a JSON number, whose shortest decimal form it is.
 */
export type AnnualRate = string;

/**
 * A rate has at most 4 decimals (0.0001 %). Euribor is published with 3, and a spread in
 * basis points keeps a variable rate at 3; the 4th leaves room for an averaged index. The
 * 4th decimal still moves the installment of a 1,000,000 € loan by some 8 cents a month; a
 * 5th would move it by less than one, so it would only pretend to a precision nobody pays.
 */
export const maxAnnualRateDecimals = 4;
export const maxAnnualRatePercent = 20;

/** What every refusal of a rate says, wherever it is given. */
export const annualRateRule = `must be a percentage from 0 to ${maxAnnualRatePercent} with at most ${maxAnnualRateDecimals} decimals`;

/** The canonical form, as a JSON Schema pattern for the events that store a rate. */
export const annualRatePattern = '^(0|[1-9][0-9]*)(\\.[0-9]*[1-9])?$';
const CANONICAL = new RegExp(annualRatePattern);

/** A rate's digits: "3.875" → 3875 and 3 decimals. Throws a RangeError for what is not a canonical rate. */
function digitsOf(rate: AnnualRate): { readonly units: number; readonly decimals: number } {
  if (typeof rate !== 'string' || !CANONICAL.test(rate)) throw new RangeError(`not a rate in canonical decimal form: ${JSON.stringify(rate)}`);
  const dot = rate.indexOf('.');
  const decimals = dot === -1 ? 0 : rate.length - dot - 1;
  const units = Number(dot === -1 ? rate : rate.slice(0, dot) + rate.slice(dot + 1));
  if (!Number.isSafeInteger(units)) throw new RangeError(`a rate of more than 15 digits cannot be computed with: ${rate}`);
  return { units, decimals };
}

/** What is wrong with a rate given to Mutuo (not canonical, too many decimals, above the cap), or undefined. */
export function annualRateProblem(rate: string): string | undefined {
  const match = typeof rate === 'string' ? CANONICAL.exec(rate) : null;
  if (match === null) return annualRateRule;
  const whole = match[1]!;
  const fraction = (match[2] ?? '.').slice(1);
  if (whole.length > 2 || fraction.length > maxAnnualRateDecimals) return annualRateRule;
  const units = Number(whole + fraction.padEnd(maxAnnualRateDecimals, '0'));
  return units <= maxAnnualRatePercent * 10 ** maxAnnualRateDecimals ? undefined : annualRateRule;
}

/**
 * The rate a JSON number stands for (2.5 is "2.5"), or null if it breaks the rule. The
 * number's shortest decimal form is the decimal the client wrote, for any number of up to
 * 15 significant digits: every rate the rule allows.
 */
export function annualRateFromPercent(percent: number): AnnualRate | null {
  if (typeof percent !== 'number' || !Number.isFinite(percent)) return null;
  // String() gives the shortest form, canonical but for -0 and exponents (which the rule refuses).
  const rate = Object.is(percent, -0) ? '0' : String(percent);
  return annualRateProblem(rate) === undefined ? rate : null;
}

const TYPED_RATE = /^(\d+)(?:[.,](\d+))?\s*%?$/;

/**
 * A rate as someone types it in a page: "3,875", "3.875" or "3.875 %" (a comma or a dot
 * before the decimals; a rate has no thousands to separate). The rate, or why not.
 */
export function readAnnualRate(text: string): { readonly rate: AnnualRate } | { readonly problem: string } {
  const match = TYPED_RATE.exec(text.trim());
  if (match === null) return { problem: 'must be a percentage, such as 3,875' };
  const whole = match[1]!.replace(/^0+(?=\d)/, '');
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  const rate = fraction === '' ? whole : `${whole}.${fraction}`;
  const problem = annualRateProblem(rate);
  return problem === undefined ? { rate } : { problem };
}

/** The rate as a JSON number, for the HTTP API: its shortest form is the rate's digits again. */
export function annualRatePercent(rate: AnnualRate): number {
  digitsOf(rate);
  return Number(rate);
}

/** The rate of `units` hundredths, thousandths, … of a percent: (250, 2) → "2.5". Throws a RangeError for what is not a count of them. */
export function annualRateFromUnits(units: number, decimals: number): AnnualRate {
  if (!Number.isSafeInteger(units) || units < 0) throw new RangeError(`a rate is a whole number of units from 0, got ${units}`);
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > 15) throw new RangeError(`decimals must be from 0 to 15, got ${decimals}`);
  const digits = String(units).padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, '');
  return fraction === '' ? whole : `${whole}.${fraction}`;
}

/** A rate in basis points (hundredths of a percent) as stored before rates had finer decimals: 250 → "2.5". */
export function annualRateFromBasisPoints(bps: number): AnnualRate {
  return annualRateFromUnits(bps, 2);
}

/** The rate as a whole number of 10^-decimals percent: ("3.875", 6) → 3875000. Throws a RangeError when it has more decimals than that. */
export function annualRateUnits(rate: AnnualRate, decimals: number): number {
  const digits = digitsOf(rate);
  if (digits.decimals > decimals) throw new RangeError(`${rate} % has more than ${decimals} decimals`);
  const units = digits.units * 10 ** (decimals - digits.decimals);
  if (!Number.isSafeInteger(units)) throw new RangeError(`${rate} % in units of 10^-${decimals} % is not a safe integer`);
  return units;
}

/**
 * The rate as the exact fraction of the principal it charges in a year, with a power of
 * ten as its denominator: "3.875" is 3875 / 100000, "3" is 3 / 100. Throws a RangeError
 * for what is not a canonical rate.
 */
export function yearlyRateFraction(rate: AnnualRate): { readonly numerator: number; readonly denominator: number } {
  const { units, decimals } = digitsOf(rate);
  return { numerator: units, denominator: 10 ** (decimals + 2) };
}
