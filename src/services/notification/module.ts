import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { checkOwner } from '../../api/access.ts';
import { invalidInput } from '../../domain/errors.ts';
import type { SqlClient, SqlQueryable } from '../../eventstore/sql-client.ts';
import { eventsInTransaction } from '../../eventstore/store.ts';
import { idsIn } from '../../privacy/data-subject.ts';
import { erasedText } from '../application/events.ts';
import type { ConsumedEvent } from '../../messaging/consumer.ts';
import { scheduleJob, type Job, type JobOutcome } from '../../messaging/jobs.ts';
import { platformEventCatalog, type PlatformEvent } from '../catalog.ts';
import { causedBy, stampEvents, type Cause, type ServiceModule } from '../service.ts';
import { applicationSubmitter } from '../application/ownership.ts';
import { notificationStreamId } from './events.ts';
import { createRedisLedger, createSqlLedger, type NotificationLedger } from './ledger.ts';
import { createMailer, emailMessageId } from './mailer.ts';
import { startSmtpSink, type SmtpSink } from './smtp-sink.ts';
import { renderEmail, type EmailFacts, type TemplateName } from './templates.ts';

const emailQueue = 'notification.email';
const channel = 'email';
const actor = 'system:notification';

type EmailJob = {
  readonly applicationId: string;
  readonly template: TemplateName;
  readonly facts: Pick<EmailFacts, 'contractNumber' | 'reason' | 'reasons'>;
  readonly eventId: string;
  readonly eventType: string;
  readonly cause: Cause;
};

/** The message an event calls for, if any. */
export function emailFor(event: PlatformEvent): { template: TemplateName; facts: EmailJob['facts'] } | undefined {
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
      return { template: 'application-rejected', facts: { reason: event.data.reason } };
    case 'ApplicationWithdrawn':
      return { template: 'application-withdrawn', facts: { reason: event.data.reason } };
    default:
      return undefined;
  }
}

type Recipient = { first_name: string; last_name: string; email: string; amount_cents: string | number; term_years: number };

/**
 * The Notification service: tells the applicant, by email, of each step that concerns
 * them, once per event and channel. The consumer's inbox makes a redelivered event
 * schedule nothing twice; the ledger (Redis or the database) makes a send that is
 * retried after a crash or a timeout send nothing twice. It writes only
 * `notification-<id>` streams.
 */
