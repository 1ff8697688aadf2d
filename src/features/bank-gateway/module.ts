import type { Session } from '../../platform/eventstore/session.ts';
import type { SealedFields } from '../../platform/eventstore/types.ts';
import { defineConsumer } from '../../platform/messaging/consumer.ts';
import { scheduleJob, type Job, type JobOutcome } from '../../platform/messaging/jobs.ts';
import { causedBy, stampEvents, type Cause, type ServiceModule } from '../../platform/service.ts';
import { finalizationStreamId } from './events.ts';
import {
  createMainframeClient,
  mainframeAddress,
  MainframeTimeoutError,
  MainframeUnavailableError,
  type BookingReply,
  type MainframeClient,
} from './mainframe-client.ts';
import { ProtocolError } from './mainframe-protocol.ts';
import { startMainframeSimulator } from './mainframe-simulator.ts';
import { initialSagaState, reactToInput, type SagaAction, type SagaInput, type SagaState } from './saga.ts';
import { createEventCatalog } from '../../platform/eventstore/event-catalog.ts';
import type { LatestEventOf } from '../../platform/eventstore/event-definition.ts';
import {
  ApplicationApproved,
  ApplicationRejected,
  ApplicationWithdrawn,
  InterestRateChanged,
  InterestRateLocked,
  InterestRateLockExpired,
  MortgageApplicationSubmitted,
} from '../application/index.ts';
import { CreditScoreApproved, CreditScoreRejected } from '../scoring/index.ts';
import { DocumentsRejected, DocumentsValidated } from '../documents/index.ts';
import { gatewayEventHistory } from './events.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import type { GatewayConfig } from './config.ts';

/** The Bank Gateway's own events, at their latest versions. */
const known = createEventCatalog(gatewayEventHistory);
type Known = LatestEventOf<typeof gatewayEventHistory>;

const bookQueue = 'bank-gateway.book';
const cancelQueue = 'bank-gateway.cancel';
const actor = 'system:bank-gateway';

type BookingJob = { readonly request: Extract<SagaAction, { type: 'RequestFinalization' }>; readonly cause: Cause };
type CancellationJob = { readonly action: Extract<SagaAction, { type: 'CancelBooking' }>; readonly cause: Cause };

/** The other services' events the saga follows. */
const sagaEvents = [
  MortgageApplicationSubmitted,
  InterestRateLocked,
  InterestRateChanged,
  InterestRateLockExpired,
  CreditScoreApproved,
  CreditScoreRejected,
  DocumentsValidated,
  DocumentsRejected,
  ApplicationWithdrawn,
  ApplicationRejected,
  ApplicationApproved,
] as const;
type SagaEvent = LatestEventOf<typeof sagaEvents>;

/**
 * What an event of another service tells the saga: of the person, only their sealed form
 * (`sealed`, as the event carried it); of a withdrawal or a rejection, the fact, not its free
 * text, which stays sealed in the application's own event.
 */
export function sagaInputOf(event: SagaEvent, sealed: SealedFields = {}): SagaInput {
  switch (event.type) {
    case 'MortgageApplicationSubmitted': {
      const applicant = sealed.applicant;
      if (!applicant) throw new Error('the submission carries no sealed applicant: personal data is never kept in the clear');
      return {
        type: event.type,
        applicationId: event.data.applicationId,
        applicant,
        amountCents: event.data.loan.amountCents,
        termYears: event.data.loan.termYears,
      };
    }
    case 'InterestRateLocked':
      return { type: event.type, annualRate: event.data.annualRate, expiresAt: event.data.expiresAt };
    case 'InterestRateChanged':
      return { type: event.type, annualRate: event.data.annualRate };
    case 'InterestRateLockExpired':
      return { type: event.type, expiresAt: event.data.expiresAt };
    case 'ApplicationWithdrawn':
      return { type: event.type, reason: 'the application was withdrawn' };
    case 'ApplicationRejected':
      return { type: event.type, reason: 'the application was rejected' };
    case 'CreditScoreApproved':
    case 'CreditScoreRejected':
    case 'DocumentsValidated':
    case 'DocumentsRejected':
    case 'ApplicationApproved':
      return { type: event.type };
  }
}

/** What the Bank Gateway needs beside the platform: its settings and the vault that opens the applicant for the booking. */
export type GatewayNeeds = { readonly config: GatewayConfig; readonly personalData: PersonalDataVault };

/**
 * The Bank Gateway: the saga that books the mortgage on the legacy mainframe once
 * credit, documents and the rate lock are in. Its state is a row per application; the
 * mainframe calls are jobs, so they run outside any transaction, survive a restart and
 * are retried with the same idempotency key. It writes only `finalization-<id>` streams.
 */
/** What the service's consumer takes: declared on the bus before anything is published, so that it misses nothing. */
const consumes = {
  name: 'bank-gateway',
  events: sagaEvents,
} as const;

