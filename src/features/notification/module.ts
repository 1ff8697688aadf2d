import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { checkOwner } from '../../platform/http/access.ts';
import { invalidInput } from '../../domain/errors.ts';
import type { SqlClient } from '../../platform/sql/sql-client.ts';
import type { Sealed } from '../../privacy/sealing.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import type { SealedFields } from '../../platform/eventstore/types.ts';
import { erasedText } from '../../privacy/erased.ts';
import { defineConsumer } from '../../platform/messaging/consumer.ts';
import { scheduleJob, type Job, type JobOutcome } from '../../platform/messaging/jobs.ts';
import { causedBy, stampEvents, type Cause, type ServiceModule } from '../../platform/service.ts';
import {
  ApplicationApproved,
  ApplicationRejected,
  ApplicationWithdrawn,
  applicationSubmitter,
  InterestRateLockExpired,
  MortgageApplicationSubmitted,
} from '../application/index.ts';
import { notificationStreamId } from './events.ts';
import { createRedisLedger, createSqlLedger, type NotificationLedger } from './ledger.ts';
import { redisErrors } from '../../platform/redis-errors.ts';
import { createMailer, emailMessageId } from './mailer.ts';
import { startSmtpSink, type SmtpSink } from './smtp-sink.ts';
import { renderEmail, type EmailFacts, type TemplateName } from './templates.ts';
import { createEventCatalog } from '../../platform/eventstore/event-catalog.ts';
import type { LatestEventOf } from '../../platform/eventstore/event-definition.ts';
import { DocumentsRejected } from '../documents/index.ts';
import { notificationEventHistory } from './events.ts';
import type { NotificationConfig } from './config.ts';

/** The Notification service's own events, at their latest versions. */
const known = createEventCatalog(notificationEventHistory);
type Known = LatestEventOf<typeof notificationEventHistory>;

/** The steps the applicant is told of. */
const told = [
  MortgageApplicationSubmitted,
  DocumentsRejected,
  InterestRateLockExpired,
  ApplicationApproved,
  ApplicationRejected,
  ApplicationWithdrawn,
] as const;
type Told = LatestEventOf<typeof told>;

const emailQueue = 'notification.email';
const channel = 'email';
const actor = 'system:notification';

/** What a message quotes of its event: a reason is free text about the person, kept sealed as the event carried it. */
type QuotedFacts = Pick<EmailFacts, 'contractNumber' | 'reasons'> & { readonly reason?: Sealed | null };

type EmailJob = {
  readonly applicationId: string;
  readonly template: TemplateName;
  readonly facts: QuotedFacts;
  readonly eventId: string;
  readonly eventType: string;
  readonly cause: Cause;
};

/** The message an event calls for, if any, with the facts it quotes (a reason as the event's sealed form). */
export function emailFor(event: Told, sealed: SealedFields = {}): { template: TemplateName; facts: QuotedFacts } | undefined {
  const reason = () => sealed.reason ?? null;
  switch (event.type) {
    case 'MortgageApplicationSubmitted':
      return { template: 'application-received', facts: {} };
    case 'DocumentsRejected':
      // A final rejection rejects the application, whose own message says so.
      return event.data.final ? undefined : { template: 'documents-rejected', facts: { reasons: event.data.reasons } };
    case 'InterestRateLockExpired':
      return { template: 'rate-lock-expired', facts: {} };
    case 'ApplicationApproved':
      return { template: 'application-approved', facts: { contractNumber: event.data.contractNumber } };
    case 'ApplicationRejected':
      return { template: 'application-rejected', facts: { reason: reason() } };
    case 'ApplicationWithdrawn':
      return { template: 'application-withdrawn', facts: { reason: reason() } };
  }
}

/** Whom to write to: the applicant as the submission carried them, sealed, and the facts the messages quote. */
type Recipient = { applicant: Sealed; amount_cents: string | number; term_years: number };

type Applicant = Extract<Told, { type: 'MortgageApplicationSubmitted' }>['data']['applicant'];

