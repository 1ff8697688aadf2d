/**
 * A loan simulation (POST /api/simulations): the request's validation and the
 * computation, free of HTTP so that the route only has to call them.
 */
import { frenchSchedule, scheduleTotals, type Schedule, type ScheduleTotals } from './amortization.ts';
import { annualRateFromPercent, annualRatePercent, annualRateProblem, annualRateRule, type AnnualRate } from './annual-rate.ts';
import { roundedRecurringAprcPercent, type CashFlow, type RecurringCashFlow } from './aprc.ts';
import { invalidInput, type FieldError } from './errors.ts';
import { centsToEuros, eurosToCents } from './money.ts';
import { loanToValueBps, publishedRateFor, type RateTable } from './rates.ts';

export type SimulationFees = {
  /** Paid at drawdown. */
  readonly upfrontCents: number;
  /** Paid with every installment. */
  readonly perInstallmentCents: number;
  /** Paid at the start of each year of the loan, the first at drawdown. */
  readonly annualCents: number;
};

export type SimulationInput = {
  readonly amountCents: number;
  readonly termYears: number;
  /** When absent, the published fixed rate for the term and loan-to-value applies. */
  readonly annualRate?: AnnualRate;
  /** Required when annualRate is absent. */
  readonly propertyValueCents?: number;
  readonly fees: SimulationFees;
  /** Whether the result lists every installment. */
  readonly schedule: boolean;
};

/** One installment, in euros. */
export type SimulationScheduleRow = {
  readonly period: number;
  readonly installment: number;
  readonly interest: number;
  readonly principal: number;
  /** Still owed after this installment. */
  readonly balance: number;
};

/** Amounts in euros (two decimals), rates in percent. */
export type SimulationResult = {
  readonly annualRate: number;
  /** The constant monthly installment; the last one may differ by the rounding it absorbs. */
  readonly installment: number;
  readonly totalInterest: number;
  readonly totalCost: number;
  /** APRC (TAEG), rounded half up to two decimals. */
  readonly aprc: number;
  readonly schedule?: readonly SimulationScheduleRow[];
};

export type SimulationRequestParse = { ok: true; value: SimulationInput } | { ok: false; errors: FieldError[] };

const MAX_AMOUNT_CENTS = 10_000_000_000; // 100,000,000 €
const MIN_TERM_YEARS = 1;
const MAX_TERM_YEARS = 40;
const MONTHS_PER_YEAR = 12;

const FIELDS = ['amount', 'termYears', 'annualRate', 'propertyValue', 'fees', 'schedule'] as const;
const FEE_FIELDS = ['upfront', 'perInstallment', 'annual'] as const;

// ---- rules on converted values: each answers what is wrong, or undefined ----

function amountProblem(cents: number): string | undefined {
  return Number.isSafeInteger(cents) && cents > 0 && cents <= MAX_AMOUNT_CENTS ? undefined : `must be more than 0 and at most ${MAX_AMOUNT_CENTS / 100} euros`;
}

function termProblem(years: number): string | undefined {
  return Number.isInteger(years) && years >= MIN_TERM_YEARS && years <= MAX_TERM_YEARS
    ? undefined
    : `must be a whole number of years from ${MIN_TERM_YEARS} to ${MAX_TERM_YEARS}`;
}

function propertyValueProblem(cents: number): string | undefined {
  return Number.isSafeInteger(cents) && cents > 0 ? undefined : 'must be more than 0 euros';
}

// Capped like the amount so that fee totals stay exact integers of cents.
function feeProblem(cents: number): string | undefined {
  return Number.isSafeInteger(cents) && cents >= 0 && cents <= MAX_AMOUNT_CENTS ? undefined : `must be from 0 to ${MAX_AMOUNT_CENTS / 100} euros`;
}

const propertyValueRequired: FieldError = {
  path: 'propertyValue',
  message: 'is required when annualRate is not given: the published rate depends on the loan-to-value',
};

/** Rules across fields, checked only for the fields that are themselves valid (undefined otherwise). */
function crossFieldErrors(values: {
  readonly amountCents: number | undefined;
  readonly propertyValueCents: number | undefined;
  readonly upfrontCents: number | undefined;
  readonly annualFeeCents: number | undefined;
}): FieldError[] {
  const errors: FieldError[] = [];
  const { amountCents, propertyValueCents, upfrontCents, annualFeeCents } = values;
  if (amountCents === undefined) return errors;
  if (propertyValueCents !== undefined && amountCents > propertyValueCents) {
    errors.push({ path: 'amount', message: 'must be at most the property value (a loan-to-value of 100 %)' });
  }
  // What is charged at drawdown must leave the consumer something, or no APRC exists.
  if (upfrontCents !== undefined && upfrontCents >= amountCents) {
    errors.push({ path: 'fees.upfront', message: 'must be less than the amount' });
  } else if (upfrontCents !== undefined && annualFeeCents !== undefined && upfrontCents + annualFeeCents >= amountCents) {
    errors.push({ path: 'fees.annual', message: 'together with fees.upfront (both due at drawdown) must be less than the amount' });
  }
  return errors;
}

