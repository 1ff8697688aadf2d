/** The Scoring service's settings, read once by the composition root (app/config.ts). */
export type ScoringConfig = {
  /** Unset: a simulated bureau runs in this process. */
  readonly crifUrl: string | undefined;
  readonly experianUrl: string | undefined;
  readonly bureauTimeoutMs: number;
  readonly bureauAttempts: number;
  /** After this long without an answer from either bureau, the credit check is rejected. */
  readonly deadlineMs: number;
  readonly maxDebtToIncomePercent: number;
  readonly simulatedLatencyMs: number;
  readonly simulatedErrorRate: number;
};
