import type { Static } from '@sinclair/typebox';
import { loanToValueBps, publishedRateFor, type RateTable } from '../../domain/rates.ts';
import { purposeKey } from '../../privacy/digests.ts';
import type { Sealed } from '../../privacy/sealing.ts';
import { defineConsumer } from '../../platform/messaging/consumer.ts';
import type { Session } from '../../platform/eventstore/session.ts';
import { rateTableAfter, rateTableStreamId } from '../rates/index.ts';
import { cancelJob, scheduleJob, type Job, type JobOutcome } from '../../platform/messaging/jobs.ts';
import { causedBy, stampEvents, type Cause, type ServiceModule } from '../../platform/service.ts';
import { BureauUnavailableError, createBureauClient, type BureauQuery } from './bureau-client.ts';
import { startBureauSimulator, type BureauSimulator } from './bureau-simulator.ts';
import { creditCheckStreamId } from './events.ts';
import { creditInputsHash, decideCredit, defaultCreditPolicy, type CreditInputs, type CreditPolicy } from './policy.ts';
import { createEventCatalog } from '../../platform/eventstore/event-catalog.ts';
import type { LatestEventOf } from '../../platform/eventstore/event-definition.ts';
import { ApplicationRejected, ApplicationWithdrawn, MortgageApplicationSubmitted } from '../application/index.ts';
import { scoringEventHistory } from './events.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import type { ScoringConfig } from './config.ts';

/** The Scoring service's own events, at their latest versions. */
const known = createEventCatalog(scoringEventHistory);
type Known = LatestEventOf<typeof scoringEventHistory>;
type Submission = Static<typeof MortgageApplicationSubmitted.schema>;

const checkQueue = 'scoring.credit-check';

/**
 * The rate table in force, read from its stream in the handler's session: the log, not a
 * read model that may lag behind it, and the same in a Scoring process of its own.
 */
async function publishedRateTable(session: Session): Promise<RateTable> {
  return rateTableAfter(await session.readStream(rateTableStreamId)).table;
}
const actor = 'system:scoring';

/**
 * A credit check to make: the facts of the application, and the applicant as the
 * submission carried them, sealed (the job's payload is stored, and must not outlive their
 * erasure in the clear); opened when the check runs.
 */
type CreditCheckJob = { readonly applicant: Sealed; readonly inputs: Omit<CreditInputs, 'taxCode'>; readonly cause: Cause };

type Applicant = Submission['applicant'];

/** The facts a credit check reads from a submission; the rate is the one `rateTable` (the table published now) gives this loan. */
export function creditCheckOf(event: Submission, rateTable: RateTable): CreditCheckJob['inputs'] {
  const { income, property, loan } = event;
  const ltvBps = loanToValueBps(loan.amountCents, property.valueCents);
  const annualRate = publishedRateFor(rateTable, { rateType: loan.rateType, termYears: loan.termYears, ltvBps }) ?? '0';
  return {
    applicationId: event.applicationId,
    monthlyNetCents: income.monthlyNetCents,
    monthlyDebtsCents: income.monthlyDebtsCents,
    employment: income.employment,
    loanAmountCents: loan.amountCents,
    termYears: loan.termYears,
    annualRate,
    propertyValueCents: property.valueCents,
    publicGuarantee: loan.publicGuarantee,
  };
}

/** What the Scoring service needs beside the platform: its settings, the secret its inputs hash is keyed with, and the vault that opens the applicant. */
export type ScoringNeeds = { readonly config: ScoringConfig; readonly digestSecret: string; readonly personalData: PersonalDataVault };

/**
 * The Scoring service: on each submission, a credit check against a bureau (a job, so
 * the HTTP call runs outside any transaction and survives a restart); on approval, a
 * credit hold; when the application closes without a mortgage, the hold's release.
 * It writes only `credit-check-<id>` streams.
 */
/** What the service's consumer takes: declared on the bus before anything is published, so that it misses nothing. */
const consumes = {
  name: 'scoring',
  events: [MortgageApplicationSubmitted, ApplicationRejected, ApplicationWithdrawn],
} as const;