/** What the Notification service needs beside the platform: its settings and the vault that opens the recipient. */
export type NotificationNeeds = { readonly config: NotificationConfig; readonly personalData: PersonalDataVault };

/**
 * The Notification service: tells the applicant, by email, of each step that concerns
 * them, once per event and channel. The consumer's inbox makes a redelivered event
 * schedule nothing twice; the ledger (Redis or the database) makes a send that is
 * retried after a crash or a timeout send nothing twice. It writes only
 * `notification-<id>` streams.
 */
/** What the service's consumer takes: declared on the bus before anything is published, so that it misses nothing. */
const consumes = {
  name: 'notification',
  events: told,
} as const;

export const notificationModule: ServiceModule<NotificationNeeds> = {
  name: 'notification',
  consumes,
  async start({ config, client, clock, newId, personalData, logger }) {
    const sink: SmtpSink | undefined = config.smtpUrl ? undefined : await startSmtpSink();
    const smtpUrl = config.smtpUrl ?? sink!.url;
    const mailer = createMailer(smtpUrl, config.from);
    const ledger: NotificationLedger = config.redisUrl
      ? await createRedisLedger(config.redisUrl, { errors: redisErrors(logger, 'notification-ledger') })
      : createSqlLedger(client);

    const consumer = defineConsumer({
      ...consumes,
      async handle(event, session) {
        const applicationId = event.partitionKey;
        if (event.type === 'MortgageApplicationSubmitted') {
          // The applicant is kept as the event carried them, sealed: their erasure leaves this row unreadable, with nothing to scrub.
          const applicant = event.sealed?.applicant;
          if (!applicant) throw new Error('the submission carries no sealed applicant: personal data is never kept in the clear');
          await session.tx.query(
            `INSERT INTO mutuo_notification_recipients (application_id, applicant, amount_cents, term_years)
             VALUES ($1, $2::jsonb, $3, $4) ON CONFLICT (application_id) DO NOTHING`,
            [applicationId, JSON.stringify(applicant), event.data.loan.amountCents, event.data.loan.termYears],
          );
        }
        const email = emailFor(event, event.sealed);
        if (!email) return;
        const payload: EmailJob = { applicationId, ...email, eventId: event.eventId, eventType: event.type, cause: causedBy(event) };
        await scheduleJob(session, { queue: emailQueue, key: `${event.eventId}:${channel}`, payload, dueAt: clock() });
      },
    });

    async function send(job: Job<EmailJob>, outcome: JobOutcome) {
      const { applicationId, template, facts, eventId, eventType, cause } = job.payload;
      const [recipient] = await client.query<Recipient>(
        'SELECT applicant, amount_cents, term_years FROM mutuo_notification_recipients WHERE application_id = $1',
        [applicationId],
      );
      if (!recipient) throw new Error(`no recipient known for application ${applicationId} yet`);
      const [applicant, reason] = (await personalData.open([recipient.applicant, facts.reason ?? undefined])) as [Applicant | undefined, string | undefined];
      // The person was erased before this went out: there is no one left to write to.
      if (!applicant) return outcome.complete();
      if (!(await ledger.claim(eventId, channel))) {
        const [sent] = await client.query('SELECT 1 FROM mutuo_notifications WHERE event_id = $1 AND channel = $2', [eventId, channel]);
        if (sent) return outcome.complete();
        // Another sender holds a fresh claim, or crashed holding it: look again once its claim may have lapsed.
        throw new Error(`the ${channel} about event ${eventId} is being sent by another worker`);
      }
      const message = renderEmail(template, {
        firstName: applicant.firstName,
        lastName: applicant.lastName,
        applicationId,
        amountCents: Number(recipient.amount_cents),
        termYears: recipient.term_years,
        ...(facts.contractNumber !== undefined ? { contractNumber: facts.contractNumber } : {}),
        ...(facts.reasons !== undefined ? { reasons: facts.reasons } : {}),
        reason: reason ?? null,
      });
      const messageId = emailMessageId(eventId);
      try {
        await mailer.send({ to: applicant.email, subject: message.subject, text: message.text, messageId });
      } catch (error) {
        await ledger.release(eventId, channel);
        throw error;
      }
      // A crash here, after the server took the mail and before this commit, sends it again once the claim
      // lapses, with the same Message-ID: the one window where a second copy can go out.
      const now = clock();
      const sentEvent: Known = {
        type: 'NotificationSent',
        data: { applicationId, channel, template, answersEventId: eventId, answersEventType: eventType, messageId, sentAt: now.toISOString() },
      };
      await outcome.complete(async (session) => {
        // Not the address: the list shows the recipient's, opened from the sealed applicant, while it may be read.
        await session.tx.query(
          `INSERT INTO mutuo_notifications (application_id, event_id, event_type, channel, template, subject, message_id, sent_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id, channel) DO NOTHING`,
          [applicationId, eventId, eventType, channel, template, message.subject, messageId, now.toISOString()],
        );
        await session.append(notificationStreamId(applicationId), stampEvents(known, [sentEvent], cause, actor, now, newId), 'any');
      });
      await ledger.markSent(eventId, channel);
    }

    return {
      consumers: [consumer],
      jobs: [{ queue: emailQueue, handle: send, concurrency: 8 }],
      routes: [(app) => app.register(notificationRoutes, { client, personalData })],
      describe: `notification: email through ${sink ? `the built-in SMTP server at ${sink.url}` : config.smtpUrl}, de-duplicated in ${config.redisUrl ? 'Redis' : 'the database'}`,
      close: async () => {
        mailer.close();
        await ledger.close();
        await sink?.close();
      },
    };
  },
};

