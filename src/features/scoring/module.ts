import { loanToValueBps, publishedRateFor, type RateTable } from '../../domain/rates.ts';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { purposeKey } from '../../privacy/digests.ts';
import type { Sealed } from '../../privacy/sealing.ts';
import { eventsInTransaction } from '../../platform/eventstore/store.ts';
import type { ConsumedEvent } from '../../platform/messaging/consumer.ts';
import { cancelJob, scheduleJob, type Job, type JobOutcome } from '../../platform/messaging/jobs.ts';
import { causedBy, stampEvents, type Cause, type ServiceModule } from '../../platform/service.ts';
import { BureauUnavailableError, createBureauClient, type BureauQuery } from './bureau-client.ts';
import { startBureauSimulator, type BureauSimulator } from './bureau-simulator.ts';
import { creditCheckStreamId } from './events.ts';
import { creditInputsHash, decideCredit, defaultCreditPolicy, type CreditInputs, type CreditPolicy } from './policy.ts';
import { createEventCatalog } from '../../platform/eventstore/event-catalog.ts';
import type { LatestEventOf } from '../../platform/eventstore/event-definition.ts';
import { applicationEventHistory } from '../application/index.ts';
import { scoringEventHistory } from './events.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import type { ScoringConfig } from './config.ts';

/** What the Scoring service reads: its own events and those of the services it listens to, at their latest versions. */
const knownHistory = [...applicationEventHistory, ...scoringEventHistory] as const;
const known = createEventCatalog(knownHistory);
type Known = LatestEventOf<typeof knownHistory>;
type KnownOf<T extends Known['type']> = Extract<Known, { type: T }>;

const checkQueue = 'scoring.credit-check';
const actor = 'system:scoring';

/**
 * A credit check to make: the facts of the application, and the applicant as the
 * submission carried them, sealed (the job's payload is stored, and must not outlive their
 * erasure in the clear); opened when the check runs.
 */
type CreditCheckJob = { readonly applicant: Sealed; readonly inputs: Omit<CreditInputs, 'taxCode'>; readonly cause: Cause };

type Applicant = KnownOf<'MortgageApplicationSubmitted'>['data']['applicant'];

/** The facts a credit check reads from a submission; the rate is the one `rateTable` (the table published now) gives this loan. */
export function creditCheckOf(event: KnownOf<'MortgageApplicationSubmitted'>['data'], rateTable: RateTable): CreditCheckJob['inputs'] {
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

/**
 * The Scoring service: on each submission, a credit check against a bureau (a job, so
 * the HTTP call runs outside any transaction and survives a restart); on approval, a
 * credit hold; when the application closes without a mortgage, the hold's release.
 * It writes only `credit-check-<id>` streams.
 */
/**
 * What the Scoring service needs beside the platform: its settings, the secret its inputs
 * hash is keyed with, the vault that opens the applicant, and the rate table published now,
 * read from the database with the handler's transaction (the Rates feature's read model:
 * this service may run in a process of its own).
 */
export type ScoringNeeds = {
  readonly config: ScoringConfig;
  readonly digestSecret: string;
  readonly personalData: PersonalDataVault;
  readonly publishedRateTable: (db: SqlQueryable) => Promise<RateTable>;
};

export const scoringModule: ServiceModule<ScoringNeeds> = {
  name: 'scoring',
  async start({ config: scoring, digestSecret, clock, newId, personalData, publishedRateTable }) {
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

    async function handle(consumed: ConsumedEvent, tx: SqlQueryable) {
      const event = { type: consumed.type, data: consumed.data } as Known;
      const applicationId = consumed.partitionKey;
      const cause = causedBy(consumed);
      if (event.type === 'MortgageApplicationSubmitted') {
        const applicant = consumed.sealed?.applicant;
        if (!applicant) throw new Error('the submission carries no sealed applicant: personal data is never kept in the clear');
        const payload: CreditCheckJob = { applicant, inputs: creditCheckOf(event.data, await publishedRateTable(tx)), cause };
        await scheduleJob(tx, { queue: checkQueue, key: applicationId, payload, dueAt: clock() });
        return;
      }
      // Closed without a mortgage: a check still running has nothing left to decide, and a hold is released.
      await cancelJob(tx, checkQueue, applicationId);
      const events = eventsInTransaction(tx);
      const stream = creditCheckStreamId(applicationId);
      const history = await events.readStream(stream);
      const placed = history.find((stored) => stored.type === 'CreditHoldPlaced');
      if (!placed || history.some((stored) => stored.type === 'CreditHoldReleased')) return;
      const hold = known.decode(placed.type, placed.schemaVersion, placed.data) as KnownOf<'CreditHoldPlaced'>;
      const reason = event.type === 'ApplicationWithdrawn' ? 'the application was withdrawn' : 'the application was rejected';
      const now = clock();
      const released: Known = {
        type: 'CreditHoldReleased',
        data: { applicationId, holdId: hold.data.holdId, amountCents: hold.data.amountCents, reason, releasedAt: now.toISOString() },
      };
      await events.append(stream, stampEvents(known, [released], cause, actor, now, newId), history.length);
    }

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
      await outcome.complete(async (tx) => {
        await eventsInTransaction(tx).append(creditCheckStreamId(job.key), stampEvents(known, decisionEvents, cause, actor, now, newId), 'no_stream');
      });
    }

    return {
      consumers: [
        {
          name: 'scoring',
          eventTypes: ['MortgageApplicationSubmitted', 'ApplicationRejected', 'ApplicationWithdrawn'],
          decoder: known,
          handle,
        },
      ],
      jobs: [{ queue: checkQueue, handle: check, concurrency: 16 }],
      describe: `scoring: bureaus at ${primary.url} (${primary.kind}) and ${secondary.url} (${secondary.kind})`,
      close: async () => {
        await Promise.all(simulators.map((simulator) => simulator.close()));
      },
    };
  },
};
