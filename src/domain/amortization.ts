/**
 * French (constant-installment) amortization on exact rationals.
 *
 * The periodic rate r = q / (D0 * periodsPerYear), with the annual rate q / D0 as a
 * fraction whose denominator is a power of ten (3.875 % = 3875 / 100000), is rarely a
 * terminating decimal (2.5 % / 12 = 1/480), so a float or a truncated decimal can turn
 * an exact half-cent tie into a round-down. Everything here is BigInt arithmetic with r
 * kept as a fraction; only whole cents leave this module as numbers.
 */
import { yearlyRateFraction, type AnnualRate } from './annual-rate.ts';

/** A loan as the amortization sees it: integer cents, the annual rate, a count of periods. */
export type AmortizationLoan = {
  readonly principalCents: number;
  /** Nominal annual rate, a decimal percentage: "3.875" is 3.875 %. */
  readonly annualRate: AnnualRate;
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

/** 2^53: integers up to here are exact doubles. */
const MAX_EXACT = 2 ** 53;

function assertSafeInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be a safe integer >= ${min}, got ${value}`);
  }
}

/** The annual rate as numerator / denominator (see yearlyRateFraction). */
type RateFraction = { readonly numerator: number; readonly denominator: number };

/** Checks the loan; its rate as a fraction. */
function checkLoan(loan: AmortizationLoan, periodsPerYear: number): RateFraction {
  assertSafeInteger('principalCents', loan.principalCents, 0);
  assertSafeInteger('periods', loan.periods, 1);
  assertSafeInteger('periodsPerYear', periodsPerYear, 1);
  return yearlyRateFraction(loan.annualRate);
}

/**
 * Checks the loan once and turns it into BigInts: the periodic rate r = q / b, with q the
 * annual rate's numerator and b its denominator times periodsPerYear, and 1 + r = a / b.
 */
function exactTerms(loan: AmortizationLoan): { principal: bigint; q: bigint; n: bigint; a: bigint; b: bigint } {
  const periodsPerYear = loan.periodsPerYear ?? 12;
  const rate = checkLoan(loan, periodsPerYear);
  const q = BigInt(rate.numerator);
  const b = BigInt(rate.denominator) * BigInt(periodsPerYear);
  return { principal: BigInt(loan.principalCents), q, n: BigInt(loan.periods), a: b + q, b };
}

/** numerator / denominator rounded half up; both non-negative, denominator positive. */
function divideRoundingHalfUp(numerator: bigint, denominator: bigint): bigint {
  return (2n * numerator + denominator) / (2n * denominator);
}

/**
 * The factor F with installment = P * F, kept per (rate, periods, periodsPerYear):
 * F = q * a^n / (b * (a^n - b^n)), as an exact fraction and as a double. The
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
const factorCache = new Map<string, InstallmentFactor>();

function bitLength(value: bigint): number {
  return value.toString(16).length * 4;
}

function computeFactor(q: bigint, n: bigint, a: bigint, b: bigint): InstallmentFactor {
  const aToN = a ** n;
  const numerator = q * aToN;
  const denominator = b * (aToN - b ** n);
  // At least 60 significant bits in the quotient: truncating it costs under 2^-59 relative, Number() then rounds to 53 bits.
  const shift = Math.max(0, 64 + bitLength(denominator) - bitLength(numerator));
  const approximation = shift < 1000 ? Number((numerator << BigInt(shift)) / denominator) * 2 ** -shift : Number.NaN;
  return { numerator, denominator, approximation };
}

/** F for a loan at a rate above 0, from the cache when it was computed lately. */
function installmentFactor(annualRate: AnnualRate, rate: RateFraction, periods: number, periodsPerYear: number): InstallmentFactor {
  const key = `${annualRate}/${periods}/${periodsPerYear}`;
  const cached = factorCache.get(key);
  if (cached !== undefined) return cached;
  const q = BigInt(rate.numerator);
  const b = BigInt(rate.denominator) * BigInt(periodsPerYear);
  const factor = computeFactor(q, BigInt(periods), b + q, b);
  if (factorCache.size >= FACTOR_CACHE_SIZE) factorCache.delete(factorCache.keys().next().value!);
  factorCache.set(key, factor);
  return factor;
}

/** Below this, the double P * F is within 1e-5 of a cent of the exact installment. */
const FAST_INSTALLMENT_LIMIT = 1e11;
/** How far from a half cent the double P * F must be to round it without the exact fraction. */
const TIE_MARGIN = 1e-4;

/**
 * The installment P * r / (1 - (1+r)^-n) in cents, exactly. With 1 + r = a / b
 * and r = q / b this is P * q * a^n / (b * (a^n - b^n)); at rate 0 it is P / n.
 */
export function installmentExactCents(loan: AmortizationLoan): Rational {
  const periodsPerYear = loan.periodsPerYear ?? 12;
  const rate = checkLoan(loan, periodsPerYear);
  const principal = BigInt(loan.principalCents);
  if (rate.numerator === 0) return { numerator: principal, denominator: BigInt(loan.periods) };
  const factor = installmentFactor(loan.annualRate, rate, loan.periods, periodsPerYear);
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
  return roundedInstallment(loan, checkLoan(loan, periodsPerYear), periodsPerYear);
}

function roundedInstallment(loan: AmortizationLoan, rate: RateFraction, periodsPerYear: number): number {
  const { principalCents, periods } = loan;
  if (rate.numerator === 0) {
    if (2 * principalCents + 3 * periods <= MAX_EXACT) return roundedQuotient(principalCents, periods);
    return Number(divideRoundingHalfUp(BigInt(principalCents), BigInt(periods)));
  }
  const factor = installmentFactor(loan.annualRate, rate, periods, periodsPerYear);
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
/** Up to here balance * q, and so every period's interest, is decided in doubles (see walkSchedule). */
const FAST_INTEREST_LIMIT = 2 ** 48;

/**
 * Walks the cent-rounded schedule (see frenchSchedule), handing each row to
 * `sink` if there is one.
 *
 * Each interest is E = balance * q / D rounded half up, with the annual rate q / D0
 * and D = D0 * periodsPerYear. While balance * q <= 2^48 (at two decimals, q is at
 * most 2,000 and every valid loan passes by far: 1e10 cents gives 2e13; at four, q is
 * at most 199,999 and loans up to some 14 million euros pass) it is decided in
 * doubles: x = balance * (q / D) is within E * 2^-52, so under 1/(16 D), of E. E is a
 * whole number of 1/D, so it is either exactly a half cent from the integers around
 * it or at least 1/D nearer one of them: x then rounds to the same nearest integer,
 * and an exact half shows as x within 1/(2 D) of the half, which goes up. Rounding
 * by adding and taking 2^52 keeps the period's chain of dependent operations short:
 * this loop is the simulation's largest cost. Past the bound, BigInts.
 */
function walkSchedule(loan: AmortizationLoan, sink: RowSink | undefined): ScheduleTotals {
  const periodsPerYear = loan.periodsPerYear ?? 12;
  const annualRate = checkLoan(loan, periodsPerYear);
  const installment = roundedInstallment(loan, annualRate, periodsPerYear);
  const { principalCents, periods } = loan;
  const denominator = annualRate.denominator * periodsPerYear;
  if (Number.isSafeInteger(denominator) && principalCents * annualRate.numerator <= FAST_INTEREST_LIMIT) {
    const rate = annualRate.numerator / denominator;
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
  const { principal, q, n, b } = exactTerms(loan);
  // Past 2^53 cents the double installment has lost digits: round the exact fraction again.
  const exactInstallment = Number.isSafeInteger(installment) ? BigInt(installment) : roundedInstallmentExactly(loan);
  let balance = principal;
  let totalInterest = 0n;
  for (let period = 1n; ; period++) {
    const interest = divideRoundingHalfUp(balance * q, b);
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
