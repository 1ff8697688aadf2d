/**
 * The bank's host speaks fixed-width records over TCP, like a COBOL program reading
 * a copybook. Every record is exactly 128 printable ASCII bytes (0x20-0x7E) followed
 * by '\n', so 129 bytes on the wire. X fields are text, left-justified and padded with
 * spaces; 9 fields are unsigned integers, right-justified and padded with zeros, and
 * 9(3)V9(6) is one with six implied decimals (003875000 is 3.875).
 *
 * | record | offset | width | pic       | field                                       |
 * |--------|-------:|------:|-----------|---------------------------------------------|
 * | all    |      0 |     6 | X         | record type: BOOK2, BOOK, CANC, BOOKOK, BOOKKO, CANCOK, CANCKO, ERR |
 * | all    |      6 |    32 | X         | idempotency key (blank in ERR if unreadable) |
 * | BOOK2  |     38 |    16 | X         | tax code                                    |
 * |        |     54 |    14 | 9         | amount, cents                               |
 * |        |     68 |     9 | 9(3)V9(6) | annual rate, percent                        |
 * |        |     77 |     3 | 9         | term, months                                |
 * |        |     80 |    14 | 9         | requested at, UTC, YYYYMMDDhhmmss           |
 * |        |     94 |    34 |           | filler (spaces)                             |
 * | BOOK   |     38 |    16 | X         | tax code                                    |
 * |        |     54 |    14 | 9         | amount, cents                               |
 * |        |     68 |     5 | 9         | annual rate, basis points                   |
 * |        |     73 |     3 | 9         | term, months                                |
 * |        |     76 |    14 | 9         | requested at, UTC, YYYYMMDDhhmmss           |
 * |        |     90 |    38 |           | filler (spaces)                             |
 * | CANC   |     38 |    12 | X         | contract number                             |
 * |        |     50 |    78 |           | filler                                      |
 * | BOOKOK |     38 |    12 | X         | contract number                             |
 * |        |     50 |    78 |           | filler                                      |
 * | BOOKKO |     38 |     4 | X         | refusal code (FUND, BLCK, LIMT, IDEM, ...)  |
 * |        |     42 |    40 | X         | reason                                      |
 * |        |     82 |    46 |           | filler                                      |
 * | CANCOK |     38 |    12 | X         | contract number                             |
 * |        |     50 |    78 |           | filler                                      |
 * | CANCKO |     38 |    12 | X         | contract number                             |
 * |        |     50 |     4 | X         | refusal code                                |
 * |        |     54 |    40 | X         | reason                                      |
 * |        |     94 |    34 |           | filler                                      |
 * | ERR    |     38 |    80 | X         | what was wrong with the record              |
 * |        |    118 |    10 |           | filler                                      |
 *
 * A booking has two layouts, named by the record type. BOOK (layout 1) carries the rate
 * in basis points, so it cannot say 3.875 %; BOOK2 (layout 2) carries it to the
 * millionth of a percent, two decimals more than Mutuo accepts, so that a finer rate
 * later needs no third layout. Mutuo writes BOOK2; the host reads both, so a client
 * still writing BOOK keeps working, and the two layouts of one booking are the same
 * booking (same key, same rate).
 *
 * Identifiers (key, tax code, contract number, refusal code) contain no spaces, and
 * free text never ends with one, because the padding would swallow it: so every value
 * the encoder accepts decodes back to itself, and the decoder accepts exactly the
 * records the encoder can produce (filler included).
 */
import { annualRateFromUnits, annualRateUnits, type AnnualRate } from '../../domain/annual-rate.ts';

export const RECORD_LENGTH = 128;
/** A record and its '\n'. */
export const FRAME_LENGTH = RECORD_LENGTH + 1;

const NEWLINE = 0x0a;
const SPACE = 0x20;

/** A record that is not what the layout above says, or a value that cannot be written into it. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** The layout of a BOOK record: 2 (BOOK2) is the one Mutuo writes, 1 (BOOK) the one clients before it write. */
export type BookLayout = 1 | 2;
export const currentBookLayout: BookLayout = 2;

