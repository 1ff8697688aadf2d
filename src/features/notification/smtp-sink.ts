import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export type ReceivedMail = {
  readonly messageId: string;
  /** The envelope sender (MAIL FROM), a bare address. */
  readonly from: string;
  /** The envelope recipients (RCPT TO), bare addresses. */
  readonly to: readonly string[];
  readonly subject: string;
  /** The decoded body, with LF line ends; it always ends in one, as SMTP data ends in CRLF. */
  readonly text: string;
  readonly receivedAt: string;
};

export type SmtpSink = {
  /** `smtp://127.0.0.1:<port>`, to hand to createMailer. */
  readonly url: string;
  readonly port: number;
  /** The last messages received, oldest first. */
  messages(): readonly ReceivedMail[];
  close(): Promise<void>;
};

export type SmtpSinkOptions = {
  readonly host?: string;
  readonly port?: number;
  readonly maxMessageBytes?: number;
  readonly keepMessages?: number;
};

/**
 * An SMTP server in this process that keeps what it receives in memory: the mail
 * server of embedded mode and of tests. It accepts anyone, with neither auth nor TLS,
 * so it must only listen on a loopback address.
 */
export async function startSmtpSink({
  host = '127.0.0.1',
  port = 0,
  maxMessageBytes = 10 * 1024 * 1024,
  keepMessages = 10_000,
}: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const received: ReceivedMail[] = [];

  const server = new SMTPServer({
    name: 'mutuo-smtp-sink',
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    size: maxMessageBytes,
    // Pooled clients keep idle connections open; close() should not wait 30 s for them.
    closeTimeout: 500,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes <= maxMessageBytes) chunks.push(chunk);
      });
      stream.on('error', callback);
      stream.on('end', () => {
        if (stream.sizeExceeded || bytes > maxMessageBytes) {
          callback(Object.assign(new Error('Message exceeds fixed maximum message size'), { responseCode: 552 }));
          return;
        }
        const { headers, body } = splitMessage(Buffer.concat(chunks));
        received.push({
          messageId: headers.get('message-id') ?? '',
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((recipient) => recipient.address),
          subject: decodeEncodedWords(headers.get('subject') ?? ''),
          text: decodeBody(headers, body),
          receivedAt: new Date().toISOString(),
        });
        if (received.length > keepMessages) received.splice(0, received.length - keepMessages);
        callback(null, 'Message accepted');
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A socket error after start concerns one client; it must not crash the process.
  server.on('error', () => {});
  const boundPort = (server.server.address() as AddressInfo).port;

  return {
    url: `smtp://${host}:${boundPort}`,
    port: boundPort,
    messages: () => [...received],
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** RFC 5322: headers up to the first empty line, folded lines joined, names lower-cased; the first of a repeated header wins. */
export function splitMessage(raw: Buffer): { headers: ReadonlyMap<string, string>; body: Buffer } {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const [headerEnd, bodyStart] = crlf >= 0 && (lf < 0 || crlf < lf) ? [crlf, crlf + 4] : lf >= 0 ? [lf, lf + 2] : [raw.length, raw.length];
  const headers = new Map<string, string>();
  const unfolded = raw
    .subarray(0, headerEnd)
    .toString('utf8')
    .replace(/\r?\n(?=[ \t])/g, '');
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body: raw.subarray(bodyStart) };
}

/**
 * The text of a single-part message, as our mailer sends: transfer encoding undone,
 * charset applied, CRLF turned into LF.
 */
export function decodeBody(headers: ReadonlyMap<string, string>, body: Buffer): string {
  const transferEncoding = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  const bytes =
    transferEncoding === 'base64'
      ? Buffer.from(body.toString('latin1'), 'base64')
      : transferEncoding === 'quoted-printable'
        ? decodeQuoted(body.toString('latin1').replace(/=\r?\n/g, ''), false)
        : body;
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(headers.get('content-type') ?? '')?.[1] ?? 'utf-8';
  return decodeCharset(bytes, charset).replace(/\r\n/g, '\n');
}

const encodedWord = /=\?([^?*]+)(?:\*[^?]*)?\?([BbQq])\?([^?]*)\?=/g;

/**
 * RFC 2047 encoded words (`=?UTF-8?Q?Localit=C3=A0?=`). Whitespace between two words
 * is dropped, and the bytes of adjacent words in one charset are joined before
 * decoding, because an encoder may split a multi-byte character across two words.
 */
export function decodeEncodedWords(value: string): string {
  let decoded = '';
  let pending: { charset: string; bytes: Buffer[] } | undefined;
  let lastEnd = 0;
  const flush = () => {
    if (pending) decoded += decodeCharset(Buffer.concat(pending.bytes), pending.charset);
    pending = undefined;
  };
  for (const match of value.matchAll(encodedWord)) {
    const between = value.slice(lastEnd, match.index);
    if (!(pending && /^[ \t]*$/.test(between))) {
      flush();
      decoded += between;
    }
    const charset = (match[1] ?? 'utf-8').toLowerCase();
    const payload = match[3] ?? '';
    const bytes = match[2]?.toUpperCase() === 'B' ? Buffer.from(payload, 'base64') : decodeQuoted(payload, true);
    if (pending && pending.charset !== charset) flush();
    pending ??= { charset, bytes: [] };
    pending.bytes.push(bytes);
    lastEnd = match.index + match[0].length;
  }
  flush();
  return decoded + value.slice(lastEnd);
}

/** `=XX` escapes to bytes; the text is latin1, one character per byte. In an encoded word `_` is a space. */
function decodeQuoted(text: string, underscoreIsSpace: boolean): Buffer {
  const bytes: number[] = [];
  for (let index = 0; index < text.length; index++) {
    const hex = text.slice(index + 1, index + 3);
    if (text[index] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      index += 2;
    } else if (text[index] === '_' && underscoreIsSpace) {
      bytes.push(0x20);
    } else {
      bytes.push(text.charCodeAt(index) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

function decodeCharset(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}
