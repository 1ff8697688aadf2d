import type { ConsumedEvent } from '../../platform/messaging/consumer.ts';
import { cancelJob, scheduleJob } from '../../platform/messaging/jobs.ts';
import { platformEventCatalog, type PlatformEvent } from '../../app/catalog.ts';
import { causedBy, type Cause, type ServiceModule } from '../../platform/service.ts';
import { maxTextLength, type ApplicationCommand, type SubmitApplication } from './decider.ts';
import { rateTableStreamId } from '../rates/events.ts';
import { rateTableAfter } from '../rates/rate-table.ts';
import { rateRoutes } from '../rates/routes.ts';
import { createErasureService, erasureRoutes, shredKeysQueue } from '../data-subjects/erasure.ts';
import { applicationRoutes } from './routes.ts';
import { createApplicationService } from './service.ts';

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
export function reactionTo(event: PlatformEvent): Exclude<ApplicationCommand, SubmitApplication> | undefined {
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
export const applicationModule: ServiceModule = {
  name: 'application',
  async start({ config, client, store, clock, newId, personalData, afterCommit }) {
    // The rate table in force: read at start, then refreshed on each RateTablePublished (here or from another process).
    let rates = rateTableAfter(await store.readStream(rateTableStreamId)).table;
    const applications = createApplicationService({ store, clock, newId, rateTable: () => rates, limits: config.applications, personalData });
    const actor = 'system:application';
    const erasure = createErasureService({ client, personalData, clock, newId, retentionYears: config.privacy.retentionYears, afterCommit });

    async function handle(consumed: ConsumedEvent, tx: Parameters<typeof applications.executeInTransaction>[0]) {
      const event = { type: consumed.type, data: consumed.data } as PlatformEvent;
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
          // A refusal means the application closed first (withdrawn, or rejected for
          // another reason): the outcome no longer changes it.
          if (command) await applications.executeInTransaction(tx, applicationId, command, { ...cause, actor });
        }
      }
    }

    return {
      routes: [
        (app) => app.register(applicationRoutes, { applications }),
        (app) => app.register(erasureRoutes, { erasure }),
        (app) => app.register(rateRoutes, { store, clock, newId, published: (table) => (rates = table) }),
      ],
      consumers: [{ name: 'application', eventTypes: [...reactions, ...ownEvents, 'RateTablePublished'], decoder: platformEventCatalog, handle }],
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
                .executeInTransaction(tx, job.key, { type: 'ExpireRateLock', expiresAt: job.payload.expiresAt }, {
                  ...job.payload.cause,
                  actor: 'system:rate-lock-deadline',
                })
                .then(() => undefined),
            );
          },
        },
      ],
    };
  },
};
