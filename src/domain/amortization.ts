/**
 * French (constant-installment) amortization on exact rationals.
 *
 * The periodic rate r = bps / (10000 * periodsPerYear) is rarely a terminating
 * decimal (2.5 % / 12 = 1/480), so a float or a truncated decimal can turn an
 * exact half-cent tie into a round-down. Everything here is BigInt arithmetic
 * with r kept as a fraction; only whole cents leave this module as numbers.
 */

/** A loan as the amortization sees it: integer cents, integer basis points, a count of periods. */
export type AmortizationLoan = {
  readonly principalCents: number;
  /** Nominal annual rate in basis points: 250 = 2.5 %. */
  readonly annualRateBps: number;
  /** Number of installments. */
  readonly periods: number;
  /** 12 (monthly) unless told otherwise. */
  readonly periodsPerYear?: number;
};

/** An exact non-negative fraction; the denominator is positive. */
export type Rational = { readonly numerator: bigint; readonly denominator: bigint };

export type ScheduleRow = {
  readonly period: number;
  readonly installmentCents: number;
  readonly interestCents: number;
  readonly principalCents: number;
  /** What is still owed after this installment. */
  readonly balanceCents: number;
};

export type Schedule = {
  /** The constant installment, rounded half up to the cent; every row but the last pays it. */
  readonly installmentCents: number;
  readonly rows: readonly ScheduleRow[];
  /** Sum of the rounded interest of every row. */
  readonly totalInterestCents: number;
  /** The last row's installment: what is left owed plus its interest. */
  readonly finalInstallmentCents: number;
};

const BPS_PER_UNIT = 10_000n;

function assertSafeInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be a safe integer >= ${min}, got ${value}`);
  }
}

/** Checks the loan once and turns it into BigInts: 1 + r = a / b with b = 10000 * periodsPerYear, a = b + bps. */
function exactTerms(loan: AmortizationLoan): { principal: bigint; bps: bigint; n: bigint; a: bigint; b: bigint } {
  const periodsPerYear = loan.periodsPerYear ?? 12;
  assertSafeInteger('principalCents', loan.principalCents, 0);
  assertSafeInteger('annualRateBps', loan.annualRateBps, 0);
  assertSafeInteger('periods', loan.periods, 1);
  assertSafeInteger('periodsPerYear', periodsPerYear, 1);
  const bps = BigInt(loan.annualRateBps);
  const b = BPS_PER_UNIT * BigInt(periodsPerYear);
  return { principal: BigInt(loan.principalCents), bps, n: BigInt(loan.periods), a: b + bps, b };
}

/** numerator / denominator rounded half up; both non-negative, denominator positive. */
function divideRoundingHalfUp(numerator: bigint, denominator: bigint): bigint {
  return (2n * numerator + denominator) / (2n * denominator);
}

/**
 * The installment P * r / (1 - (1+r)^-n) in cents, exactly. With 1 + r = a / b
 * and r = bps / b this is P * bps * a^n / (b * (a^n - b^n)); at rate 0 it is P / n.
 */
export function installmentExactCents(loan: AmortizationLoan): Rational {
  const { principal, bps, n, a, b } = exactTerms(loan);
  if (bps === 0n) return { numerator: principal, denominator: n };
  const aToN = a ** n;
  const bToN = b ** n;
  return { numerator: principal * bps * aToN, denominator: b * (aToN - bToN) };
}

/** The installment rounded half up to the cent. */
export function installmentCents(loan: AmortizationLoan): number {
  const { numerator, denominator } = installmentExactCents(loan);
  return Number(divideRoundingHalfUp(numerator, denominator));
}

/** n * exact installment - P, in cents and unrounded: the interest if nobody ever rounded. */
export function totalInterestExactCents(loan: AmortizationLoan): Rational {
  const { numerator, denominator } = installmentExactCents(loan);
  const n = BigInt(loan.periods);
  return { numerator: n * numerator - BigInt(loan.principalCents) * denominator, denominator };
}

/**
 * The cent-rounded schedule. Each period's interest is balance * r rounded half
 * up, the principal is what the constant installment leaves after it, and the
 * last installment pays the remaining balance plus its interest, so the
 * principal column adds up to the loan exactly.
 *
 * The last row is normally period n. For tiny loans over long terms (say 3 € over
 * 40 years at 0 %) the half cent the installment was rounded up by, paid n - 1
 * times, can exceed a whole installment; paying it on would take the balance
 * below zero. The schedule then ends at the period that clears the balance,
 * which is what a borrower paying the installment would see.
 */
export function frenchSchedule(loan: AmortizationLoan): Schedule {
  const { principal, bps, n, b } = exactTerms(loan);
  const installment = BigInt(installmentCents(loan));
  const rows: ScheduleRow[] = [];
  let balance = principal;
  let totalInterest = 0n;
  for (let period = 1n; period <= n; period++) {
    const interest = divideRoundingHalfUp(balance * bps, b);
    const isLast = period === n || installment - interest >= balance;
    const principalPaid = isLast ? balance : installment - interest;
    balance -= principalPaid;
    totalInterest += interest;
    rows.push({
      period: Number(period),
      installmentCents: Number(principalPaid + interest),
      interestCents: Number(interest),
      principalCents: Number(principalPaid),
      balanceCents: Number(balance),
    });
    if (isLast) break;
  }
  return {
    installmentCents: Number(installment),
    rows,
    totalInterestCents: Number(totalInterest),
    finalInstallmentCents: rows[rows.length - 1]!.installmentCents,
  };
}