export type BookRequest = {
  readonly type: 'BOOK';
  readonly layout: BookLayout;
  readonly idempotencyKey: string;
  readonly taxCode: string;
  readonly amountCents: number;
  readonly annualRate: AnnualRate;
  readonly termMonths: number;
  /** Whole seconds, UTC. */
  readonly requestedAt: Date;
};

export type CancelRequest = { readonly type: 'CANC'; readonly idempotencyKey: string; readonly contractNumber: string };

export type MainframeRequest = BookRequest | CancelRequest;

export type BookedReply = { readonly type: 'BOOKOK'; readonly idempotencyKey: string; readonly contractNumber: string };
export type BookRefusedReply = {
  readonly type: 'BOOKKO';
  readonly idempotencyKey: string;
  readonly code: string;
  readonly reason: string;
};
export type CancelledReply = { readonly type: 'CANCOK'; readonly idempotencyKey: string; readonly contractNumber: string };
export type CancelRefusedReply = {
  readonly type: 'CANCKO';
  readonly idempotencyKey: string;
  readonly contractNumber: string;
  readonly code: string;
  readonly reason: string;
};
/** The host could not read a request. `idempotencyKey` is '' when it could not read the key either. */
export type ErrorReply = { readonly type: 'ERR'; readonly idempotencyKey: string; readonly reason: string };

export type MainframeReply = BookedReply | BookRefusedReply | CancelledReply | CancelRefusedReply | ErrorReply;

type Field = { readonly name: string; readonly offset: number; readonly width: number };

const field = (name: string, offset: number, width: number): Field => ({ name, offset, width });

const recordType = field('type', 0, 6);
const key = field('idempotencyKey', 6, 32);
/** Each BOOK layout: its record type, where its fields are, and how many decimals of a percent its rate has. */
const bookLayouts = {
  1: {
    recordType: 'BOOK',
    taxCode: field('taxCode', 38, 16),
    amountCents: field('amountCents', 54, 14),
    annualRate: field('annualRate', 68, 5),
    rateDecimals: 2,
    termMonths: field('termMonths', 73, 3),
    requestedAt: field('requestedAt', 76, 14),
    end: 90,
  },
  2: {
    recordType: 'BOOK2',
    taxCode: field('taxCode', 38, 16),
    amountCents: field('amountCents', 54, 14),
    annualRate: field('annualRate', 68, 9),
    rateDecimals: 6,
    termMonths: field('termMonths', 77, 3),
    requestedAt: field('requestedAt', 80, 14),
    end: 94,
  },
} as const;
const contractOnly = { contractNumber: field('contractNumber', 38, 12), end: 50 };
const refusal = { code: field('code', 38, 4), reason: field('reason', 42, 40), end: 82 };
const cancelRefusal = {
  contractNumber: field('contractNumber', 38, 12),
  code: field('code', 50, 4),
  reason: field('reason', 54, 40),
  end: 94,
};
const error = { reason: field('reason', 38, 80), end: 118 };

const REFUSAL_CODE = /^[A-Z0-9]{4}$/;

function isPrintable(byte: number): boolean {
  return byte >= 0x20 && byte <= 0x7e;
}

function printableProblem(value: string): string | null {
  for (let i = 0; i < value.length; i++) {
    if (!isPrintable(value.charCodeAt(i))) return `character ${JSON.stringify(value[i])} at ${i} is not printable ASCII`;
  }
  return null;
}

/** Builds one record; each write checks the value fits its field. */
class RecordWriter {
  private readonly bytes = Buffer.alloc(FRAME_LENGTH, SPACE);

  constructor(type: string) {
    this.bytes.write(type, recordType.offset, 'latin1');
    this.bytes[RECORD_LENGTH] = NEWLINE;
  }

  identifier(target: Field, value: string): this {
    if (typeof value !== 'string' || value.length === 0) throw new ProtocolError(`${target.name}: must not be empty`);
    if (value.includes(' ')) throw new ProtocolError(`${target.name}: must not contain spaces, got ${JSON.stringify(value)}`);
    return this.text(target, value);
  }

  text(target: Field, value: string): this {
    if (typeof value !== 'string') throw new ProtocolError(`${target.name}: must be a string`);
    const problem = printableProblem(value);
    if (problem !== null) throw new ProtocolError(`${target.name}: ${problem}`);
    if (value.length > target.width) {
      throw new ProtocolError(`${target.name}: ${value.length} characters do not fit ${target.width}`);
    }
    if (value.endsWith(' ')) throw new ProtocolError(`${target.name}: must not end with a space (the padding would swallow it)`);
    this.bytes.write(value, target.offset, 'latin1');
    return this;
  }