export const notificationModule: ServiceModule = {
  name: 'notification',
  async start({ config, client, clock, newId }) {
    const sink: SmtpSink | undefined = config.notification.smtpUrl ? undefined : await startSmtpSink();
    const smtpUrl = config.notification.smtpUrl ?? sink!.url;
    const mailer = createMailer(smtpUrl, config.notification.from);
    const ledger: NotificationLedger = config.redisUrl ? await createRedisLedger(config.redisUrl) : createSqlLedger(client);

    async function handle(consumed: ConsumedEvent, tx: SqlQueryable) {
      const event = { type: consumed.type, data: consumed.data } as PlatformEvent;
      if (event.type === 'PersonalDataErased') {
        // Whom it wrote to and what it wrote them: the subjects quote the reference only,
        // but go too, since a template may one day quote more.
        const applications = idsIn(event.data.streams, 'application-');
        await tx.query(
          'UPDATE mutuo_notification_recipients SET first_name = $2, last_name = $2, email = $2 WHERE application_id = ANY($1::uuid[])',
          [applications, erasedText],
        );
        await tx.query('UPDATE mutuo_notifications SET recipient = $2, subject = NULL WHERE application_id = ANY($1::uuid[])', [applications, erasedText]);
        return;
      }
      const applicationId = consumed.partitionKey;
      if (event.type === 'MortgageApplicationSubmitted') {
        const { applicant, loan } = event.data;
        await tx.query(
          `INSERT INTO mutuo_notification_recipients (application_id, first_name, last_name, email, amount_cents, term_years)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (application_id) DO NOTHING`,
          [applicationId, applicant.firstName, applicant.lastName, applicant.email, loan.amountCents, loan.termYears],
        );
      }
      const email = emailFor(event);
      if (!email) return;
      const payload: EmailJob = { applicationId, ...email, eventId: consumed.eventId, eventType: consumed.type, cause: causedBy(consumed) };
      await scheduleJob(tx, { queue: emailQueue, key: `${consumed.eventId}:${channel}`, payload, dueAt: clock() });
    }

    async function send(job: Job<EmailJob>, outcome: JobOutcome) {
      const { applicationId, template, facts, eventId, eventType, cause } = job.payload;
      const [recipient] = await client.query<Recipient>('SELECT * FROM mutuo_notification_recipients WHERE application_id = $1', [applicationId]);
      if (!recipient) throw new Error(`no recipient known for application ${applicationId} yet`);
      // The person was erased before this went out: there is no one left to write to.
      if (recipient.email === erasedText) return outcome.complete();
      if (!(await ledger.claim(eventId, channel))) {
        const [sent] = await client.query('SELECT 1 FROM mutuo_notifications WHERE event_id = $1 AND channel = $2', [eventId, channel]);
        if (sent) return outcome.complete();
        // Another sender holds a fresh claim, or crashed holding it: look again once its claim may have lapsed.
        throw new Error(`the ${channel} about event ${eventId} is being sent by another worker`);
      }
      const message = renderEmail(template, {
        firstName: recipient.first_name,
        lastName: recipient.last_name,
        applicationId,
        amountCents: Number(recipient.amount_cents),
        termYears: recipient.term_years,
        ...facts,
      });
      const messageId = emailMessageId(eventId);
      try {
        await mailer.send({ to: recipient.email, subject: message.subject, text: message.text, messageId });
      } catch (error) {
        await ledger.release(eventId, channel);
        throw error;
      }
      // A crash here, after the server took the mail and before this commit, sends it again once the claim
      // lapses, with the same Message-ID: the one window where a second copy can go out.
      const now = clock();
      const sentEvent: PlatformEvent = {
        type: 'NotificationSent',
        data: { applicationId, channel, template, answersEventId: eventId, answersEventType: eventType, messageId, sentAt: now.toISOString() },
      };
      await outcome.complete(async (tx) => {
        await tx.query(
          `INSERT INTO mutuo_notifications (application_id, event_id, event_type, channel, template, recipient, subject, message_id, sent_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id, channel) DO NOTHING`,
          [applicationId, eventId, eventType, channel, template, recipient.email, message.subject, messageId, now.toISOString()],
        );
        await eventsInTransaction(tx).append(notificationStreamId(applicationId), stampEvents([sentEvent], cause, actor, now, newId), 'any');
      });
      await ledger.markSent(eventId, channel);
    }

    return {
      consumers: [
        {
          name: 'notification',
          eventTypes: [
            'MortgageApplicationSubmitted',
            'DocumentsRejected',
            'InterestRateLockExpired',
            'ApplicationApproved',
            'ApplicationRejected',
            'ApplicationWithdrawn',
            'PersonalDataErased',
          ],
          decoder: platformEventCatalog,
          handle,
        },
      ],
      jobs: [{ queue: emailQueue, handle: send, concurrency: 8 }],
      routes: [(app) => app.register(notificationRoutes, { client })],
      describe: `notification: email through ${sink ? `the built-in SMTP server at ${sink.url}` : config.notification.smtpUrl}, de-duplicated in ${config.redisUrl ? 'Redis' : 'the database'}`,
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
  recipient: string;
  subject: string | null;
  message_id: string | null;
  sent_at: Date | string;
};

export const notificationRoutes: FastifyPluginAsyncTypebox<{ client: SqlClient }> = async (app, { client }) => {
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
        `SELECT id::text AS id, application_id::text AS application_id, event_id::text AS event_id, event_type, channel, template,
                recipient, subject, message_id, sent_at
           FROM mutuo_notifications WHERE ($1::uuid IS NULL OR application_id = $1::uuid) ORDER BY id DESC LIMIT $2`,
        [applicationId ?? null, limit],
      );
      return {
        items: rows.map((row) => ({
          id: Number(row.id),
          applicationId: row.application_id,
          channel: row.channel,
          template: row.template,
          recipient: row.recipient,
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
