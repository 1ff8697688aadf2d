import type { ConsumedEvent } from '../../platform/messaging/consumer.ts';
import { cancelJob, scheduleJob } from '../../platform/messaging/jobs.ts';
import { causedBy, type Cause, type ServiceModule } from '../../platform/service.ts';
import { processCounter } from '../../platform/http/metrics.ts';
import { maxTextLength, type ApplicationCommand, type SubmitApplication } from './decider.ts';
import { rateRoutes, rateTableAfter, rateTableStreamId } from '../rates/index.ts';
import { createErasureService, erasureRoutes, shredKeysQueue } from '../data-subjects/index.ts';
import { applicationRoutes } from './routes.ts';
import { createApplicationService } from './service.ts';
import { createEventCatalog } from '../../platform/eventstore/event-catalog.ts';
import type { LatestEventOf } from '../../platform/eventstore/event-definition.ts';
import { applicationEventHistory } from './events.ts';
import { scoringEventHistory } from '../scoring/index.ts';
import { documentsEventHistory } from '../documents/index.ts';
import { gatewayEventHistory } from '../bank-gateway/index.ts';
import { rateEventHistory } from '../rates/index.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import type { ApplicationConfig } from './config.ts';

/** What the Application service reads: its own events and those of the services it listens to, at their latest versions. */
const knownHistory = [...applicationEventHistory, ...scoringEventHistory, ...documentsEventHistory, ...gatewayEventHistory, ...rateEventHistory] as const;
const known = createEventCatalog(knownHistory);
type Known = LatestEventOf<typeof knownHistory>;

const rateLockExpiryQueue = 'application.rate-lock-expiry';

type RateLockExpiry = { readonly expiresAt: string; readonly cause: Cause };

/** The other services' outcomes the application turns into its own status. */
const reactions = ['CreditScoreRejected', 'DocumentsRejected', 'MortgageFinalized', 'MortgageFinalizationFailed'] as const;
/** Its own events, for the rate lock's deadline. */
const ownEvents = ['InterestRateLocked', 'ApplicationApproved', 'ApplicationRejected', 'ApplicationWithdrawn'] as const;

/** A reason built from another service's findings, cut to what a command carries. */
function reason(text: string): string {
  return text.length <= maxTextLength ? text : `${text.slice(0, maxTextLength - 1)}…`;
}

/** The command an outcome of another service means for the application, if any. */
export function reactionTo(event: Known): Exclude<ApplicationCommand, SubmitApplication> | undefined {
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
    default:
      return undefined;
  }
}

/**
 * The Application service: the command API, the application's reactions to the
 * outcomes of scoring, documents and the bank, and the rate lock's deadline. It writes
 * only `application-<id>` streams.
 */
/** What the Application service needs beside the platform: its settings and the vault (erasure, sealing in a reaction's transaction). */
export type ApplicationNeeds = { readonly config: ApplicationConfig; readonly personalData: PersonalDataVault };

export const applicationModule: ServiceModule<ApplicationNeeds> = {
  name: 'application',
  async start({ config, client, store, clock, newId, personalData, afterCommit, logger }) {
    // The rate table in force: read at start, then refreshed on each RateTablePublished (here or from another process).
    let rates = rateTableAfter(await store.readStream(rateTableStreamId)).table;
    const applications = createApplicationService({ store, clock, newId, rateTable: () => rates, limits: config, personalData });
    const actor = 'system:application';
    const refusals = processCounter('mutuo_reactions_refused_total', "Other services' outcomes the application refused to react to", ['reaction', 'code']);
    const erasure = createErasureService({ client, personalData, clock, newId, retentionYears: config.retentionYears, afterCommit });

    async function handle(consumed: ConsumedEvent, tx: Parameters<typeof applications.executeInTransaction>[0]) {
      const event = { type: consumed.type, data: consumed.data } as Known;
      const applicationId = consumed.partitionKey;
      const cause = causedBy(consumed);
      switch (event.type) {
        case 'RateTablePublished':
          // The rate-table stream is one partition: its tables arrive in order, the last one is in force.
          rates = { publishedAt: event.data.publishedAt, bands: event.data.bands };
          return;
        case 'InterestRateLocked': {
          const payload: RateLockExpiry = { expiresAt: event.data.expiresAt, cause };
          await scheduleJob(tx, { queue: rateLockExpiryQueue, key: applicationId, payload, dueAt: new Date(event.data.expiresAt) });
          return;
        }
        case 'ApplicationApproved':
        case 'ApplicationRejected':
        case 'ApplicationWithdrawn':
          await cancelJob(tx, rateLockExpiryQueue, applicationId);
          return;
        default: {
          const command = reactionTo(event);
          if (!command) return;
          // A refusal mostly means the application closed first (withdrawn, or rejected for
          // another reason): the outcome no longer changes it, and is told, never dropped unseen.
          const { refused } = await applications.executeInTransaction(tx, applicationId, command, { ...cause, actor });
          if (!refused) return;
          refusals.inc({ reaction: event.type, code: refused.code });
          if (logger) {
            const refusal = {
              eventId: consumed.eventId,
              eventType: event.type,
              applicationId,
              command: command.type,
              code: refused.code,
              reason: refused.message,
            };
            logger.warn(refusal, `application ${applicationId} refused to react to ${event.type} ${consumed.eventId}: ${refused.message}`);
          }
        }
      }
    }

    return {
      routes: [
        (app) => app.register(applicationRoutes, { applications }),
        (app) => app.register(erasureRoutes, { erasure }),
        (app) => app.register(rateRoutes, { store, clock, newId, published: (table) => (rates = table) }),
      ],
      consumers: [{ name: 'application', eventTypes: [...reactions, ...ownEvents, 'RateTablePublished'], decoder: known, handle }],
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
            await outcome.complete((tx) =>
              applications
                .executeInTransaction(
                  tx,
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
