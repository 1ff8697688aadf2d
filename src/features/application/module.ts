import { defineConsumer } from '../../platform/messaging/consumer.ts';
import { cancelJob, scheduleJob } from '../../platform/messaging/jobs.ts';
import { causedBy, type Cause, type ServiceModule } from '../../platform/service.ts';
import { processCounter } from '../../platform/http/metrics.ts';
import { maxTextLength, type ApplicationCommand, type SubmitApplication } from './decider.ts';
import { rateRoutes, rateTableAfter, rateTableStreamId } from '../rates/index.ts';
import { createErasureService, erasureRoutes, shredKeysQueue } from '../data-subjects/index.ts';
import { applicationRoutes } from './routes.ts';
import { createApplicationService } from './service.ts';
import type { LatestEventOf } from '../../platform/eventstore/event-definition.ts';
import { ApplicationApproved, ApplicationRejected, ApplicationWithdrawn, InterestRateLocked } from './events.ts';
import { CreditScoreRejected } from '../scoring/index.ts';
import { DocumentsRejected } from '../documents/index.ts';
import { MortgageFinalizationFailed, MortgageFinalized } from '../bank-gateway/index.ts';
import { RateTablePublished } from '../rates/index.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import type { ApplicationConfig } from './config.ts';

const rateLockExpiryQueue = 'application.rate-lock-expiry';

type RateLockExpiry = { readonly expiresAt: string; readonly cause: Cause };

/** The other services' outcomes the application turns into its own status. */
const outcomes = [CreditScoreRejected, DocumentsRejected, MortgageFinalized, MortgageFinalizationFailed] as const;
type Outcome = LatestEventOf<typeof outcomes>;

/** A reason built from another service's findings, cut to what a command carries. */
function reason(text: string): string {
  return text.length <= maxTextLength ? text : `${text.slice(0, maxTextLength - 1)}…`;
}

/** The command an outcome of another service means for the application, if any. */
export function reactionTo(event: Outcome): Exclude<ApplicationCommand, SubmitApplication> | undefined {
  switch (event.type) {
    case 'CreditScoreRejected':
      return { type: 'RejectApplication', reason: reason(`credit check: ${event.data.reasons.map((r) => r.message).join('; ')}`) };
    case 'DocumentsRejected':
      // A rejection that is not final waits for corrected documents.
      return event.data.final ? { type: 'RejectApplication', reason: reason(`documents: ${event.data.reasons.join('; ')}`) } : undefined;
    case 'MortgageFinalized':
      return { type: 'ApproveApplication', contractNumber: event.data.contractNumber };
    case 'MortgageFinalizationFailed':
      return { type: 'RejectApplication', reason: reason(`the bank did not book the mortgage: ${event.data.reason}`) };
  }
}

/** What the Application service needs beside the platform: its settings and the vault (erasure, sealing in a reaction's transaction). */
export type ApplicationNeeds = { readonly config: ApplicationConfig; readonly personalData: PersonalDataVault };

/**
 * The Application service: the command API, the application's reactions to the
 * outcomes of scoring, documents and the bank, and the rate lock's deadline. It writes
 * only `application-<id>` streams.
 */
/** What the service's consumer takes: declared on the bus before anything is published, so that it misses nothing. */
const consumes = {
  name: 'application',
  // The outcomes it reacts to, its own events for the rate lock's deadline, and the rate table in force.
  events: [...outcomes, InterestRateLocked, ApplicationApproved, ApplicationRejected, ApplicationWithdrawn, RateTablePublished],
} as const;

export const applicationModule: ServiceModule<ApplicationNeeds> = {
  name: 'application',
  consumes,
  async start({ config, sessions, store, clock, newId, personalData, logger }) {
    // The rate table in force: read at start, then refreshed on each RateTablePublished (here or from another process).
    let rates = rateTableAfter(await store.readStream(rateTableStreamId)).table;
    const applications = createApplicationService({ store, clock, newId, rateTable: () => rates, limits: config });
    const actor = 'system:application';
    const refusals = processCounter('mutuo_reactions_refused_total', "Other services' outcomes the application refused to react to", ['reaction', 'code']);
    const erasure = createErasureService({ sessions, personalData, clock, newId, retentionYears: config.retentionYears });

    const consumer = defineConsumer({
      ...consumes,
      async handle(event, session) {
        const applicationId = event.partitionKey;
        const cause = causedBy(event);
        switch (event.type) {
          case 'RateTablePublished':
            // The rate-table stream is one partition: its tables arrive in order, the last one is in force.
            rates = { publishedAt: event.data.publishedAt, bands: event.data.bands };
            return;
          case 'InterestRateLocked': {
            const payload: RateLockExpiry = { expiresAt: event.data.expiresAt, cause };
            await scheduleJob(session, { queue: rateLockExpiryQueue, key: applicationId, payload, dueAt: new Date(event.data.expiresAt) });
            return;
          }
          case 'ApplicationApproved':
          case 'ApplicationRejected':
          case 'ApplicationWithdrawn':
            await cancelJob(session, rateLockExpiryQueue, applicationId);
            return;
          default: {
            const command = reactionTo(event);
            if (!command) return;
            // A refusal mostly means the application closed first (withdrawn, or rejected for
            // another reason): the outcome no longer changes it, and is told, never dropped unseen.
            const { refused } = await applications.executeInSession(session, applicationId, command, { ...cause, actor });
            if (!refused) return;
            // Once the event is recorded as handled: an attempt rolled back and handled again is told once.
            session.afterCommit(() => {
              refusals.inc({ reaction: event.type, code: refused.code });
              const refusal = {
                eventId: event.eventId,
                eventType: event.type,
                applicationId,
                command: command.type,
                code: refused.code,
                reason: refused.message,
              };
              if (logger) logger.warn(refusal, `application ${applicationId} refused to react to ${event.type} ${event.eventId}: ${refused.message}`);
            });
          }
        }
      },
    });

    return {
      routes: [
        (app) => app.register(applicationRoutes, { applications }),
        (app) => app.register(erasureRoutes, { erasure }),
        (app) => app.register(rateRoutes, { store, clock, newId, published: (table) => (rates = table) }),
      ],
      consumers: [consumer],
      jobs: [
        {
          queue: shredKeysQueue,
          handle: async (_job, outcome) => {
            await personalData.keys.shredDestroyed?.();
            await outcome.complete();
          },
        },
        {
          queue: rateLockExpiryQueue,
          handle: async (job: { key: string; payload: RateLockExpiry }, outcome) => {
            // The lock may have been replaced or the application closed: then the command is refused and nothing is written.
            await outcome.complete((session) =>
              applications
                .executeInSession(
                  session,
                  job.key,
                  { type: 'ExpireRateLock', expiresAt: job.payload.expiresAt },
                  {
                    ...job.payload.cause,
                    actor: 'system:rate-lock-deadline',
                  },
                )
                .then(() => undefined),
            );
          },
        },
      ],
    };
  },
};