export const bankGatewayModule: ServiceModule<GatewayNeeds> = {
  name: 'bank-gateway',
  consumes,
  async start({ config: gateway, clock, newId, personalData }) {
    const simulator = gateway.mainframeUrl
      ? undefined
      : await startMainframeSimulator({
          latencyMs: gateway.simulatedLatencyMs,
          timeoutRate: gateway.simulatedTimeoutRate,
          refusalRate: gateway.simulatedRefusalRate,
        });
    const address = gateway.mainframeUrl ? mainframeAddress(gateway.mainframeUrl) : { host: simulator!.host, port: simulator!.port };
    const mainframe: MainframeClient = createMainframeClient({ ...address, timeoutMs: gateway.mainframeTimeoutMs });

    /** Feeds one input to an application's saga under its row lock; stores the new state and starts its actions. */
    async function advance(session: Session, applicationId: string, input: SagaInput, cause: Cause, outcome: Known[] = []) {
      const { tx } = session;
      const [row] = await tx.query<{ state: SagaState }>('SELECT state FROM mutuo_gateway_sagas WHERE application_id = $1 FOR UPDATE', [applicationId]);
      const now = clock();
      const step = reactToInput(row?.state ?? initialSagaState, input, now);
      if (step.state.status === 'unknown') return;
      await tx.query(
        `INSERT INTO mutuo_gateway_sagas (application_id, status, state, updated_at) VALUES ($1, $2, $3::jsonb, $4)
         ON CONFLICT (application_id) DO UPDATE SET status = EXCLUDED.status, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at`,
        [applicationId, step.state.status, JSON.stringify(step.state), now.toISOString()],
      );
      const events = [...outcome];
      for (const action of step.actions) {
        if (action.type === 'RequestFinalization') {
          const { idempotencyKey, amountCents, annualRate, termMonths, rateLockExpiresAt } = action;
          events.push({
            type: 'MortgageFinalizationRequested',
            data: { applicationId, idempotencyKey, amountCents, annualRate, termMonths, rateLockExpiresAt, requestedAt: now.toISOString() },
          });
          const payload: BookingJob = { request: action, cause };
          await scheduleJob(session, { queue: bookQueue, key: applicationId, payload, dueAt: now });
        } else {
          const payload: CancellationJob = { action, cause };
          await scheduleJob(session, { queue: cancelQueue, key: applicationId, payload, dueAt: now });
        }
      }
      // The saga's row lock orders every writer of this stream, so `any` cannot interleave.
      if (events.length > 0) await session.append(finalizationStreamId(applicationId), stampEvents(known, events, cause, actor, now, newId), 'any');
    }

    const consumer = defineConsumer({
      ...consumes,
      handle: (event, session) => advance(session, event.partitionKey, sagaInputOf(event, event.sealed), causedBy(event)),
    });

    /** Up to MAINFRAME_ATTEMPTS calls, each bounded by MAINFRAME_TIMEOUT_MS; the same key makes a retry harmless. */
    async function book(job: Job<BookingJob>, outcome: JobOutcome) {
      const { request, cause } = job.payload;
      // The mainframe books under the applicant's tax code: opened now, never kept in the clear.
      const [applicant] = (await personalData.open([request.applicant])) as [{ taxCode: string } | undefined];
      if (!applicant) throw new Error(`the applicant of application ${job.key} was erased before the booking: nothing can be booked`);
      const { applicant: _sealed, ...booking } = request;
      let reply: BookingReply | undefined;
      let lastFailure = '';
      let attempts = 0;
      while (!reply && attempts < gateway.mainframeAttempts) {
        attempts++;
        try {
          reply = await mainframe.book({ ...booking, taxCode: applicant.taxCode, requestedAt: clock() });
        } catch (error) {
          if (!(error instanceof MainframeTimeoutError || error instanceof MainframeUnavailableError || error instanceof ProtocolError)) throw error;
          lastFailure = error instanceof MainframeTimeoutError ? 'TIMEOUT' : 'UNAVAILABLE';
        }
      }
      const at = clock().toISOString();
      const applicationId = job.key;
      const { idempotencyKey } = request;
      if (reply?.outcome === 'booked') {
        const finalized: Known = {
          type: 'MortgageFinalized',
          data: { applicationId, idempotencyKey, contractNumber: reply.contractNumber, attempts, finalizedAt: at },
        };
        await outcome.complete((session) =>
          advance(session, applicationId, { type: 'BookingSucceeded', contractNumber: reply.contractNumber }, cause, [finalized]),
        );
        return;
      }
      const code = reply?.code ?? lastFailure;
      const reason = reply
        ? reply.reason
        : `the mainframe ${lastFailure === 'TIMEOUT' ? 'did not answer in time' : 'could not be reached'} after ${attempts} attempts`;
      const failed: Known = { type: 'MortgageFinalizationFailed', data: { applicationId, idempotencyKey, code, reason, attempts, failedAt: at } };
      await outcome.complete((session) => advance(session, applicationId, { type: 'BookingFailed', code }, cause, [failed]));
    }

    /** A cancellation must happen: it is retried, with backoff, until the mainframe confirms it. */
    async function cancel(job: Job<CancellationJob>, outcome: JobOutcome) {
      const { action, cause } = job.payload;
      const reply = await mainframe.cancel(action.idempotencyKey, action.contractNumber);
      if (reply.outcome === 'refused') throw new Error(`the mainframe refused to cancel ${action.contractNumber}: ${reply.code} ${reply.reason}`);
      const cancelled: Known = {
        type: 'MortgageBookingCancelled',
        data: { applicationId: job.key, contractNumber: action.contractNumber, reason: action.reason, cancelledAt: clock().toISOString() },
      };
      await outcome.complete((session) => advance(session, job.key, { type: 'BookingCancelled' }, cause, [cancelled]));
    }

    return {
      consumers: [consumer],
      jobs: [
        // A booking call can take attempts × timeout: the lease covers it with room to spare.
        { queue: bookQueue, handle: book, concurrency: 16, leaseMs: Math.max(60_000, 2 * gateway.mainframeAttempts * gateway.mainframeTimeoutMs) },
        { queue: cancelQueue, handle: cancel, concurrency: 4 },
      ],
      describe: simulator
        ? `bank gateway: simulated mainframe on tcp://${simulator.host}:${simulator.port}`
        : `bank gateway: mainframe at ${gateway.mainframeUrl}`,
      close: async () => {
        await mainframe.close();
        await simulator?.close();
      },
    };
  },
};