  digits(target: Field, value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ProtocolError(`${target.name}: must be a whole number from 0, got ${value}`);
    }
    const digits = String(value);
    if (digits.length > target.width) throw new ProtocolError(`${target.name}: ${value} does not fit ${target.width} digits`);
    this.bytes.write(digits.padStart(target.width, '0'), target.offset, 'latin1');
    return this;
  }

  /** A rate as a whole number of 10^-decimals percent, the decimals implied. */
  rate(target: Field, value: AnnualRate, decimals: number): this {
    let units: number;
    try {
      units = annualRateUnits(value, decimals);
    } catch {
      throw new ProtocolError(`${target.name}: ${JSON.stringify(value)} is not a rate of at most ${decimals} decimals`);
    }
    return this.digits(target, units);
  }

  timestamp(target: Field, value: Date): this {
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new ProtocolError(`${target.name}: must be a valid Date`);
    if (value.getUTCMilliseconds() !== 0) throw new ProtocolError(`${target.name}: must be whole seconds, got ${value.toISOString()}`);
    const year = value.getUTCFullYear();
    if (year < 0 || year > 9999) throw new ProtocolError(`${target.name}: year ${year} does not fit 4 digits`);
    this.bytes.write(formatTimestamp(value), target.offset, 'latin1');
    return this;
  }

  done(): Buffer {
    return this.bytes;
  }
}

function formatTimestamp(value: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    String(value.getUTCFullYear()).padStart(4, '0') +
    two(value.getUTCMonth() + 1) +
    two(value.getUTCDate()) +
    two(value.getUTCHours()) +
    two(value.getUTCMinutes()) +
    two(value.getUTCSeconds())
  );
}

/** Reads the fields of one record, rejecting anything the writer could not have produced. */
class RecordReader {
  private readonly text: string;

  constructor(bytes: Uint8Array) {
    // One trailing '\n' is tolerated so that decode(encode(x)) needs no slicing.
    const length = bytes.length === FRAME_LENGTH && bytes[RECORD_LENGTH] === NEWLINE ? RECORD_LENGTH : bytes.length;
    if (length !== RECORD_LENGTH) throw new ProtocolError(`record is ${length} bytes, expected ${RECORD_LENGTH}`);
    for (let i = 0; i < RECORD_LENGTH; i++) {
      if (!isPrintable(bytes[i]!)) throw new ProtocolError(`byte ${i} (0x${bytes[i]!.toString(16)}) is not printable ASCII`);
    }
    this.text = Buffer.from(bytes.buffer, bytes.byteOffset, RECORD_LENGTH).toString('latin1');
  }

  private raw(source: Field): string {
    return this.text.slice(source.offset, source.offset + source.width);
  }

  type(): string {
    return this.raw(recordType).trimEnd();
  }

  identifier(source: Field, { allowBlank = false } = {}): string {
    const value = this.raw(source).trimEnd();
    if (value === '' && !allowBlank) throw new ProtocolError(`${source.name}: is blank`);
    if (value.includes(' ')) throw new ProtocolError(`${source.name}: must not contain spaces, got ${JSON.stringify(value)}`);
    return value;
  }

  reason(source: Field): string {
    return this.raw(source).trimEnd();
  }

  code(source: Field): string {
    const value = this.raw(source);
    if (!REFUSAL_CODE.test(value)) throw new ProtocolError(`${source.name}: ${JSON.stringify(value)} is not 4 letters or digits`);
    return value;
  }

  digits(source: Field): number {
    const value = this.raw(source);
    if (!/^[0-9]+$/.test(value)) throw new ProtocolError(`${source.name}: ${JSON.stringify(value)} is not ${source.width} digits`);
    return Number(value);
  }

  rate(source: Field, decimals: number): AnnualRate {
    return annualRateFromUnits(this.digits(source), decimals);
  }

