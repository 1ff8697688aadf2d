import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openTestPglite, type TestDatabase } from '../../platform/sql/testing.ts';
import { createSqlLedger } from './ledger.ts';
import { describeLedgerConformance } from './ledger.contract.ts';
import { createMailer, emailMessageId, type Mailer } from './mailer.ts';
import { decodeEncodedWords, splitMessage, startSmtpSink, type SmtpSink } from './smtp-sink.ts';
import { renderEmail } from './templates.ts';

describe('mailer through the SMTP sink', () => {
  let sink: SmtpSink;
  let mailer: Mailer;
  before(async () => {
    sink = await startSmtpSink();
    mailer = createMailer(sink.url);
  });
  after(async () => {
    mailer.close();
    await sink.close();
  });

  it('listens on a loopback port of its own', () => {
    assert.ok(sink.port > 0);
    assert.equal(sink.url, `smtp://127.0.0.1:${sink.port}`);
  });

  it('delivers mails with their Message-ID, recipient, subject and text intact', async () => {
    const received = renderEmail('application-received', {
      firstName: 'Niccolò',
      lastName: 'Sà',
      applicationId: randomUUID(),
      amountCents: 20_000_000,
      termYears: 25,
    });
    const mails = [
      { to: 'mario.rossi@example.com', subject: 'Plain ASCII', text: 'Hello.\nSecond line.\n', messageId: emailMessageId(randomUUID()) },
      {
        to: 'giulia.bianchi@example.it',
        subject: 'Località: Forlì — 200.000,00 €',
        text: 'Località Forlì\nImporto: 1.234,56 €\n',
        messageId: emailMessageId(randomUUID()),
      },
      {
        to: 'niccolo.sa@example.it',
        // Long enough that the subject is folded over several encoded words and the body wrapped by quoted-printable.
        subject: `${received.subject} — ${'città perché più € '.repeat(6).trim()}`,
        text: `${received.text}${'Una riga molto lunga con accenti àèéìòù e il simbolo €. '.repeat(8)}\n`,
        messageId: emailMessageId(randomUUID()),
      },
    ];
    for (const mail of mails) {
      const result = await mailer.send(mail);
      assert.equal(result.accepted, true);
      assert.match(result.response, /^250 /);
    }

    const got = sink.messages().slice(-3);
    assert.deepEqual(
      got.map(({ messageId, from, to, subject, text }) => ({ messageId, from, to, subject, text })),
      mails.map(({ messageId, to, subject, text }) => ({ messageId, from: 'noreply@mutuo.example', to: [to], subject, text })),
    );
    for (const mail of got) assert.ok(!Number.isNaN(Date.parse(mail.receivedAt)));
  });

  it("sends to the stored address as it is, never to a display name's address or a second one read in it", async () => {
    for (const to of ['Giulia <attacker@evil.example>', 'x<attacker@evil.example>', 'giulia@example.com, attacker@evil.example']) {
      const messageId = emailMessageId(randomUUID());
      // The server may refuse such an address: what matters is who else it went to.
      await mailer.send({ to, subject: 'Your application', text: 'Received.\n', messageId }).catch(() => undefined);
      const recipients = sink
        .messages()
        .filter((mail) => mail.messageId === messageId)
        .flatMap((mail) => mail.to);
      assert.ok(!recipients.includes('attacker@evil.example'), `${to} went to ${recipients.join(', ')}`);
    }
  });

  it('rejects a send with the server error', async () => {
    const small = await startSmtpSink({ maxMessageBytes: 1_000 });
    const smallMailer = createMailer(small.url);
    try {
      await assert.rejects(
        smallMailer.send({ to: 'a@example.com', subject: 'Too big', text: 'x'.repeat(5_000), messageId: emailMessageId(randomUUID()) }),
        (error: Error & { responseCode?: number }) => {
          assert.equal(error.responseCode, 552);
          assert.match(error.message, /maximum message size/);
          return true;
        },
      );
      assert.equal(small.messages().length, 0);
    } finally {
      smallMailer.close();
      await small.close();
    }
  });

  it('keeps only the most recent messages', async () => {
    const short = await startSmtpSink({ keepMessages: 2 });
    const shortMailer = createMailer(short.url);
    try {
      for (const subject of ['one', 'two', 'three']) {
        await shortMailer.send({ to: 'a@example.com', subject, text: subject, messageId: emailMessageId(randomUUID()) });
      }
      assert.deepEqual(
        short.messages().map((mail) => mail.subject),
        ['two', 'three'],
      );
    } finally {
      shortMailer.close();
      await short.close();
    }
  });
});

describe('SMTP sink message parsing', () => {
  it('unfolds headers and keeps the body apart', () => {
    const { headers, body } = splitMessage(Buffer.from('Subject: a\r\n  folded\r\nX-Other: b\r\n\r\nbody\r\n\r\nmore'));
    assert.equal(headers.get('subject'), 'a  folded');
    assert.equal(headers.get('x-other'), 'b');
    assert.equal(body.toString(), 'body\r\n\r\nmore');
  });

  it('decodes encoded words, joining a character split across two of them', () => {
    assert.equal(decodeEncodedWords('=?UTF-8?Q?Localit=C3=A0_Forl=C3=AC?='), 'Località Forlì');
    assert.equal(decodeEncodedWords('=?utf-8?B?4oKs?= 5'), '€ 5');
    assert.equal(decodeEncodedWords('=?UTF-8?Q?=E2=82?=\r\n =?UTF-8?Q?=AC?='.replace('\r\n', '')), '€');
    assert.equal(decodeEncodedWords('Re: =?ISO-8859-1?Q?caf=E9?= ok'), 'Re: café ok');
    assert.equal(decodeEncodedWords('no words = here?'), 'no words = here?');
  });
});

// PGlite takes seconds to start: one database serves every ledger test of this file.
let pglite: Promise<TestDatabase> | undefined;
const sharedPglite = () => (pglite ??= openTestPglite());
after(async () => {
  if (pglite) await (await pglite).dispose();
});

describe('SQL ledger with an injected clock', () => {
  let database: TestDatabase;
  before(async () => {
    database = await sharedPglite();
  });

  it('expires a claim exactly after its TTL', async () => {
    let now = new Date('2026-03-01T10:00:00.000Z');
    const ledger = createSqlLedger(database.client, { claimTtlMs: 60_000, clock: () => now });
    const eventId = randomUUID();
    assert.equal(await ledger.claim(eventId, 'email'), true);
    now = new Date('2026-03-01T10:00:59.999Z');
    assert.equal(await ledger.claim(eventId, 'email'), false);
    now = new Date('2026-03-01T10:01:00.000Z');
    assert.equal(await ledger.claim(eventId, 'email'), true);
    await ledger.markSent(eventId, 'email');
    now = new Date('2027-03-01T10:00:00.000Z');
    assert.equal(await ledger.claim(eventId, 'email'), false);
  });
});

describeLedgerConformance('SQL on PGlite', async () => {
  const database = await sharedPglite();
  return {
    openLedger: async (options) => createSqlLedger(database.client, options),
    dispose: async () => {},
  };
});
