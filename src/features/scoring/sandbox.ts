import { createHash } from 'node:crypto';
import type { BureauKind, RiskBand } from './policy.ts';

/**
 * How one simulated bureau answers:
 * - `score`: a normal report, band A..C derived from the tax code;
 * - `band-e`: a report in the worst band;
 * - `unavailable`: HTTP 503, every time;
 * - `no-answer`: holds the request (~30 s or until the server closes), so any client timeout fires.
 */
export type SandboxAnswer = 'score' | 'band-e' | 'unavailable' | 'no-answer';

export type SandboxRule = {
  /** Matched against the applicant's last name, trimmed and case-insensitive. */
  readonly lastName: string;
  readonly answers: Readonly<Record<BureauKind, SandboxAnswer>>;
  readonly description: string;
};

/** The sandbox names. Anyone else gets a normal score in bands A..C, deterministic from the tax code. */
export const sandboxRules: readonly SandboxRule[] = [
  {
    lastName: 'Lowscore',
    answers: { crif: 'band-e', experian: 'band-e' },
    description: 'Both bureaus report risk band E: the credit check is rejected on score (SCORE_BAND).',
  },
  {
    lastName: 'Crifdown',
    answers: { crif: 'unavailable', experian: 'score' },
    description: 'The CRIF-like bureau answers HTTP 503 every time; the Experian-like one answers normally, so the report comes from Experian.',
  },
  {
    lastName: 'Crifslow',
    answers: { crif: 'no-answer', experian: 'score' },
    description: 'The CRIF-like bureau never answers within any timeout; the client times out, retries, then falls back to Experian.',
  },
  {
    lastName: 'Bureausdown',
    answers: { crif: 'unavailable', experian: 'unavailable' },
    description: 'Both bureaus answer HTTP 503 every time: no report can be obtained (BureauUnavailableError).',
  },
];

/** Description of everyone not in the table, for the docs. */
export const sandboxDefaultDescription = 'Anyone else: a normal report from the first bureau asked, in band A, B or C, deterministic from the tax code.';

function normalizeLastName(lastName: string): string {
  return lastName.trim().toLowerCase();
}

export function sandboxRuleFor(lastName: string): SandboxRule | undefined {
  const wanted = normalizeLastName(lastName);
  return sandboxRules.find((rule) => normalizeLastName(rule.lastName) === wanted);
}

/**
 * The sandbox answer of a bureau for this last name, or undefined if the name
 * is not a sandbox name (the simulator may then inject its random errors).
 */
export function sandboxAnswerFor(bureau: BureauKind, lastName: string): SandboxAnswer | undefined {
  return sandboxRuleFor(lastName)?.answers[bureau];
}

/**
 * Where an applicant sits in a risk band: `band` and a position inside it in
 * thousandths (0..999), both from a hash of the tax code so that every bureau,
 * every run, gives the same applicant the same band.
 */
export type SandboxScoreProfile = { readonly band: RiskBand; readonly positionPermille: number };

const NORMAL_BANDS = ['A', 'B', 'C'] as const;

export function sandboxScoreProfile(taxCode: string, answer: 'score' | 'band-e'): SandboxScoreProfile {
  const digest = createHash('sha256').update(taxCode.trim().toUpperCase()).digest();
  const bandIndex = digest.readUInt32BE(0) % NORMAL_BANDS.length;
  const positionPermille = digest.readUInt32BE(4) % 1000;
  return { band: answer === 'band-e' ? 'E' : NORMAL_BANDS[bandIndex]!, positionPermille };
}

const ANSWER_LABELS: Readonly<Record<SandboxAnswer, string>> = {
  score: 'normal report',
  'band-e': 'report, band E',
  unavailable: 'HTTP 503',
  'no-answer': 'no answer (timeout)',
};

/** The table as Markdown, so the README can be generated from it or checked against it. */
export function sandboxRulesMarkdown(): string {
  const rows = sandboxRules.map(
    (rule) => `| \`${rule.lastName}\` | ${ANSWER_LABELS[rule.answers.crif]} | ${ANSWER_LABELS[rule.answers.experian]} | ${rule.description} |`,
  );
  return [
    '| Last name | CRIF-like | Experian-like | What happens |',
    '| --- | --- | --- | --- |',
    ...rows,
    `| _anyone else_ | ${ANSWER_LABELS.score} | ${ANSWER_LABELS.score} | ${sandboxDefaultDescription} |`,
  ].join('\n');
}
