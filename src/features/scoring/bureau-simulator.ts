import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { BureauKind, RiskBand } from './policy.ts';
import { sandboxAnswerFor, sandboxScoreProfile, type SandboxAnswer, type SandboxScoreProfile } from './sandbox.ts';

export type BureauSimulatorOptions = {
  readonly kind: BureauKind;
  readonly host?: string;
  /** 0 picks any free port. */
  readonly port?: number;
  /** Added before every answer. */
  readonly latencyMs?: number;
  /** Share of requests (0..1) answered with 503; sandbox names are never affected. */
  readonly errorRate?: number;
  /** Source of randomness for `errorRate`, injectable for deterministic tests. */
  readonly random?: () => number;
};

export type BureauSimulator = {
  readonly kind: BureauKind;
  /** Base URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly port: number;
  /** Requests received so far, whatever their answer. */
  readonly requests: () => number;
  readonly close: () => Promise<void>;
};

/** How long a `no-answer` request is held: longer than any sensible client timeout. */
const NO_ANSWER_HOLD_MS = 30_000;

type ScoreRange = readonly [min: number, max: number];

function scoreIn([min, max]: ScoreRange, profile: SandboxScoreProfile): number {
  return min + Math.floor((profile.positionPermille * (max - min + 1)) / 1000);
}

const CRIF_SCORE_RANGES: Readonly<Record<RiskBand, ScoreRange>> = {
  A: [720, 850],
  B: [650, 719],
  C: [580, 649],
  D: [500, 579],
  E: [300, 499],
};

/** Experian grades 1 (best) .. 5, by the risk band they stand for. */
const EXPERIAN_GRADES: Readonly<Record<RiskBand, { grade: number; range: ScoreRange }>> = {
  A: { grade: 1, range: [800, 999] },
  B: { grade: 2, range: [700, 799] },
  C: { grade: 3, range: [600, 699] },
  D: { grade: 4, range: [450, 599] },
  E: { grade: 5, range: [0, 449] },
};

const NonEmpty = Type.String({ minLength: 1, maxLength: 200 });

const CrifReportRequest = Type.Object({ fiscalCode: NonEmpty, firstName: NonEmpty, lastName: NonEmpty });

const ExperianScoreRequest = Type.Object({
  consumer: Type.Object({ taxId: NonEmpty, surname: NonEmpty, givenName: NonEmpty }),
});

/** Answers of one bureau's API; the two bureaus deliberately differ in paths, fields and error shapes. */
type BureauApi = {
  readonly report: (profile: SandboxScoreProfile) => object;
  readonly error: (statusCode: number, message: string) => object;
};

const crifApi: BureauApi = {
  report: (profile) => ({
    reportId: `CRIF-${randomUUID()}`,
    score: scoreIn(CRIF_SCORE_RANGES[profile.band], profile),
    riskClass: profile.band,
    model: 'CRIF-SIM-2.3',
  }),
  error: (statusCode, message) => ({ error: statusCode === 503 ? 'SERVICE_UNAVAILABLE' : 'BAD_REQUEST', detail: message }),
};

const experianApi: BureauApi = {
  report: (profile) => {
    const { grade, range } = EXPERIAN_GRADES[profile.band];
    return { id: randomUUID(), riskScore: scoreIn(range, profile), grade, scorecard: 'EXP-SIM-7' };
  },
  error: (statusCode, message) => ({ fault: { code: statusCode === 503 ? 'TEMPORARILY_UNAVAILABLE' : 'INVALID_REQUEST', message } }),
};

/**
 * Starts a simulated credit bureau over real HTTP on 127.0.0.1. Sandbox last
 * names (see sandbox.ts) decide the answer; anyone else gets a normal report,
 * or a 503 with probability `errorRate`.
 */
export async function startBureauSimulator(options: BureauSimulatorOptions): Promise<BureauSimulator> {
  const { kind, host = '127.0.0.1', port = 0, latencyMs = 0, errorRate = 0, random = Math.random } = options;
  if (!(errorRate >= 0 && errorRate <= 1)) throw new RangeError(`errorRate must be within 0..1, got ${errorRate}`);
  const api = kind === 'crif' ? crifApi : experianApi;

  // forceCloseConnections destroys the sockets of held requests, so close() does not wait on them.
  const app = Fastify({ logger: false, forceCloseConnections: true }).withTypeProvider<TypeBoxTypeProvider>();

  let requestCount = 0;
  const pendingWaits = new Set<() => void>();

  /** Waits, but gives up early when the server closes or the client goes away. */
  const wait = (ms: number, reply: FastifyReply): Promise<void> =>
    new Promise((resolve) => {
      const release = (): void => {
        clearTimeout(timer);
        reply.raw.off('close', release);
        pendingWaits.delete(release);
        resolve();
      };
      const timer = setTimeout(release, ms);
      reply.raw.once('close', release);
      pendingWaits.add(release);
    });

  app.addHook('onRequest', async () => {
    requestCount += 1;
  });
  app.addHook('preClose', async () => {
    for (const release of [...pendingWaits]) release();
  });
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    return reply.code(statusCode).send(api.error(statusCode, error.message));
  });

  const answer = async (reply: FastifyReply, taxCode: string, lastName: string): Promise<FastifyReply> => {
    if (latencyMs > 0) await wait(latencyMs, reply);
    const sandboxAnswer: SandboxAnswer | undefined = sandboxAnswerFor(kind, lastName);
    const outcome: SandboxAnswer = sandboxAnswer ?? (random() < errorRate ? 'unavailable' : 'score');
    switch (outcome) {
      case 'no-answer':
        await wait(NO_ANSWER_HOLD_MS, reply);
        return reply.code(503).send(api.error(503, 'gave up holding the request'));
      case 'unavailable':
        return reply.code(503).send(api.error(503, 'the bureau is temporarily unavailable'));
      case 'score':
      case 'band-e':
        return reply.code(200).send(api.report(sandboxScoreProfile(taxCode, outcome)));
    }
  };

  if (kind === 'crif') {
    app.post('/v1/credit-reports', { schema: { body: CrifReportRequest } }, (request, reply) => answer(reply, request.body.fiscalCode, request.body.lastName));
  } else {
    app.post('/consumer/score', { schema: { body: ExperianScoreRequest } }, (request, reply) =>
      answer(reply, request.body.consumer.taxId, request.body.consumer.surname),
    );
  }

  await app.listen({ host, port });
  return simulatorHandle(kind, host, app, () => requestCount);
}

function simulatorHandle(kind: BureauKind, host: string, app: FastifyInstance, requests: () => number): BureauSimulator {
  const { port } = app.server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { kind, url: `http://${urlHost}:${port}`, port, requests, close: () => app.close() };
}