// The helpers below stay at module level: the TypeScript loader names every closure
// it sees assigned, at each creation, which costs more than the rule itself on this hot path.

function check(errors: FieldError[], path: string, problem: string | undefined): void {
  if (problem !== undefined) errors.push({ path, message: problem });
}

function validOrUndefined(value: number | undefined, problem: (v: number) => string | undefined): number | undefined {
  return value !== undefined && problem(value) === undefined ? value : undefined;
}

/** Everything wrong with an input, whoever built it. */
export function simulationInputErrors(input: SimulationInput): FieldError[] {
  const errors: FieldError[] = [];
  check(errors, 'amount', amountProblem(input.amountCents));
  check(errors, 'termYears', termProblem(input.termYears));
  if (input.annualRate !== undefined) check(errors, 'annualRate', annualRateProblem(input.annualRate));
  if (input.propertyValueCents !== undefined) check(errors, 'propertyValue', propertyValueProblem(input.propertyValueCents));
  if (input.annualRate === undefined && input.propertyValueCents === undefined) errors.push(propertyValueRequired);
  check(errors, 'fees.upfront', feeProblem(input.fees.upfrontCents));
  check(errors, 'fees.perInstallment', feeProblem(input.fees.perInstallmentCents));
  check(errors, 'fees.annual', feeProblem(input.fees.annualCents));
  errors.push(
    ...crossFieldErrors({
      amountCents: validOrUndefined(input.amountCents, amountProblem),
      propertyValueCents: validOrUndefined(input.propertyValueCents, propertyValueProblem),
      upfrontCents: validOrUndefined(input.fees.upfrontCents, feeProblem),
      annualFeeCents: validOrUndefined(input.fees.annualCents, feeProblem),
    }),
  );
  return errors;
}

// ---- reading the JSON body ----

type JsonObject = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own properties only: a key such as "constructor" must not reach into the prototype. */
function own(object: JsonObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function unknownFieldErrors(object: JsonObject, known: readonly string[], prefix: string): FieldError[] {
  return Object.keys(object)
    .filter((key) => !known.includes(key))
    .map((key) => ({ path: prefix + key, message: 'is not a known field' }));
}

/**
 * Reads one number field: absent gives undefined; a value that does not convert
 * or breaks its rule records an error and gives undefined too, so that later
 * rules only see valid values.
 */
function readNumber(
  value: unknown,
  path: string,
  errors: FieldError[],
  convert: (n: number) => number | null,
  conversionMessage: string,
  problem: (converted: number) => string | undefined,
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    errors.push({ path, message: 'must be a number' });
    return undefined;
  }
  const converted = convert(value);
  if (converted === null) {
    errors.push({ path, message: conversionMessage });
    return undefined;
  }
  const message = problem(converted);
  if (message !== undefined) {
    errors.push({ path, message });
    return undefined;
  }
  return converted;
}

/** Below 2^43 the doubles are under 2^-9 cents apart, so at most one whole number of cents rounds to each. */
const FAST_HUNDREDTHS_LIMIT = 2 ** 43;

/**
 * eurosToCents without the string and BigInt for the common case. If
 * c = Math.round(x * 100) gives back x as c / 100, x is the double nearest to c
 * hundredths; below FAST_HUNDREDTHS_LIMIT no other
 * number of hundredths rounds to x, and the shortest string of x, which has no
 * more digits than c / 100 written out, is then c / 100 itself: exactly what the
 * string-based conversion reads. Anything else goes to `exact`.
 */
export function hundredthsOf(x: number, exact: (n: number) => number | null): number | null {
  if (x > -FAST_HUNDREDTHS_LIMIT && x < FAST_HUNDREDTHS_LIMIT) {
    const scaled = Math.round(x * 100);
    if (scaled / 100 === x) return scaled + 0; // + 0 turns -0 into 0
  }
  return exact(x);
}

const fastEurosToCents = (euros: number) => hundredthsOf(euros, eurosToCents);

const EUROS = 'must be an amount in euros with at most two decimals';

const readEuros = (value: unknown, path: string, errors: FieldError[], problem: (cents: number) => string | undefined) =>
  readNumber(value, path, errors, fastEurosToCents, EUROS, problem);

