import { setTimeout as sleep } from 'node:timers/promises';
import { riskBands, type BureauKind, type BureauReport, type RiskBand } from './policy.ts';

export type BureauEndpoint = { readonly kind: BureauKind; readonly url: string };

export type BureauQuery = { readonly taxCode: string; readonly firstName: string; readonly lastName: string };

export type BureauAttempt = { readonly bureau: BureauKind; readonly error: string };

/** Neither bureau gave a usable report; `attempts` lists every try, in order. */
export class BureauUnavailableError extends Error {
  readonly attempts: readonly BureauAttempt[];

  constructor(attempts: readonly BureauAttempt[]) {
    super(`no credit bureau answered: ${attempts.map((attempt) => `${attempt.bureau}: ${attempt.error}`).join('; ')}`);
    this.name = 'BureauUnavailableError';
    this.attempts = attempts;
  }
}

export type BureauClientOptions = {
  readonly primary: BureauEndpoint;
  readonly secondary: BureauEndpoint;
  /** Per attempt. */
  readonly timeoutMs?: number;
  readonly attemptsPerBureau?: number;
  readonly retryDelayMs?: number;
};

export type BureauClient = { readonly report: (query: BureauQuery) => Promise<BureauReport> };

/** A failure worth another try at the same bureau (timeout, 5xx, malformed body), or not (4xx). */
class AttemptFailed extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

type BureauAdapter = {
  readonly path: string;
  readonly requestBody: (query: BureauQuery) => object;
  /** The normalised report, or undefined if the body is not what the bureau promises. */
  readonly parse: (body: unknown) => BureauReport | undefined;
};

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
const isNonEmptyString = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isIntegerIn = (value: unknown, min: number, max: number): value is number =>
  Number.isInteger(value) && (value as number) >= min && (value as number) <= max;
const isRiskBand = (value: unknown): value is RiskBand => riskBands.some((band) => band === value);

const crifAdapter: BureauAdapter = {
  path: 'v1/credit-reports',
  requestBody: (query) => ({ fiscalCode: query.taxCode, firstName: query.firstName, lastName: query.lastName }),
  parse: (body) => {
    if (!isRecord(body)) return undefined;
    const { reportId, score, riskClass, model } = body;
    if (!isNonEmptyString(reportId) || !isIntegerIn(score, 300, 850) || !isRiskBand(riskClass) || !isNonEmptyString(model)) {
      return undefined;
    }
    return { bureau: 'crif', modelVersion: model, score, band: riskClass, reportId };
  },
};

const experianAdapter: BureauAdapter = {
  path: 'consumer/score',
  requestBody: (query) => ({ consumer: { taxId: query.taxCode, surname: query.lastName, givenName: query.firstName } }),
  parse: (body) => {
    if (!isRecord(body)) return undefined;
    const { id, riskScore, grade, scorecard } = body;
    if (!isNonEmptyString(id) || !isIntegerIn(riskScore, 0, 999) || !isIntegerIn(grade, 1, 5) || !isNonEmptyString(scorecard)) {
      return undefined;
    }
    // Experian grades run 1 (best) .. 5, the same order as bands A .. E.
    return { bureau: 'experian', modelVersion: scorecard, score: riskScore, band: riskBands[grade - 1]!, reportId: id };
  },
};

const adapters: Readonly<Record<BureauKind, BureauAdapter>> = { crif: crifAdapter, experian: experianAdapter };

function endpointUrl(baseUrl: string, path: string): URL {
  // A relative path against a base ending in '/' keeps any prefix the base URL has.
  return new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
}

async function askOnce(endpoint: BureauEndpoint, query: BureauQuery, timeoutMs: number): Promise<BureauReport> {
  const adapter = adapters[endpoint.kind];
  let response: Response;
  let text: string;
  try {
    response = await fetch(endpointUrl(endpoint.url, adapter.path), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(adapter.requestBody(query)),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Reading the body stays under the same timeout: a bureau that stalls mid-body is as down as a silent one.
    text = await response.text();
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    if (name === 'TimeoutError' || name === 'AbortError') throw new AttemptFailed(`no answer within ${timeoutMs} ms`, true);
    throw new AttemptFailed(
      `request failed: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}`,
      true,
    );
  }

  if (response.status >= 500) throw new AttemptFailed(`HTTP ${response.status}`, true);
  // A 4xx means the request itself is wrong for this bureau; asking again will not change that.
  if (response.status !== 200) throw new AttemptFailed(`HTTP ${response.status}: ${text.slice(0, 200)}`, false);

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new AttemptFailed('malformed body: not JSON', true);
  }
  const report = adapter.parse(body);
  if (report === undefined) throw new AttemptFailed('malformed body: not a report', true);
  return report;
}

/**
 * Asks the primary bureau, retrying timeouts, 5xx and malformed bodies up to
 * `attemptsPerBureau` times, then the secondary the same way. A 4xx is not
 * retried at the same bureau, but the other bureau is still asked.
 */
export function createBureauClient({ primary, secondary, timeoutMs = 2000, attemptsPerBureau = 2, retryDelayMs = 100 }: BureauClientOptions): BureauClient {
  if (!Number.isInteger(attemptsPerBureau) || attemptsPerBureau < 1) {
    throw new RangeError(`attemptsPerBureau must be a positive integer, got ${attemptsPerBureau}`);
  }

  return {
    report: async (query) => {
      const attempts: BureauAttempt[] = [];
      for (const endpoint of [primary, secondary]) {
        for (let attempt = 1; attempt <= attemptsPerBureau; attempt++) {
          try {
            return await askOnce(endpoint, query, timeoutMs);
          } catch (error) {
            if (!(error instanceof AttemptFailed)) throw error;
            attempts.push({ bureau: endpoint.kind, error: error.message });
            if (!error.retryable) break;
            if (attempt < attemptsPerBureau && retryDelayMs > 0) await sleep(retryDelayMs);
          }
        }
      }
      throw new BureauUnavailableError(attempts);
    },
  };
}