type NotificationRow = {
  id: string;
  application_id: string;
  event_id: string;
  event_type: string;
  channel: string;
  template: string;
  applicant: Sealed | null;
  subject: string | null;
  message_id: string | null;
  sent_at: Date | string;
};

export const notificationRoutes: FastifyPluginAsyncTypebox<{ client: SqlClient; personalData: PersonalDataVault }> = async (app, { client, personalData }) => {
  app.get(
    '/api/notifications',
    {
      config: { permission: 'readNotifications' },
      schema: {
        summary: 'The notifications sent, newest first; of one application with ?applicationId=',
        querystring: Type.Object({
          applicationId: Type.Optional(Type.String({ format: 'uuid' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
        }),
      },
    },
    async (request) => {
      const { applicationId, limit = 100 } = request.query;
      if (request.ownerScope !== undefined) {
        // An applicant lists the notifications of one of their own applications, never all of them.
        if (applicationId === undefined) throw invalidInput([{ path: 'applicationId', message: 'is required: name one of your applications' }]);
        checkOwner(request, (await applicationSubmitter(client, applicationId.toLowerCase())) ?? undefined);
      }
      const rows = await client.query<NotificationRow>(
        `SELECT n.id::text AS id, n.application_id::text AS application_id, n.event_id::text AS event_id, n.event_type, n.channel, n.template,
                r.applicant, n.subject, n.message_id, n.sent_at
           FROM mutuo_notifications n LEFT JOIN mutuo_notification_recipients r ON r.application_id = n.application_id
          WHERE ($1::uuid IS NULL OR n.application_id = $1::uuid) ORDER BY n.id DESC LIMIT $2`,
        [applicationId ?? null, limit],
      );
      const applicants = (await personalData.open(rows.map((row) => row.applicant ?? undefined))) as (Applicant | undefined)[];
      return {
        items: rows.map((row, i) => ({
          id: Number(row.id),
          applicationId: row.application_id,
          channel: row.channel,
          template: row.template,
          recipient: applicants[i]?.email ?? erasedText,
          subject: row.subject,
          messageId: row.message_id,
          answersEventId: row.event_id,
          answersEventType: row.event_type,
          sentAt: new Date(row.sent_at).toISOString(),
        })),
      };
    },
  );
};
