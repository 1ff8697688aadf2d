import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { annualRateFromUnits } from '../../domain/annual-rate.ts';
import {
  createRecordSplitter,
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  FRAME_LENGTH,
  peekIdempotencyKey,
  ProtocolError,
  RECORD_LENGTH,
  type BookRequest,
  type MainframeReply,
  type MainframeRequest,
} from './mainframe-protocol.ts';

// fc.record builds null-prototype objects, which deepStrictEqual tells apart from the decoder's literals.
const plain = <T extends object>(value: T): T => ({ ...value });

const identifier = (width: number) => fc.stringMatching(new RegExp(`^[!-~]{1,${width}}$`));
// Printable text that does not end with a space, since the padding would swallow it.
const text = (width: number) => fc.stringMatching(new RegExp(`^([ -~]{0,${width - 1}}[!-~])?$`));
const code = fc.stringMatching(/^[A-Z0-9]{4}$/);
const wholeSecond = fc
  .date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((date) => new Date(Math.floor(date.getTime() / 1000) * 1000));

const bookFields = {
  type: fc.constant('BOOK' as const),
  idempotencyKey: identifier(32),
  taxCode: identifier(16),
  amountCents: fc.integer({ min: 0, max: 99_999_999_999_999 }),
  termMonths: fc.integer({ min: 0, max: 999 }),
  requestedAt: wholeSecond,
};
/** Layout 2 carries any rate below 1000 % to six decimals; layout 1, below 1000 % in basis points. */
const bookArb: fc.Arbitrary<BookRequest> = fc.oneof(
  fc.record({
    ...bookFields,
    layout: fc.constant(2 as const),
    annualRate: fc.integer({ min: 0, max: 999_999_999 }).map((units) => annualRateFromUnits(units, 6)),
  }),
  fc.record({ ...bookFields, layout: fc.constant(1 as const), annualRate: fc.integer({ min: 0, max: 99_999 }).map((units) => annualRateFromUnits(units, 2)) }),
);

const requestArb: fc.Arbitrary<MainframeRequest> = fc.oneof(
  bookArb,
  fc.record({ type: fc.constant('CANC' as const), idempotencyKey: identifier(32), contractNumber: identifier(12) }),
);

const replyArb: fc.Arbitrary<MainframeReply> = fc.oneof(
  fc.record({ type: fc.constant('BOOKOK' as const), idempotencyKey: identifier(32), contractNumber: identifier(12) }),
  fc.record({ type: fc.constant('BOOKKO' as const), idempotencyKey: identifier(32), code, reason: text(40) }),
  fc.record({ type: fc.constant('CANCOK' as const), idempotencyKey: identifier(32), contractNumber: identifier(12) }),
  fc.record({
    type: fc.constant('CANCKO' as const),
    idempotencyKey: identifier(32),
    contractNumber: identifier(12),
    code,
    reason: text(40),
  }),
  fc.record({ type: fc.constant('ERR' as const), idempotencyKey: fc.oneof(fc.constant(''), identifier(32)), reason: text(80) }),
);

const sampleBook: BookRequest = {
  type: 'BOOK',
  layout: 2,
  idempotencyKey: '0f8fad5bd9cb469fa16570867728950e',
  taxCode: 'RSSMRA85T10A562S',
  amountCents: 25_000_051,
  annualRate: '3.875',
  termMonths: 300,
  requestedAt: new Date('2026-03-01T09:15:30Z'),
};

/** A BOOK record as a client before layout 2 writes it, byte for byte. */
const layoutOneRecord = [
  'BOOK  ',
  '0f8fad5bd9cb469fa16570867728950e',
  'RSSMRA85T10A562S',
  '00000025000051',
  '00325',
  '300',
  '20260301091530',
  ' '.repeat(38),
  '\n',
].join('');

function record(text: string): Buffer {
  return Buffer.from(text.padEnd(RECORD_LENGTH, ' '), 'latin1');
}