export const scoringModule: ServiceModule<ScoringNeeds> = {
  name: 'scoring',
  consumes,
  async start({ config: scoring, digestSecret, clock, newId, personalData }) {
    const inputsHashKey = purposeKey(digestSecret, 'credit-inputs');
    const simulators: BureauSimulator[] = [];
    const endpoint = async (kind: 'crif' | 'experian', url: string | undefined) => {
      if (url) return { kind, url };
      const simulator = await startBureauSimulator({ kind, latencyMs: scoring.simulatedLatencyMs, errorRate: scoring.simulatedErrorRate });
      simulators.push(simulator);
      return { kind, url: simulator.url };
    };
    const primary = await endpoint('crif', scoring.crifUrl);
    const secondary = await endpoint('experian', scoring.experianUrl);
    const bureaus = createBureauClient({ primary, secondary, timeoutMs: scoring.bureauTimeoutMs, attemptsPerBureau: scoring.bureauAttempts });
    const policy: CreditPolicy = { ...defaultCreditPolicy, maxDtiBps: scoring.maxDebtToIncomePercent * 100 };

    const consumer = defineConsumer({
      ...consumes,
      async handle(event, session) {
        const applicationId = event.partitionKey;
        const cause = causedBy(event);
        if (event.type === 'MortgageApplicationSubmitted') {
          const applicant = event.sealed?.applicant;
          if (!applicant) throw new Error('the submission carries no sealed applicant: personal data is never kept in the clear');
          const payload: CreditCheckJob = { applicant, inputs: creditCheckOf(event.data, await publishedRateTable(session)), cause };
          await scheduleJob(session, { queue: checkQueue, key: applicationId, payload, dueAt: clock() });
          return;
        }
        // Closed without a mortgage: a check still running has nothing left to decide, and a hold is released.
        await cancelJob(session, checkQueue, applicationId);
        const stream = creditCheckStreamId(applicationId);
        const history = (await session.readStream(stream)).map((stored) => known.decode(stored.type, stored.schemaVersion, stored.data));
        const hold = history.find((own) => own.type === 'CreditHoldPlaced');
        if (!hold || history.some((own) => own.type === 'CreditHoldReleased')) return;
        const reason = event.type === 'ApplicationWithdrawn' ? 'the application was withdrawn' : 'the application was rejected';
        const now = clock();
        const released: Known = {
          type: 'CreditHoldReleased',
          data: { applicationId, holdId: hold.data.holdId, amountCents: hold.data.amountCents, reason, releasedAt: now.toISOString() },
        };
        await session.append(stream, stampEvents(known, [released], cause, actor, now, newId), history.length);
      },
    });

    async function check(job: Job<CreditCheckJob>, outcome: JobOutcome) {
      const { cause } = job.payload;
      const [applicant] = (await personalData.open([job.payload.applicant])) as [Applicant | undefined];
      // Erased meanwhile: nobody is left to check (an erasure waits for the application to close).
      if (!applicant) return outcome.complete();
      const inputs: CreditInputs = { ...job.payload.inputs, taxCode: applicant.taxCode };
      const query: BureauQuery = { taxCode: applicant.taxCode, firstName: applicant.firstName, lastName: applicant.lastName };
      const inputsHash = creditInputsHash(inputs, inputsHashKey);
      const decisionEvents: Known[] = [];
      try {
        const report = await bureaus.report(query);
        const decision = decideCredit(inputs, report, policy);
        const decidedAt = clock().toISOString();
        const data = {
          applicationId: inputs.applicationId,
          bureau: report.bureau,
          bureauModelVersion: report.modelVersion,
          bureauReportId: report.reportId,
          score: report.score,
          band: report.band,
          policyVersion: policy.modelVersion,
          inputsHash,
          debtToIncomeBps: decision.dtiBps,
          loanToValueBps: decision.ltvBps,
          installmentCents: decision.installmentCents,
          reasons: [...decision.reasons],
          decidedAt,
        };
        if (decision.outcome === 'approved') {
          decisionEvents.push(
            { type: 'CreditScoreApproved', data },
            {
              type: 'CreditHoldPlaced',
              data: { applicationId: inputs.applicationId, holdId: newId(), amountCents: inputs.loanAmountCents, placedAt: decidedAt },
            },
          );
        } else {
          decisionEvents.push({ type: 'CreditScoreRejected', data });
        }
      } catch (error) {
        if (!(error instanceof BureauUnavailableError)) throw error;
        // Silent bureaus: the job runs again with backoff until the deadline, then the check is rejected.
        if (clock().getTime() - job.scheduledAt.getTime() < scoring.deadlineMs) throw error;
        decisionEvents.push({
          type: 'CreditScoreRejected',
          data: {
            applicationId: inputs.applicationId,
            bureau: null,
            bureauModelVersion: null,
            bureauReportId: null,
            score: null,
            band: null,
            policyVersion: policy.modelVersion,
            inputsHash,
            debtToIncomeBps: null,
            loanToValueBps: null,
            installmentCents: null,
            reasons: [{ code: 'BUREAU_UNAVAILABLE', message: `no credit bureau answered within ${Math.round(scoring.deadlineMs / 1000)} s` }],
            decidedAt: clock().toISOString(),
          },
        });
      }
      const now = clock();
      await outcome.complete(async (session) => {
        await session.append(creditCheckStreamId(job.key), stampEvents(known, decisionEvents, cause, actor, now, newId), 'no_stream');
      });
    }

    return {
      consumers: [consumer],
      jobs: [{ queue: checkQueue, handle: check, concurrency: 16 }],
      describe: `scoring: bureaus at ${primary.url} (${primary.kind}) and ${secondary.url} (${secondary.kind})`,
      close: async () => {
        await Promise.all(simulators.map((simulator) => simulator.close()));
      },
    };
  },
};
