/** The Application service's settings, read once by the composition root (app/config.ts). */
export type ApplicationConfig = {
  /** The smallest loan granted; an application for less is refused (400, loan.amount). */
  readonly minLoanCents: number;
  /** Years personal data is kept after the relationship ends; an erasure is refused before. */
  readonly retentionYears: number;
};
