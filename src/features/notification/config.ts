/** The Notification service's settings, read once by the composition root (app/config.ts). */
export type NotificationConfig = {
  /** Where the sent-email ledger lives: Redis when set, the database otherwise. */
  readonly redisUrl: string | undefined;
  /** Unset: an SMTP server in this process receives the mail. */
  readonly smtpUrl: string | undefined;
  readonly from: string;
};