/** The rate, exactly as the number was written; absent gives undefined, and so does a wrong one (then reported). */
function readRate(value: unknown, errors: FieldError[]): AnnualRate | undefined {
  if (value === undefined) return undefined;
  const rate = typeof value === 'number' ? annualRateFromPercent(value) : null;
  if (rate === null) errors.push({ path: 'annualRate', message: typeof value === 'number' && Number.isFinite(value) ? annualRateRule : 'must be a number' });
  return rate ?? undefined;
}

/** The three fees in cents: 0 when not given, undefined when given wrong (and then reported). */
function readFees(value: unknown, errors: FieldError[]): Record<(typeof FEE_FIELDS)[number], number | undefined> {
  if (value === undefined) return { upfront: 0, perInstallment: 0, annual: 0 };
  if (!isObject(value)) {
    errors.push({ path: 'fees', message: 'must be an object with upfront, perInstallment and annual' });
    return { upfront: undefined, perInstallment: undefined, annual: undefined };
  }
  errors.push(...unknownFieldErrors(value, FEE_FIELDS, 'fees.'));
  return { upfront: readFee(value, 'upfront', errors), perInstallment: readFee(value, 'perInstallment', errors), annual: readFee(value, 'annual', errors) };
}

function readFee(fees: JsonObject, key: (typeof FEE_FIELDS)[number], errors: FieldError[]): number | undefined {
  const raw = own(fees, key);
  return raw === undefined ? 0 : readEuros(raw, `fees.${key}`, errors, feeProblem);
}

/**
 * Validates a POST /api/simulations body: euros as numbers with at most two
 * decimals, the rate as a percentage with at most four. Every wrong field is
 * reported at once, under its path; unknown fields are wrong too. Never throws.
 */
export function parseSimulationRequest(body: unknown): SimulationRequestParse {
  if (!isObject(body)) return { ok: false, errors: [{ path: 'body', message: 'must be a JSON object' }] };
  const errors = unknownFieldErrors(body, FIELDS, '');

  const rawAmount = own(body, 'amount');
  const rawTerm = own(body, 'termYears');
  const rawRate = own(body, 'annualRate');
  const rawPropertyValue = own(body, 'propertyValue');
  const rawSchedule = own(body, 'schedule');

  if (rawAmount === undefined) errors.push({ path: 'amount', message: 'is required' });
  const amountCents = readEuros(rawAmount, 'amount', errors, amountProblem);
  if (rawTerm === undefined) errors.push({ path: 'termYears', message: 'is required' });
  const termYears = readNumber(rawTerm, 'termYears', errors, (n) => n, '', termProblem);
  const annualRate = readRate(rawRate, errors);
  if (rawRate === undefined && rawPropertyValue === undefined) errors.push(propertyValueRequired);
  const propertyValueCents = readEuros(rawPropertyValue, 'propertyValue', errors, propertyValueProblem);
  const fees = readFees(own(body, 'fees'), errors);
  if (rawSchedule !== undefined && typeof rawSchedule !== 'boolean') errors.push({ path: 'schedule', message: 'must be true or false' });

  errors.push(...crossFieldErrors({ amountCents, propertyValueCents, upfrontCents: fees.upfront, annualFeeCents: fees.annual }));

  const { upfront, perInstallment, annual } = fees;
  if (errors.length > 0) return { ok: false, errors };
  // Without errors every required value was read; the check only tells the compiler so.
  if (amountCents === undefined || termYears === undefined || upfront === undefined || perInstallment === undefined || annual === undefined) {
    return { ok: false, errors };
  }
  return {
    ok: true,
    value: {
      amountCents,
      termYears,
      ...(annualRate !== undefined ? { annualRate } : {}),
      ...(propertyValueCents !== undefined ? { propertyValueCents } : {}),
      fees: { upfrontCents: upfront, perInstallmentCents: perInstallment, annualCents: annual },
      schedule: rawSchedule === true,
    },
  };
}

// ---- the computation ----

/** The published fixed rate for the loan, or an invalid-input error naming what no band covers. */
function publishedRate(input: SimulationInput, table: RateTable): AnnualRate {
  const propertyValueCents = input.propertyValueCents!; // simulationInputErrors requires it without a rate
  const ltvBps = loanToValueBps(input.amountCents, propertyValueCents);
  const rate = publishedRateFor(table, { rateType: 'fixed', termYears: input.termYears, ltvBps });
  if (rate !== undefined) return rate;
  if (!table.bands.fixed.some((band) => input.termYears <= band.maxTermYears)) {
    throw invalidInput([{ path: 'termYears', message: `no fixed rate is published for a term of ${input.termYears} years` }]);
  }
  throw invalidInput([{ path: 'propertyValue', message: `no fixed rate is published for a loan of ${(ltvBps / 100).toFixed(2)} % of the property value` }]);
}

