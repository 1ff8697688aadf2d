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