  timestamp(source: Field): Date {
    const value = this.raw(source);
    const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(value);
    if (match === null) throw new ProtocolError(`${source.name}: ${JSON.stringify(value)} is not YYYYMMDDhhmmss`);
    const [year, month, day, hours, minutes, seconds] = match.slice(1).map(Number) as [number, number, number, number, number, number];
    // setUTCFullYear, unlike Date.UTC, does not read years 0-99 as 1900-1999.
    const date = new Date(0);
    date.setUTCFullYear(year, month - 1, day);
    date.setUTCHours(hours, minutes, seconds, 0);
    // Date rolls 31 February over into March: formatting back exposes such dates.
    if (Number.isNaN(date.getTime()) || formatTimestamp(date) !== value) {
      throw new ProtocolError(`${source.name}: ${value} is not a real date and time`);
    }
    return date;
  }

  filler(from: number): void {
    for (let i = from; i < RECORD_LENGTH; i++) {
      if (this.text.charCodeAt(i) !== SPACE) throw new ProtocolError(`filler at byte ${i} is not blank`);
    }
  }
}

/** The frame for one request: 128 bytes and '\n'. Throws ProtocolError if a value does not fit its field. */
export function encodeRequest(request: MainframeRequest): Buffer {
  switch (request.type) {
    case 'BOOK': {
      const book = bookLayouts[request.layout];
      if (book === undefined) throw new ProtocolError(`layout: no BOOK layout ${JSON.stringify(request.layout)}`);
      return new RecordWriter(book.recordType)
        .identifier(key, request.idempotencyKey)
        .identifier(book.taxCode, request.taxCode)
        .digits(book.amountCents, request.amountCents)
        .rate(book.annualRate, request.annualRate, book.rateDecimals)
        .digits(book.termMonths, request.termMonths)
        .timestamp(book.requestedAt, request.requestedAt)
        .done();
    }
    case 'CANC':
      return new RecordWriter('CANC').identifier(key, request.idempotencyKey).identifier(contractOnly.contractNumber, request.contractNumber).done();
    default:
      throw new ProtocolError(`unknown request type ${JSON.stringify((request as { type: unknown }).type)}`);
  }
}

/** A record (with or without its '\n') -> the request it carries. Throws ProtocolError when malformed. */
export function decodeRequest(record: Uint8Array): MainframeRequest {
  const reader = new RecordReader(record);
  const type = reader.type();
  switch (type) {
    case 'BOOK':
    case 'BOOK2': {
      const layout: BookLayout = type === 'BOOK' ? 1 : 2;
      const book = bookLayouts[layout];
      const request: BookRequest = {
        type: 'BOOK',
        layout,
        idempotencyKey: reader.identifier(key),
        taxCode: reader.identifier(book.taxCode),
        amountCents: reader.digits(book.amountCents),
        annualRate: reader.rate(book.annualRate, book.rateDecimals),
        termMonths: reader.digits(book.termMonths),
        requestedAt: reader.timestamp(book.requestedAt),
      };
      reader.filler(book.end);
      return request;
    }
    case 'CANC': {
      const request: CancelRequest = {
        type,
        idempotencyKey: reader.identifier(key),
        contractNumber: reader.identifier(contractOnly.contractNumber),
      };
      reader.filler(contractOnly.end);
      return request;
    }
    default:
      throw new ProtocolError(`unknown request type ${JSON.stringify(type)}`);
  }
}

/** The frame for one reply: 128 bytes and '\n'. Throws ProtocolError if a value does not fit its field. */
export function encodeReply(reply: MainframeReply): Buffer {
  switch (reply.type) {
    case 'BOOKOK':
    case 'CANCOK':
      return new RecordWriter(reply.type).identifier(key, reply.idempotencyKey).identifier(contractOnly.contractNumber, reply.contractNumber).done();
    case 'BOOKKO':
      return new RecordWriter('BOOKKO')
        .identifier(key, reply.idempotencyKey)
        .text(refusal.code, checkedCode(reply.code))
        .text(refusal.reason, reply.reason)
        .done();
    case 'CANCKO':
      return new RecordWriter('CANCKO')
        .identifier(key, reply.idempotencyKey)
        .identifier(cancelRefusal.contractNumber, reply.contractNumber)
        .text(cancelRefusal.code, checkedCode(reply.code))
        .text(cancelRefusal.reason, reply.reason)
        .done();
    case 'ERR': {
      const writer = new RecordWriter('ERR');
      if (reply.idempotencyKey !== '') writer.identifier(key, reply.idempotencyKey);
      return writer.text(error.reason, reply.reason).done();
    }
    default:
      throw new ProtocolError(`unknown reply type ${JSON.stringify((reply as { type: unknown }).type)}`);
  }
}

