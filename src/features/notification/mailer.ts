import { createTransport } from 'nodemailer';

export type OutgoingMail = {
  /** One bare address, used as it is. */
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  /** `<…@…>`; see emailMessageId. */
  readonly messageId: string;
};

export type SendResult = { readonly accepted: boolean; readonly response: string };

export type Mailer = {
  /** Rejects with nodemailer's error, which carries the server's reply (`responseCode`, `response`). */
  send(mail: OutgoingMail): Promise<SendResult>;
  close(): void;
};

/**
 * The Message-ID of the email about one event. It is derived, not random, so that a
 * resend after a crash between sending and recording carries the same id and mail
 * clients show one message.
 */
export function emailMessageId(eventId: string): string {
  return `<${eventId}.email@mutuo.example>`;
}

/** Sends through the SMTP server at `smtpUrl` (`smtp://host:port`, `smtps://user:pass@host:465`), over a connection pool. */
export function createMailer(smtpUrl: string, from = 'Mutuo <noreply@mutuo.example>'): Mailer {
  const transport = createTransport({
    url: smtpUrl,
    pool: true,
    maxConnections: 5,
    // nodemailer waits minutes by default; a stuck server should fail the send so it is retried.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    async send({ to, subject, text, messageId }) {
      // An address object, not a string: nodemailer parses a string as an address list, and
      // would find a display name or a second recipient in stored data (`x<someone@else>`).
      const info = await transport.sendMail({ from, to: { name: '', address: to }, subject, text, messageId });
      return { accepted: info.accepted.length > 0, response: info.response };
    },
    close: () => transport.close(),
  };
}
