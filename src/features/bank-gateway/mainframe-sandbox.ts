/**
 * The simulated host reacts to the cents of the loan amount, so a demo or a test
 * can pick the bank's answer by typing an amount (250 000,51 is refused for funds).
 * These rules win over the simulator's random timeout and refusal rates.
 */
export type SandboxBehaviour =
  | { readonly kind: 'refuse'; readonly code: string; readonly reason: string }
  | { readonly kind: 'never-answer' }
  | { readonly kind: 'lose-first-reply' }
  | { readonly kind: 'book' };

export type SandboxRule = {
  /** The amount's cents (amountCents % 100) that trigger the rule; null for every other amount. */
  readonly cents: number | null;
  readonly behaviour: SandboxBehaviour;
  /** One line for the README. */
  readonly description: string;
};

export const mainframeSandboxRules: readonly SandboxRule[] = [
  {
    cents: 51,
    behaviour: { kind: 'refuse', code: 'FUND', reason: 'insufficient funds' },
    description: 'refused with FUND (insufficient funds)',
  },
  {
    cents: 52,
    behaviour: { kind: 'refuse', code: 'BLCK', reason: 'customer blocked at the bank' },
    description: 'refused with BLCK (customer blocked at the bank)',
  },
  {
    cents: 53,
    behaviour: { kind: 'never-answer' },
    description: 'never answered: every attempt times out on the client',
  },
  {
    cents: 54,
    behaviour: { kind: 'lose-first-reply' },
    description: 'the first BOOK for a key is booked but its reply is lost; a retry with the same key gets the same contract number',
  },
  {
    cents: null,
    behaviour: { kind: 'book' },
    description: 'booked',
  },
];

const byCents = new Map(mainframeSandboxRules.filter((rule) => rule.cents !== null).map((rule) => [rule.cents, rule]));
const otherwise = mainframeSandboxRules.find((rule) => rule.cents === null)!;

export function sandboxRuleFor(amountCents: number): SandboxRule {
  return byCents.get(amountCents % 100) ?? otherwise;
}