function checkedCode(code: string): string {
  if (typeof code !== 'string' || !REFUSAL_CODE.test(code)) {
    throw new ProtocolError(`code: must be 4 capital letters or digits, got ${JSON.stringify(code)}`);
  }
  return code;
}

/** A record (with or without its '\n') -> the reply it carries. Throws ProtocolError when malformed. */
export function decodeReply(record: Uint8Array): MainframeReply {
  const reader = new RecordReader(record);
  const type = reader.type();
  switch (type) {
    case 'BOOKOK':
    case 'CANCOK': {
      const reply = {
        type,
        idempotencyKey: reader.identifier(key),
        contractNumber: reader.identifier(contractOnly.contractNumber),
      } as const;
      reader.filler(contractOnly.end);
      return reply;
    }
    case 'BOOKKO': {
      const reply: BookRefusedReply = {
        type,
        idempotencyKey: reader.identifier(key),
        code: reader.code(refusal.code),
        reason: reader.reason(refusal.reason),
      };
      reader.filler(refusal.end);
      return reply;
    }
    case 'CANCKO': {
      const reply: CancelRefusedReply = {
        type,
        idempotencyKey: reader.identifier(key),
        contractNumber: reader.identifier(cancelRefusal.contractNumber),
        code: reader.code(cancelRefusal.code),
        reason: reader.reason(cancelRefusal.reason),
      };
      reader.filler(cancelRefusal.end);
      return reply;
    }
    case 'ERR': {
      const reply: ErrorReply = {
        type,
        idempotencyKey: reader.identifier(key, { allowBlank: true }),
        reason: reader.reason(error.reason),
      };
      reader.filler(error.end);
      return reply;
    }
    default:
      throw new ProtocolError(`unknown reply type ${JSON.stringify(type)}`);
  }
}

/**
 * The idempotency key of a record that may be malformed, so that an ERR reply can
 * still name it; '' when the key field is missing or unreadable.
 */
export function peekIdempotencyKey(record: Uint8Array): string {
  if (record.length < key.offset + key.width) return '';
  const value = Buffer.from(record.buffer, record.byteOffset + key.offset, key.width)
    .toString('latin1')
    .trimEnd();
  for (let i = 0; i < value.length; i++) {
    const byte = value.charCodeAt(i);
    if (!isPrintable(byte) || byte === SPACE) return '';
  }
  return value;
}

/**
 * Splits a byte stream into records at each '\n' (the '\n' removed). A line that grows
 * past the record length without a '\n' is reported once as a ProtocolError and
 * skipped up to the next '\n', so a peer sending garbage cannot make us buffer without bound.
 */
const overlong = () => new ProtocolError(`record is longer than ${RECORD_LENGTH} bytes`);

export function createRecordSplitter(): (chunk: Buffer) => Array<Buffer | ProtocolError> {
  let pending = Buffer.alloc(0);
  let skippingOverlong = false;
  return (chunk) => {
    const data = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const out: Array<Buffer | ProtocolError> = [];
    let start = 0;
    for (let newline = data.indexOf(NEWLINE, start); newline !== -1; newline = data.indexOf(NEWLINE, start)) {
      if (skippingOverlong) skippingOverlong = false;
      // Judged the same whether or not the '\n' came in the same chunk as the excess.
      else if (newline - start > RECORD_LENGTH) out.push(overlong());
      else out.push(data.subarray(start, newline));
      start = newline + 1;
    }
    const rest = data.subarray(start);
    if (skippingOverlong) {
      pending = Buffer.alloc(0);
    } else if (rest.length > RECORD_LENGTH) {
      out.push(overlong());
      skippingOverlong = true;
      pending = Buffer.alloc(0);
    } else {
      // A copy, so a small remainder does not keep a large socket chunk alive.
      pending = Buffer.from(rest);
    }
    return out;
  };
}
