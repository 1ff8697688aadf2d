/**
 * The annual percentage rate of charge (APRC, TAEG in Italian) of Directive
 * 2014/17/EU, Annex I: the effective annual rate X at which what the consumer
 * receives and what the consumer pays have the same present value,
 *   sum_k C_k (1+X)^(-t_k) = sum_l D_l (1+X)^(-s_l),  t in years.
 *
 * The directive only asks for a correct decimal figure, not exact arithmetic,
 * so this works in doubles.
 */

/**
 * One payment. Positive = paid to the consumer (the drawdown), negative = paid
 * by the consumer (repayments and charges). Any unit will do, euros or cents,
 * as long as every flow of a loan uses the same one: the rate does not depend on it.
 */
export type CashFlow = { readonly amount: number; readonly tYears: number };

/** `count` equal payments at firstTYears, firstTYears + stepYears, … */
export type RecurringCashFlow = {
  readonly amount: number;
  readonly count: number;
  readonly firstTYears: number;
  readonly stepYears: number;
};

/** One payment at a given time, one repeated at regular steps. */
export function expandCashFlows(flows: readonly (CashFlow | RecurringCashFlow)[]): CashFlow[] {
  return flows.flatMap((flow) =>
    'count' in flow
      ? Array.from({ length: flow.count }, (_, i) => ({ amount: flow.amount, tYears: flow.firstTYears + i * flow.stepYears }))
      : [flow],
  );
}

// The solver works on d = ln(1 + X), the continuously compounded rate: the
// present value is then a plain sum of exponentials, smooth over every d, and
// X > -1 holds by construction.

/** Present value of the flows at log-rate d, and its derivative in d. */
function presentValue(flows: readonly CashFlow[], d: number): { value: number; slope: number } {
  let value = 0;
  let slope = 0;
  for (const { amount, tYears } of flows) {
    const discounted = amount * Math.exp(-tYears * d);
    value += discounted;
    slope -= tYears * discounted;
  }
  return { value, slope };
}

/** 0, ±0.01, ±0.02, ±0.04, … ±655.36: log-rates from -100 % to far beyond any real loan, finer near 0. */
const SEARCH_STEPS = Array.from({ length: 17 }, (_, k) => 0.01 * 2 ** k);

/** Two log-rates between which the present value changes sign, the nearest to 0 % first; undefined if none. */
function bracketRoot(flows: readonly CashFlow[]): [number, number] | undefined {
  const valueAt = (d: number) => presentValue(flows, d).value;
  const upward = [0, ...SEARCH_STEPS];
  const downward = [0, ...SEARCH_STEPS.map((step) => -step)];
  for (let i = 0; i + 1 < upward.length; i++) {
    for (const points of [upward, downward]) {
      const [a, b] = [points[i]!, points[i + 1]!];
      const [fa, fb] = [valueAt(a), valueAt(b)];
      // Far from 0 % the exponentials can overflow; those points say nothing.
      if (!Number.isFinite(fa) || !Number.isFinite(fb)) continue;
      if (fa === 0) return [a, a];
      if (fb === 0) return [b, b];
      if (Math.sign(fa) !== Math.sign(fb)) return a < b ? [a, b] : [b, a];
    }
  }
  return undefined;
}

/**
 * Newton's method kept inside a bracket that always holds the root: a Newton
 * step that would leave the bracket, or that is not at most half the step
 * before it (so not converging fast), is replaced by bisection. It cannot
 * diverge, and near the root it converges as fast as Newton.
 */
function solveInBracket(flows: readonly CashFlow[], bracketLow: number, bracketHigh: number): number {
  if (bracketLow === bracketHigh) return bracketLow;
  let [low, high] = [bracketLow, bracketHigh];
  const lowIsNegative = presentValue(flows, low).value < 0;
  let d = (low + high) / 2;
  let step = high - low;
  for (let iteration = 0; iteration < 300; iteration++) {
    const { value, slope } = presentValue(flows, d);
    if (value === 0) return d;
    if (value < 0 === lowIsNegative) low = d;
    else high = d;
    const previousStep = step;
    const newton = d - value / slope;
    const newtonIsGood = Number.isFinite(newton) && newton > low && newton < high && Math.abs(2 * value) <= Math.abs(previousStep * slope);
    const next = newtonIsGood ? newton : (low + high) / 2;
    step = next - d;
    if (Math.abs(step) <= 1e-15 * Math.max(1, Math.abs(d)) || high - low <= 1e-15 * Math.max(1, Math.abs(low))) return next;
    d = next;
  }
  return d;
}

/**
 * The APRC in percent (2.53 means 2.53 %), unrounded. Throws a RangeError if the
 * flows have no rate: one of them is not finite, a time is negative, nothing is
 * lent or nothing repaid, or the present value never changes sign (charges at
 * drawdown that exceed the loan).
 */
export function aprcPercent(flows: readonly CashFlow[]): number {
  for (const { amount, tYears } of flows) {
    if (!Number.isFinite(amount) || !Number.isFinite(tYears) || tYears < 0) {
      throw new RangeError(`a cash flow needs a finite amount and a time >= 0, got ${amount} at ${tYears}`);
    }
  }
  // Without money going both ways the present value is never 0 (or always is): no rate to find.
  if (!flows.some((flow) => flow.amount > 0) || !flows.some((flow) => flow.amount < 0)) {
    throw new RangeError('an APRC needs money paid to the consumer and money paid by the consumer');
  }
  const bracket = bracketRoot(flows);
  if (bracket === undefined) throw new RangeError('these cash flows have no APRC: their present value never reaches 0');
  const logRate = solveInBracket(flows, ...bracket);
  return Math.expm1(logRate) * 100;
}

/**
 * Rounds half up to `decimals` places (Annex I, remark (d)). A computed rate that
 * lands a hair under a half (2.7049999999999996) is float noise, not a real
 * value below the half, so anything within 1e-9 of a unit counts as reaching it.
 */
export function roundHalfUp(value: number, decimals = 2): number {
  const scale = 10 ** decimals;
  return Math.floor(value * scale + 0.5 + 1e-9) / scale;
}

/** The APRC in percent, rounded half up to two decimals as it is shown to the consumer. */
export function roundedAprcPercent(flows: readonly CashFlow[]): number {
  return roundHalfUp(aprcPercent(flows), 2);
}
