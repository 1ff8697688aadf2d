/** Basis points in a year expressed as a monthly fraction: r = bps / 120000. */
const MONTHLY_BPS_DENOMINATOR = 120_000n;

function assertSafeInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be a safe integer >= ${min}, got ${value}`);
  }
}

/** numerator / denominator rounded half-up; both non-negative, denominator positive. */
function divideRoundingHalfUp(numerator: bigint, denominator: bigint): bigint {
  return (2n * numerator + denominator) / (2n * denominator);
}

/**
 * Monthly instalment of a French (constant-payment) amortization, in cents,
 * rounded half-up to the cent. Computed on exact rationals with BigInt, because
 * (1 + r)^n in floating point drifts by a cent on long terms and the result is
 * stored and compared.
 *
 * With r = bps / 120000 and n = 12 * termYears:
 *   P * r * (1+r)^n / ((1+r)^n - 1)
 * and writing 1 + r = a / b with a = 120000 + bps, b = 120000, this is exactly
 *   P * bps * a^n / (b * (a^n - b^n)).
 */
export function monthlyInstallmentCents(amountCents: number, annualRateBps: number, termYears: number): number {
  assertSafeInteger('amountCents', amountCents, 0);
  assertSafeInteger('annualRateBps', annualRateBps, 0);
  assertSafeInteger('termYears', termYears, 1);

  const principal = BigInt(amountCents);
  const months = BigInt(termYears * 12);
  if (annualRateBps === 0) return Number(divideRoundingHalfUp(principal, months));

  const bps = BigInt(annualRateBps);
  const b = MONTHLY_BPS_DENOMINATOR;
  const a = b + bps;
  const aToN = a ** months;
  const bToN = b ** months;
  return Number(divideRoundingHalfUp(principal * bps * aToN, b * (aToN - bToN)));
}
