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
/** 2^53: integers up to here are exact doubles. */
const MAX_EXACT = 2 ** 53;

function assertSafeInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be a safe integer >= ${min}, got ${value}`);
  }
}

function checkLoan(loan: AmortizationLoan, periodsPerYear: number): void {
  assertSafeInteger('principalCents', loan.principalCents, 0);
  assertSafeInteger('annualRateBps', loan.annualRateBps, 0);
  assertSafeInteger('periods', loan.periods, 1);
  assertSafeInteger('periodsPerYear', periodsPerYear, 1);
}

/** Checks the loan once and turns it into BigInts: 1 + r = a / b with b = 10000 * periodsPerYear, a = b + bps. */
function exactTerms(loan: AmortizationLoan): { principal: bigint; bps: bigint; n: bigint; a: bigint; b: bigint } {
  const periodsPerYear = loan.periodsPerYear ?? 12;
  checkLoan(loan, periodsPerYear);
  const bps = BigInt(loan.annualRateBps);
  const b = BPS_PER_UNIT * BigInt(periodsPerYear);
  return { principal: BigInt(loan.principalCents), bps, n: BigInt(loan.periods), a: b + bps, b };
}

/** numerator / denominator rounded half up; both non-negative, denominator positive. */
function divideRoundingHalfUp(numerator: bigint, denominator: bigint): bigint {
  return (2n * numerator + denominator) / (2n * denominator);
}

/**
 * The factor F with installment = P * F, kept per (rate, periods, periodsPerYear):
 * F = bps * a^n / (b * (a^n - b^n)), as an exact fraction and as a double. The
 * powers are the expensive part (a^360 has some 6,000 bits) and do not depend on
 * the principal, so a small cache spares them to every loan on a common term.
 */
type InstallmentFactor = {
  readonly numerator: bigint;
  readonly denominator: bigint;
  /** numerator / denominator to within 2^-52 relative, or NaN when out of the double's range. */
  readonly approximation: number;
};

const FACTOR_CACHE_SIZE = 512;
const factorCache = new Map<number, InstallmentFactor>();

function bitLength(value: bigint): number {
  return value.toString(16).length * 4;
}

function computeFactor(bps: bigint, n: bigint, a: bigint, b: bigint): InstallmentFactor {
  const aToN = a ** n;
  const numerator = bps * aToN;
  const denominator = b * (aToN - b ** n);
  // At least 60 significant bits in the quotient: truncating it costs under 2^-59 relative, Number() then rounds to 53 bits.
  const shift = Math.max(0, 64 + bitLength(denominator) - bitLength(numerator));
  const approximation = shift < 1000 ? Number((numerator << BigInt(shift)) / denominator) * 2 ** -shift : Number.NaN;
  return { numerator, denominator, approximation };
}

/** F for a loan with bps > 0, from the cache when its terms are small enough to key it. */
function installmentFactor(annualRateBps: number, periods: number, periodsPerYear: number): InstallmentFactor {
  const cacheable = annualRateBps < 2 ** 20 && periods < 2 ** 16 && periodsPerYear < 2 ** 12;
  const key = cacheable ? (periodsPerYear * 2 ** 16 + periods) * 2 ** 20 + annualRateBps : -1;
  const cached = cacheable ? factorCache.get(key) : undefined;
  if (cached !== undefined) return cached;
  const bps = BigInt(annualRateBps);
  const b = BPS_PER_UNIT * BigInt(periodsPerYear);
  const factor = computeFactor(bps, BigInt(periods), b + bps, b);
  if (cacheable) {
    if (factorCache.size >= FACTOR_CACHE_SIZE) factorCache.delete(factorCache.keys().next().value!);
    factorCache.set(key, factor);
  }
  return factor;
}

/** Below this, the double P * F is within 1e-5 of a cent of the exact installment. */
const FAST_INSTALLMENT_LIMIT = 1e11;
/** How far from a half cent the double P * F must be to round it without the exact fraction. */
const TIE_MARGIN = 1e-4;

/**
 * The installment P * r / (1 - (1+r)^-n) in cents, exactly. With 1 + r = a / b
 * and r = bps / b this is P * bps * a^n / (b * (a^n - b^n)); at rate 0 it is P / n.
 */
export function installmentExactCents(loan: AmortizationLoan): Rational {
  const { principal, bps, n } = exactTerms(loan);
  if (bps === 0n) return { numerator: principal, denominator: n };
  const factor = installmentFactor(loan.annualRateBps, loan.periods, loan.periodsPerYear ?? 12);
  return { numerator: principal * factor.numerator, denominator: factor.denominator };
}

/**
 * round_half_up(x / y) = floor((2x + y) / 2y) for integers x >= 0, y > 0, in
 * doubles. Exact when 2x + 3y <= 2^53: the operands are then exact, and a
 * quotient q = X / Y (X = 2x + y, Y = 2y) that is not an integer is at least 1/Y
 * below the next integer k + 1, more than half an ulp of k + 1 since
 * Y * (k + 1) <= X + Y <= 2^53, so the division cannot round up to it.
 */
function roundedQuotient(x: number, y: number): number {
  return Math.floor((2 * x + y) / (2 * y));
}

/**
 * The installment rounded half up to the cent. The double P * F is within some
 * 2^-51 relative of the exact value, so unless it lies within TIE_MARGIN of a half
 * cent it rounds the same way; near a half, the exact fraction decides.
 */
export function installmentCents(loan: AmortizationLoan): number {
  const periodsPerYear = loan.periodsPerYear ?? 12;
  checkLoan(loan, periodsPerYear);
  const { principalCents, annualRateBps, periods } = loan;
  if (annualRateBps === 0) {
    if (2 * principalCents + 3 * periods <= MAX_EXACT) return roundedQuotient(principalCents, periods);
    return Number(divideRoundingHalfUp(BigInt(principalCents), BigInt(periods)));
  }
  const factor = installmentFactor(annualRateBps, periods, periodsPerYear);
  const approximate = principalCents * factor.approximation;
  if (approximate < FAST_INSTALLMENT_LIMIT) {
    const whole = Math.floor(approximate);
    const fraction = approximate - whole;
    if (Math.abs(fraction - 0.5) > TIE_MARGIN) return fraction < 0.5 ? whole : whole + 1;
  }
  return Number(divideRoundingHalfUp(BigInt(principalCents) * factor.numerator, factor.denominator));
}

function roundedInstallmentExactly(loan: AmortizationLoan): bigint {
  const { numerator, denominator } = installmentExactCents(loan);
  return divideRoundingHalfUp(numerator, denominator);
}

/** n * exact installment - P, in cents and unrounded: the interest if nobody ever rounded. */
export function totalInterestExactCents(loan: AmortizationLoan): Rational {
  const { numerator, denominator } = installmentExactCents(loan);
  const n = BigInt(loan.periods);
  return { numerator: n * numerator - BigInt(loan.principalCents) * denominator, denominator };
}

/** What a schedule adds up to, without its rows. */
export type ScheduleTotals = {
  readonly installmentCents: number;
  /** Number of installments paid: the periods, or fewer when a tiny loan is repaid early (see frenchSchedule). */
  readonly installments: number;
  readonly totalInterestCents: number;
  readonly finalInstallmentCents: number;
};

/** Receives each row of a schedule as it is computed. */
type RowSink = (period: number, installment: number, interest: number, principal: number, balance: number) => void;

/** Added to and taken from a double in [0, 2^52), rounds it to the nearest integer (ties to even). */
const NEAREST = 2 ** 52;
/** Up to here balance * bps, and so every period's interest, is decided in doubles (see walkSchedule). */
const FAST_INTEREST_LIMIT = 2 ** 48;

/**
 * Walks the cent-rounded schedule (see frenchSchedule), handing each row to
 * `sink` if there is one.
 *
 * Each interest is E = balance * bps / D rounded half up, D = 10,000 * periodsPerYear.
 * While balance * bps <= 2^48 (every valid loan by far: 1e10 cents at 2,000 bps is
 * 2e13) it is decided in doubles: x = balance * (bps / D) is within E * 2^-52, so
 * under 1/(16 D), of E. E is a whole number of 1/D, so it is either exactly a half
 * cent from the integers around it or at least 1/D nearer one of them: x then
 * rounds to the same nearest integer, and an exact half shows as x within 1/(2 D)
 * of the half, which goes up. Rounding by adding and taking 2^52 keeps the
 * period's chain of dependent operations short: this loop is the simulation's
 * largest cost. Past the bound, BigInts.
 */
function walkSchedule(loan: AmortizationLoan, sink: RowSink | undefined): ScheduleTotals {
  const periodsPerYear = loan.periodsPerYear ?? 12;
  const installment = installmentCents(loan); // checks the loan
  const { principalCents, annualRateBps, periods } = loan;
  const denominator = 10_000 * periodsPerYear;
  if (Number.isSafeInteger(denominator) && principalCents * annualRateBps <= FAST_INTEREST_LIMIT) {
    const rate = annualRateBps / denominator;
    const halfUp = 0.5 - 1 / (2 * denominator);
    let balance = principalCents;
    let totalInterest = 0;
    for (let period = 1; ; period++) {
      const exact = balance * rate;
      let interest = exact + NEAREST - NEAREST;
      if (exact - interest >= halfUp) interest++;
      totalInterest += interest;
      if (period === periods || installment - interest >= balance) {
        const finalInstallment = balance + interest;
        sink?.(period, finalInstallment, interest, balance, 0);
        return { installmentCents: installment, installments: period, totalInterestCents: totalInterest, finalInstallmentCents: finalInstallment };
      }
      // The installment is taken from the balance while the interest is still being computed.
      balance = balance - installment + interest;
      sink?.(period, installment, interest, installment - interest, balance);
    }
  }
  const { principal, bps, n, b } = exactTerms(loan);
  // Past 2^53 cents the double installment has lost digits: round the exact fraction again.
  const exactInstallment = Number.isSafeInteger(installment) ? BigInt(installment) : roundedInstallmentExactly(loan);
  let balance = principal;
  let totalInterest = 0n;
  for (let period = 1n; ; period++) {
    const interest = divideRoundingHalfUp(balance * bps, b);
    totalInterest += interest;
    const isLast = period === n || exactInstallment - interest >= balance;
    const principalPaid = isLast ? balance : exactInstallment - interest;
    balance -= principalPaid;
    sink?.(Number(period), Number(principalPaid + interest), Number(interest), Number(principalPaid), Number(balance));
    if (isLast) {
      return {
        installmentCents: installment,
        installments: Number(period),
        totalInterestCents: Number(totalInterest),
        finalInstallmentCents: Number(principalPaid + interest),
      };
    }
  }
}

/** The totals of frenchSchedule(loan), without building its rows. */
export function scheduleTotals(loan: AmortizationLoan): ScheduleTotals {
  return walkSchedule(loan, undefined);
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
  const rows: ScheduleRow[] = [];
  const totals = walkSchedule(loan, (period, installmentCents, interestCents, principalCents, balanceCents) => {
    rows.push({ period, installmentCents, interestCents, principalCents, balanceCents });
  });
  return {
    installmentCents: totals.installmentCents,
    rows,
    totalInterestCents: totals.totalInterestCents,
    finalInstallmentCents: totals.finalInstallmentCents,
  };
}