describe('mainframe protocol', () => {
  it('lays a BOOK2 record out as the table says, the rate to six implied decimals', () => {
    const frame = encodeRequest(sampleBook);
    assert.equal(frame.length, FRAME_LENGTH);
    assert.equal(
      frame.toString('latin1'),
      ['BOOK2 ', '0f8fad5bd9cb469fa16570867728950e', 'RSSMRA85T10A562S', '00000025000051', '003875000', '300', '20260301091530', ' '.repeat(34), '\n'].join(''),
    );
  });

  it('still reads the BOOK record of layout 1, its rate in basis points, as the same booking', () => {
    const fromLayoutOne = decodeRequest(Buffer.from(layoutOneRecord, 'latin1'));
    assert.deepEqual(fromLayoutOne, { ...sampleBook, layout: 1, annualRate: '3.25' });
    assert.equal(encodeRequest(fromLayoutOne).toString('latin1'), layoutOneRecord, 'and writes it again byte for byte');
    const sameBooking = decodeRequest(encodeRequest({ ...fromLayoutOne, layout: 2 }));
    assert.deepEqual({ ...sameBooking, layout: 1 }, fromLayoutOne, 'the same booking in layout 2');
  });

  it('carries every rate Mutuo accepts unchanged, and one finer than layout 1 only in layout 2', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200_000 }), (units) => {
        const annualRate = annualRateFromUnits(units, 4);
        assert.equal((decodeRequest(encodeRequest({ ...sampleBook, annualRate })) as BookRequest).annualRate, annualRate);
      }),
    );
    assert.throws(() => encodeRequest({ ...sampleBook, layout: 1 }), /annualRate: "3.875" is not a rate of at most 2 decimals/);
  });

  it('decodes what it encodes, for every valid request', () => {
    fc.assert(
      fc.property(requestArb, (request) => {
        const frame = encodeRequest(request);
        assert.equal(frame.length, FRAME_LENGTH);
        assert.deepEqual(decodeRequest(frame), plain(request));
        assert.deepEqual(decodeRequest(frame.subarray(0, RECORD_LENGTH)), plain(request));
      }),
    );
  });

  it('decodes what it encodes, for every valid reply', () => {
    fc.assert(
      fc.property(replyArb, (reply) => {
        const frame = encodeReply(reply);
        assert.equal(frame.length, FRAME_LENGTH);
        assert.deepEqual(decodeReply(frame), plain(reply));
      }),
    );
  });

  it('accepts no record it could not have written', () => {
    // Overwrite one byte of a valid record with any printable byte: the result either
    // decodes to a value that encodes back to exactly those bytes, or is rejected.
    const codecs = [
      { frames: requestArb.map(encodeRequest), decode: decodeRequest, encode: (v: unknown) => encodeRequest(v as MainframeRequest) },
      { frames: replyArb.map(encodeReply), decode: decodeReply, encode: (v: unknown) => encodeReply(v as MainframeReply) },
    ];
    for (const { frames, decode, encode } of codecs) {
      fc.assert(
        fc.property(frames, fc.integer({ min: 0, max: RECORD_LENGTH - 1 }), fc.integer({ min: 0x20, max: 0x7e }), (frame, at, byte) => {
          const changed = Buffer.from(frame);
          changed[at] = byte;
          let decoded: unknown;
          try {
            decoded = decode(changed);
          } catch (error) {
            assert.ok(error instanceof ProtocolError);
            return;
          }
          assert.deepEqual(encode(decoded), changed);
        }),
      );
    }
  });

  describe('rejects at encode time', () => {
    const rejects = (request: MainframeRequest, message: RegExp) =>
      assert.throws(
        () => encodeRequest(request),
        (error: unknown) => error instanceof ProtocolError && message.test(error.message),
      );

    it('an amount over 14 digits', () => rejects({ ...sampleBook, amountCents: 100_000_000_000_000 }, /amountCents: .* does not fit 14 digits/));
    it('a negative or fractional amount', () => {
      rejects({ ...sampleBook, amountCents: -1 }, /amountCents: must be a whole number/);
      rejects({ ...sampleBook, amountCents: 10.5 }, /amountCents: must be a whole number/);
    });
    it('a rate of 1000 % or more, or of more than six decimals, and a term over 3 digits', () => {
      rejects({ ...sampleBook, annualRate: '1000' }, /annualRate: .* does not fit 9 digits/);
      rejects({ ...sampleBook, layout: 1, annualRate: '1000' }, /annualRate: .* does not fit 5 digits/);
      rejects({ ...sampleBook, annualRate: '3.8750001' }, /annualRate: "3.8750001" is not a rate of at most 6 decimals/);
      rejects({ ...sampleBook, annualRate: '3.50' }, /annualRate: "3.50" is not a rate/);
      rejects({ ...sampleBook, termMonths: 1_000 }, /termMonths: .* does not fit 3 digits/);
    });
    it('a layout that does not exist', () => rejects({ ...sampleBook, layout: 3 as 2 }, /layout: no BOOK layout 3/));
    it('a key longer than 32 characters (a UUID with dashes)', () =>
      rejects({ ...sampleBook, idempotencyKey: '0f8fad5b-d9cb-469f-a165-70867728950e' }, /idempotencyKey: 36 characters do not fit 32/));
    it('non-ASCII and control characters', () => {
      rejects({ ...sampleBook, taxCode: 'RSSMRA85T10A562È' }, /taxCode: character "È" at 15 is not printable ASCII/);
      rejects({ ...sampleBook, idempotencyKey: 'key\nBOOK' }, /idempotencyKey: character "\\n" at 3 is not printable ASCII/);
    });
    it('blank identifiers and identifiers with spaces', () => {
      rejects({ ...sampleBook, idempotencyKey: '' }, /idempotencyKey: must not be empty/);
      rejects({ type: 'CANC', idempotencyKey: 'k', contractNumber: 'MU 1' }, /contractNumber: must not contain spaces/);
    });
    it('a time with milliseconds or an invalid date', () => {
      rejects({ ...sampleBook, requestedAt: new Date('2026-03-01T09:15:30.250Z') }, /requestedAt: must be whole seconds/);
      rejects({ ...sampleBook, requestedAt: new Date(Number.NaN) }, /requestedAt: must be a valid Date/);
    });
    it('a reason too long or ending in a space, and a malformed refusal code', () => {
      const refused = { type: 'BOOKKO', idempotencyKey: 'k', code: 'FUND', reason: 'no' } as const;
      assert.throws(() => encodeReply({ ...refused, reason: 'x'.repeat(41) }), /reason: 41 characters do not fit 40/);
      assert.throws(() => encodeReply({ ...refused, reason: 'trailing ' }), /reason: must not end with a space/);
      assert.throws(() => encodeReply({ ...refused, code: 'fund' }), /code: must be 4 capital letters or digits/);
    });
  });

  describe('rejects at decode time', () => {
    const rejects = (bytes: Buffer, message: RegExp) =>
      assert.throws(
        () => decodeRequest(bytes),
        (error: unknown) => error instanceof ProtocolError && message.test(error.message),
      );
    const valid = encodeRequest(sampleBook).subarray(0, RECORD_LENGTH);

    it('a record of the wrong length', () => {
      rejects(valid.subarray(0, 100), /record is 100 bytes, expected 128/);
      rejects(Buffer.concat([valid, Buffer.from('  ')]), /record is 130 bytes/);
    });
    it('an unknown type', () => rejects(record('HELLO k'), /unknown request type "HELLO"/));
    it('letters in a numeric field', () => {
      const bad = Buffer.from(valid);
      bad.write('0000002500005X', 54, 'latin1');
      rejects(bad, /amountCents: "0000002500005X" is not 14 digits/);
    });
    it('an impossible date', () => {
      const bad = Buffer.from(valid);
      bad.write('20260231091530', 80, 'latin1');
      rejects(bad, /requestedAt: 20260231091530 is not a real date and time/);
    });
    it('a non-ASCII byte', () => {
      const bad = Buffer.from(valid);
      bad[100] = 0xc8;
      rejects(bad, /byte 100 \(0xc8\) is not printable ASCII/);
    });
    it('a blank key and text in the filler', () => {
      rejects(record('CANC'), /idempotencyKey: is blank/);
      const bad = Buffer.from(valid);
      bad.write('X', 127, 'latin1');
      rejects(bad, /filler at byte 127 is not blank/);
    });
    it('a reply type sent as a request, and the other way round', () => {
      assert.throws(() => decodeRequest(encodeReply({ type: 'BOOKOK', idempotencyKey: 'k', contractNumber: 'MU0000000001' })), ProtocolError);
      assert.throws(() => decodeReply(valid), /unknown reply type "BOOK2"/);
    });
  });

  it('peeks the key of a malformed record when it can', () => {
    assert.equal(peekIdempotencyKey(record('BOOK  abc')), 'abc');
    assert.equal(peekIdempotencyKey(Buffer.from('BOOK  abc')), '');
    assert.equal(peekIdempotencyKey(record('BOOK  a c')), '');
  });

  describe('record splitter', () => {
    it('reassembles records cut anywhere in the stream', () => {
      fc.assert(
        fc.property(fc.array(requestArb, { minLength: 1, maxLength: 5 }), fc.array(fc.integer({ min: 1, max: 200 })), (requests, cuts) => {
          const stream = Buffer.concat(requests.map(encodeRequest));
          const split = createRecordSplitter();
          const records: Array<Buffer | ProtocolError> = [];
          let at = 0;
          for (const cut of cuts) {
            if (at >= stream.length) break;
            records.push(...split(stream.subarray(at, at + cut)));
            at += cut;
          }
          if (at < stream.length) records.push(...split(stream.subarray(at)));
          assert.deepEqual(
            records.map((r) => (r instanceof Buffer ? decodeRequest(r) : r)),
            requests.map(plain),
          );
        }),
      );
    });

    it('reports an overlong line once and resumes after its newline', () => {
      const split = createRecordSplitter();
      const first = split(Buffer.alloc(300, 'x'));
      assert.equal(first.length, 1);
      assert.ok(first[0] instanceof ProtocolError);
      assert.deepEqual(split(Buffer.alloc(300, 'y')), []);
      const [next, ...rest] = split(Buffer.concat([Buffer.from('yy\n'), encodeRequest(sampleBook)]));
      assert.deepEqual(rest, []);
      assert.ok(next instanceof Buffer);
      assert.deepEqual(decodeRequest(next), sampleBook);
    });

    it('reports an overlong line the same when its newline comes in the same chunk', () => {
      const [error, next, ...rest] = createRecordSplitter()(Buffer.concat([Buffer.alloc(300, 'x'), Buffer.from('\n'), encodeRequest(sampleBook)]));
      assert.deepEqual(rest, []);
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.message, `record is longer than ${RECORD_LENGTH} bytes`);
      assert.ok(next instanceof Buffer);
      assert.deepEqual(decodeRequest(next), sampleBook);
    });
  });
});