/** Years in which installments fall: the term, unless a tiny loan's schedule ends early (see frenchSchedule). */
function yearsRunning(installments: number): number {
  return Math.ceil(installments / MONTHS_PER_YEAR);
}

export function simulationCashFlows(input: Pick<SimulationInput, 'amountCents' | 'fees'>, schedule: Schedule): CashFlow[] {
  const { upfrontCents, perInstallmentCents, annualCents } = input.fees;
  const flows: CashFlow[] = [
    { amount: input.amountCents, tYears: 0 },
    { amount: -upfrontCents, tYears: 0 },
    ...schedule.rows.map((row) => ({ amount: -(row.installmentCents + perInstallmentCents), tYears: row.period / MONTHS_PER_YEAR })),
    ...Array.from({ length: yearsRunning(schedule.rows.length) }, (_, year) => ({ amount: -annualCents, tYears: year })),
  ];
  return flows.filter((flow) => flow.amount !== 0);
}

/**
 * The flows of simulationCashFlows, recurring ones grouped: the drawdown net of
 * the upfront fee, the annual fee each year from 0, the equal installments of
 * months 1 to n - 1 and the last one, each with its per-installment fee.
 */
function groupedCashFlows(input: Pick<SimulationInput, 'amountCents' | 'fees'>, totals: ScheduleTotals): (CashFlow | RecurringCashFlow)[] {
  const { upfrontCents, perInstallmentCents, annualCents } = input.fees;
  const step = 1 / MONTHS_PER_YEAR;
  return [
    { amount: input.amountCents - upfrontCents, tYears: 0 },
    { amount: -annualCents, count: yearsRunning(totals.installments), firstTYears: 0, stepYears: 1 },
    { amount: -(totals.installmentCents + perInstallmentCents), count: totals.installments - 1, firstTYears: step, stepYears: step },
    { amount: -(totals.finalInstallmentCents + perInstallmentCents), tYears: totals.installments / MONTHS_PER_YEAR },
  ];
}

function scheduleInEuros(schedule: Schedule): SimulationScheduleRow[] {
  return schedule.rows.map((row) => ({
    period: row.period,
    installment: centsToEuros(row.installmentCents),
    interest: centsToEuros(row.interestCents),
    principal: centsToEuros(row.principalCents),
    balance: centsToEuros(row.balanceCents),
  }));
}

/**
 * Simulates a monthly French (constant-installment) loan. Throws an invalid-input
 * DomainError if the input breaks a rule or no published rate applies to it.
 *
 * totalCost is what the consumer pays on top of the amount borrowed: the interest
 * (the sum of the schedule's cent-rounded interests) plus every fee, that is
 *   totalInterest + upfront + perInstallment * installments + annual * years,
 * where installments = 12 * termYears and years = termYears (fewer only for a
 * tiny loan the rounded installment repays early).
 *
 * The APRC is that of simulationCashFlows, computed on the grouped flows with the
 * nominal rate as the first guess.
 */
export function simulate(input: SimulationInput, rateTable: RateTable): SimulationResult {
  const errors = simulationInputErrors(input);
  if (errors.length > 0) throw invalidInput(errors);

  const annualRate = input.annualRate ?? publishedRate(input, rateTable);
  const loan = {
    principalCents: input.amountCents,
    annualRate,
    periods: MONTHS_PER_YEAR * input.termYears,
    periodsPerYear: MONTHS_PER_YEAR,
  };
  const schedule = input.schedule ? frenchSchedule(loan) : undefined;
  const totals: ScheduleTotals =
    schedule === undefined
      ? scheduleTotals(loan)
      : {
          installmentCents: schedule.installmentCents,
          installments: schedule.rows.length,
          totalInterestCents: schedule.totalInterestCents,
          finalInstallmentCents: schedule.finalInstallmentCents,
        };
  const { upfrontCents, perInstallmentCents, annualCents } = input.fees;
  const feesCents = upfrontCents + perInstallmentCents * totals.installments + annualCents * yearsRunning(totals.installments);

  return {
    annualRate: annualRatePercent(annualRate),
    installment: centsToEuros(totals.installmentCents),
    totalInterest: centsToEuros(totals.totalInterestCents),
    totalCost: centsToEuros(totals.totalInterestCents + feesCents),
    aprc: roundedRecurringAprcPercent(groupedCashFlows(input, totals), annualRatePercent(annualRate)),
    ...(schedule !== undefined ? { schedule: scheduleInEuros(schedule) } : {}),
  };
}
