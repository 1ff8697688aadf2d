import { annualRateFromBasisPoints, type AnnualRate } from './annual-rate.ts';

/**
 * The published rate table: an annual rate for each rate type, term band and
 * loan-to-value band. The first band whose upper bounds hold applies.
 */
export type RateType = 'fixed' | 'variable';

export type RateBand = {
  readonly maxTermYears: number;
  /** Loan over property value, in basis points (8000 = 80 %). */
  readonly maxLtvBps: number;
  readonly annualRate: AnnualRate;
};

export type RateTable = {
  readonly publishedAt: string;
  readonly bands: Readonly<Record<RateType, readonly RateBand[]>>;
};

function bandsFor(baseBps: readonly [number, number, number, number]): RateBand[] {
  const terms = [10, 20, 30, 40] as const;
  const ltvSurchargeBps = [
    [6000, 0],
    [8000, 20],
    [10000, 60],
  ] as const;
  return terms.flatMap((maxTermYears, t) =>
    ltvSurchargeBps.map(([maxLtvBps, surcharge]) => ({ maxTermYears, maxLtvBps, annualRate: annualRateFromBasisPoints(baseBps[t]! + surcharge) })),
  );
}

/** The table in force until an operator publishes another. */
export const defaultRateTable: RateTable = {
  publishedAt: '2026-11-01T00:00:00.000Z',
  bands: {
    fixed: bandsFor([290, 310, 325, 345]),
    variable: bandsFor([265, 275, 285, 300]),
  },
};

/** Loan-to-value in basis points, rounded up so that a cap is never passed by rounding. */
export function loanToValueBps(loanCents: number, propertyValueCents: number): number {
  return Math.ceil((loanCents * 10_000) / propertyValueCents);
}

export function publishedRateFor(
  table: RateTable,
  loan: { readonly rateType: RateType; readonly termYears: number; readonly ltvBps: number },
): AnnualRate | undefined {
  return table.bands[loan.rateType].find((band) => loan.termYears <= band.maxTermYears && loan.ltvBps <= band.maxLtvBps)?.annualRate;
}
