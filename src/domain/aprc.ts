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
    'count' in flow ? Array.from({ length: flow.count }, (_, i) => ({ amount: flow.amount, tYears: flow.firstTYears + i * flow.stepYears })) : [flow],
  );
}

// The solver works on d = ln(1 + X), the continuously compounded rate: the
// present value is then a plain sum of exponentials, smooth over every d, and
// X > -1 holds by construction.

/** Present value of some flows at log-rate d, and its derivative in d. */
type PresentValue = (d: number) => { value: number; slope: number };

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
const SEARCH_LIMIT = SEARCH_STEPS[SEARCH_STEPS.length - 1]!;

/** Two log-rates between which the present value changes sign, the nearest to 0 % first; undefined if none. */
function bracketRoot(presentValueAt: PresentValue): [number, number] | undefined {
  const valueAt = (d: number) => presentValueAt(d).value;
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

/** A bracket [low, high] around a root, the present value negative at low, and where Newton should start. */
type IncreasingBracket = { readonly low: number; readonly high: number; readonly start: number };

function clamp(d: number): number {
  return Math.min(SEARCH_LIMIT, Math.max(-SEARCH_LIMIT, d));
}

/**
 * A bracket around the root of a present value that never decreases in d (see
 * isLoanShaped), found from a guess: a Newton step from the guess, then points
 * ever further out until the sign changes; undefined if it does not within the
 * range bracketRoot searches. The root is then the only one, so this finds the
 * same one as bracketRoot, in a few evaluations when the guess is close.
 */
function bracketIncreasingRoot(presentValueAt: PresentValue, guess: number): IncreasingBracket | undefined {
  const from = clamp(guess);
  const { value: atFrom, slope } = presentValueAt(from);
  if (!Number.isFinite(atFrom)) return undefined;
  if (atFrom === 0) return { low: from, high: from, start: from };
  const direction = atFrom < 0 ? 1 : -1;
  const newton = from - atFrom / slope;
  const estimate = Number.isFinite(newton) && (newton - from) * direction > 0 ? clamp(newton) : from;
  // Just past the Newton estimate first, then ever further.
  let step = Math.abs(estimate - from) * 1.05 + 1e-7 * Math.max(1, Math.abs(from));
  let previous = from;
  for (;;) {
    const next = clamp(from + direction * step);
    // Further out, an overflow to -Infinity or +Infinity still has a sign; only NaN says nothing.
    const value = presentValueAt(next).value;
    if (Number.isNaN(value)) return undefined;
    if (value === 0) return { low: next, high: next, start: next };
    if (value < 0 !== atFrom < 0) {
      const [low, high] = direction > 0 ? [previous, next] : [next, previous];
      return { low, high, start: estimate > low && estimate < high ? estimate : (low + high) / 2 };
    }
    if (Math.abs(next) === SEARCH_LIMIT) return undefined;
    previous = next;
    step = Math.max(4 * step, 0.001);
  }
}

/**
 * Newton's method kept inside a bracket that always holds the root: a Newton
 * step that would leave the bracket, or that is not at most half the step
 * before it (so not converging fast), is replaced by bisection. It cannot
 * diverge, and near the root it converges as fast as Newton.
 */
function solveInBracket(
  presentValueAt: PresentValue,
  bracketLow: number,
  bracketHigh: number,
  known?: { readonly lowIsNegative: boolean; readonly start: number },
): number {
  if (bracketLow === bracketHigh) return bracketLow;
  let [low, high] = [bracketLow, bracketHigh];
  const lowIsNegative = known?.lowIsNegative ?? presentValueAt(low).value < 0;
  let d = known?.start ?? (low + high) / 2;
  let step = high - low;
  for (let iteration = 0; iteration < 300; iteration++) {
    const { value, slope } = presentValueAt(d);
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

function paysSomething(flow: CashFlow | RecurringCashFlow): boolean {
  return !('count' in flow) || flow.count > 0;
}

function checkFlows(flows: readonly (CashFlow | RecurringCashFlow)[]): void {
  for (const flow of flows) {
    const tYears = 'count' in flow ? flow.firstTYears : flow.tYears;
    const finite = 'count' in flow ? Number.isFinite(flow.stepYears) && Number.isSafeInteger(flow.count) && flow.count >= 0 && flow.stepYears >= 0 : true;
    if (!Number.isFinite(flow.amount) || !Number.isFinite(tYears) || tYears < 0 || !finite) {
      throw new RangeError(`a cash flow needs a finite amount and a time >= 0, got ${flow.amount} at ${tYears}`);
    }
  }
  // Without money going both ways the present value is never 0 (or always is): no rate to find.
  if (!flows.some((flow) => flow.amount > 0 && paysSomething(flow)) || !flows.some((flow) => flow.amount < 0 && paysSomething(flow))) {
    throw new RangeError('an APRC needs money paid to the consumer and money paid by the consumer');
  }
}

/**
 * The APRC in percent (2.53 means 2.53 %), unrounded. Throws a RangeError if the
 * flows have no rate: one of them is not finite, a time is negative, nothing is
 * lent or nothing repaid, or the present value never changes sign (charges at
 * drawdown that exceed the loan).
 */
export function aprcPercent(flows: readonly CashFlow[]): number {
  checkFlows(flows);
  const presentValueAt: PresentValue = (d) => presentValue(flows, d);
  const bracket = bracketRoot(presentValueAt);
  if (bracket === undefined) throw new RangeError('these cash flows have no APRC: their present value never reaches 0');
  const logRate = solveInBracket(presentValueAt, ...bracket);
  return Math.expm1(logRate) * 100;
}

/**
 * Present value at log-rate d of single and recurring flows, each recurring one
 * a geometric sum in closed form, whatever its count:
 *   sum_{i<K} e^(-i h) = expm1(-K h) / expm1(-h)      (K at h = 0),
 * accurate to a few ulps for every h. Its derivative in h is the sum times
 *   K / expm1(K h) - 1 / expm1(h),  with expm1(x) = -expm1(-x) / (1 + expm1(-x)).
 * Those two terms nearly cancel when K h is small, where a two-term series of
 * sum_{i<K} i e^(-i h) takes over. The slope only steers Newton: its small
 * relative error there, about (K h)^2, does not move the root.
 */
function recurringPresentValue(flows: readonly (CashFlow | RecurringCashFlow)[]): PresentValue {
  // Flattened once: the flows at time 0 add up to a constant, the others are (amount, first, step, count).
  let constant = 0;
  const amounts: number[] = [];
  const firsts: number[] = [];
  const steps: number[] = [];
  const counts: number[] = [];
  for (const flow of flows) {
    const [first, step, count] = 'count' in flow ? [flow.firstTYears, flow.stepYears, flow.count] : [flow.tYears, 0, 1];
    if (count === 0 || flow.amount === 0) continue;
    if (first === 0 && (step === 0 || count === 1)) {
      constant += flow.amount * count;
      continue;
    }
    amounts.push(flow.amount);
    firsts.push(first);
    steps.push(count === 1 ? 0 : step);
    counts.push(count);
  }
  return (d) => {
    let value = constant;
    let slope = 0;
    for (let j = 0; j < amounts.length; j++) {
      const first = firsts[j]!;
      const atFirst = first === 0 ? amounts[j]! : amounts[j]! * Math.exp(-first * d);
      const count = counts[j]!;
      const h = steps[j]! * d;
      if (h === 0) {
        // One flow, or all of them at the same time (or d = 0): count times the first.
        value += count * atFirst;
        slope -= atFirst * count * (first + (steps[j]! * (count - 1)) / 2);
        continue;
      }
      const downAll = Math.expm1(-count * h);
      const downOne = Math.expm1(-h);
      const sum = downAll / downOne;
      const weighted =
        Math.abs(count * h) < 1e-4
          ? ((count - 1) * count) / 2 - (h * (count - 1) * count * (2 * count - 1)) / 6
          : -sum * ((count * (1 + downAll)) / -downAll - (1 + downOne) / -downOne);
      value += atFirst * sum;
      slope -= atFirst * (first * sum + steps[j]! * weighted);
    }
    return { value, slope };
  };
}

/** Whether the consumer receives money only at time 0: the present value then never decreases in the rate. */
function isLoanShaped(flows: readonly (CashFlow | RecurringCashFlow)[]): boolean {
  return flows.every(
    (flow) =>
      flow.amount <= 0 || ('count' in flow ? flow.count === 0 || (flow.firstTYears === 0 && (flow.count === 1 || flow.stepYears === 0)) : flow.tYears === 0),
  );
}

/**
 * aprcPercent(expandCashFlows(flows)), without expanding them: each recurring
 * flow's present value is a geometric sum, a handful of exponentials whatever
 * its count. `guessPercent` (the nominal rate, say) only says where to start
 * looking; it is used when the consumer receives money only at time 0, where the
 * root is unique, and ignored otherwise.
 */
export function recurringAprcPercent(flows: readonly (CashFlow | RecurringCashFlow)[], guessPercent?: number): number {
  checkFlows(flows);
  const presentValueAt = recurringPresentValue(flows);
  const useGuess = guessPercent !== undefined && Number.isFinite(guessPercent) && guessPercent > -100 && isLoanShaped(flows);
  let logRate: number;
  if (useGuess) {
    const bracket = bracketIncreasingRoot(presentValueAt, Math.log1p(guessPercent / 100));
    if (bracket === undefined) throw new RangeError('these cash flows have no APRC: their present value never reaches 0');
    logRate = solveInBracket(presentValueAt, bracket.low, bracket.high, { lowIsNegative: true, start: bracket.start });
  } else {
    const bracket = bracketRoot(presentValueAt);
    if (bracket === undefined) throw new RangeError('these cash flows have no APRC: their present value never reaches 0');
    logRate = solveInBracket(presentValueAt, ...bracket);
  }
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

/** recurringAprcPercent rounded half up to two decimals. */
export function roundedRecurringAprcPercent(flows: readonly (CashFlow | RecurringCashFlow)[], guessPercent?: number): number {
  return roundHalfUp(recurringAprcPercent(flows, guessPercent), 2);
}
