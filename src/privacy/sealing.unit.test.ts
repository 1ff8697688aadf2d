import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isSealed, SealError, sealBytes, sealedBytesSubject, sealedSubject, sealValue, unsealBytes, unsealValue, type Sealed } from './sealing.ts';

const key = randomBytes(32);
const subjectId = randomUUID();
const applicant = { firstName: 'Giulia', lastName: 'Bianchi', taxCode: 'BNCGLI90C55F205Z', email: 'giulia.bianchi@example.it' };

/** The sealed value with one byte of its ciphertext (or tag) changed. */
function withFlippedByte(sealed: Sealed, index: number): Sealed {
  const [version, subject, iv, body] = sealed.$sealed.split('.');
  const bytes = Buffer.from(body!, 'base64url');
  const at = index % bytes.length;
  bytes[at] = bytes[at]! ^ 0x01;
  return { $sealed: `${version}.${subject}.${iv}.${bytes.toString('base64url')}` };
}

describe('sealValue and unsealValue', () => {
  it('opens what it sealed', () => {
    const sealed = sealValue(key, subjectId, applicant);
    assert.deepEqual(unsealValue(key, sealed), applicant);
  });

  it('gives back any JSON value it sealed', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        // JSON itself writes -0 as 0: what a round trip through JSON gives is what unsealing must give.
        assert.deepEqual(unsealValue(key, sealValue(key, subjectId, value)), JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('writes the format v1.<subject>.<12-byte IV>.<ciphertext and 16-byte tag>', () => {
    const sealed = sealValue(key, subjectId, 'Giulia');
    const [version, subject, iv, body] = sealed.$sealed.split('.');
    assert.equal(version, 'v1');
    assert.equal(subject, subjectId);
    assert.equal(Buffer.from(iv!, 'base64url').length, 12);
    assert.equal(Buffer.from(body!, 'base64url').length, JSON.stringify('Giulia').length + 16);
    assert.equal(sealedSubject(sealed), subjectId);
  });

  it('refuses a sealed value with any byte of its ciphertext or tag changed', () => {
    const sealed = sealValue(key, subjectId, applicant);
    const bodyLength = Buffer.from(sealed.$sealed.split('.')[3]!, 'base64url').length;
    fc.assert(
      fc.property(fc.nat({ max: bodyLength - 1 }), (index) => {
        assert.throws(() => unsealValue(key, withFlippedByte(sealed, index)), SealError);
      }),
    );
  });

  it('refuses a changed IV', () => {
    const sealed = sealValue(key, subjectId, applicant);
    const [version, subject, iv, body] = sealed.$sealed.split('.');
    const bytes = Buffer.from(iv!, 'base64url');
    bytes[0] = bytes[0]! ^ 0x80;
    assert.throws(() => unsealValue(key, { $sealed: `${version}.${subject}.${bytes.toString('base64url')}.${body}` }), SealError);
  });

  it('refuses a sealed value moved under another subject', () => {
    const sealed = sealValue(key, subjectId, applicant);
    const moved = { $sealed: sealed.$sealed.replace(subjectId, randomUUID()) };
    assert.throws(() => unsealValue(key, moved), SealError);
  });

  it('refuses another key', () => {
    const sealed = sealValue(key, subjectId, applicant);
    assert.throws(() => unsealValue(randomBytes(32), sealed), SealError);
    assert.throws(() => unsealValue(randomBytes(16), sealed), SealError);
  });

  it('refuses malformed sealed text', () => {
    for (const text of ['v1', 'v1.subject', `v1.${subjectId}.AAAA.AAAA`, `v2.${subjectId}.a.b`, `v1.${subjectId}.!!!.???`, 'v1...']) {
      assert.throws(() => unsealValue(key, { $sealed: text }), SealError, text);
    }
  });

  it('seals the same value differently each time', () => {
    const first = sealValue(key, subjectId, applicant);
    const second = sealValue(key, subjectId, applicant);
    assert.notEqual(first.$sealed, second.$sealed);
    assert.deepEqual(unsealValue(key, second), unsealValue(key, first));
  });

  it('leaves none of the plaintext in the sealed text', () => {
    const text = JSON.stringify(sealValue(key, subjectId, applicant)).toLowerCase();
    for (const plain of Object.values(applicant)) assert.ok(!text.includes(plain.toLowerCase()), plain);
  });

  it('refuses a key that is not 32 bytes, a subject id with a dot, and what JSON cannot hold', () => {
    assert.throws(() => sealValue(randomBytes(31), subjectId, 1), SealError);
    assert.throws(() => sealValue(key, 'a.b', 1), SealError);
    assert.throws(() => sealValue(key, subjectId, undefined), SealError);
  });
});

describe('isSealed', () => {
  it('knows a sealed value', () => {
    assert.equal(isSealed(sealValue(key, subjectId, 'x')), true);
    assert.equal(isSealed(JSON.parse(JSON.stringify(sealValue(key, subjectId, 'x')))), true);
  });

  it('knows plain data from a sealed value', () => {
    for (const value of [null, 'v1.x', ['v1.x'], {}, { $sealed: 1 }, { $sealed: 'v2.x' }, { $sealed: 'v1.x', other: 1 }, { sealed: 'v1.x' }]) {
      assert.equal(isSealed(value), false, JSON.stringify(value));
    }
  });
});

describe('sealBytes and unsealBytes', () => {
  it('gives back any bytes it sealed, and names their subject', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const sealed = sealBytes(key, subjectId, bytes);
        assert.equal(sealedBytesSubject(sealed), subjectId);
        assert.deepEqual(new Uint8Array(unsealBytes(key, sealed)), bytes);
      }),
    );
  });

  it('hides the content: the plaintext is nowhere in the sealed bytes', () => {
    const text = Buffer.from('%PDF-1.4 Giulia Bianchi BNCGLI90C55F205Z', 'utf8');
    const sealed = Buffer.from(sealBytes(key, subjectId, text));
    assert.equal(sealed.indexOf('Bianchi'), -1);
    assert.equal(sealed.indexOf('BNCGLI90C55F205Z'), -1);
  });

  it('refuses any byte changed, another key, and bytes that are not sealed', () => {
    const sealed = sealBytes(key, subjectId, Buffer.from('a document'));
    fc.assert(
      fc.property(fc.nat(), (index) => {
        const altered = Buffer.from(sealed);
        const at = index % altered.length;
        altered[at] = altered[at]! ^ 0x01;
        // A change in the header may make it no sealed file at all, or another subject's: refused either way.
        assert.throws(() => unsealBytes(key, altered), SealError);
      }),
    );
    assert.throws(() => unsealBytes(randomBytes(32), sealed), SealError);
    assert.equal(sealedBytesSubject(Buffer.from('%PDF-1.4 plain')), undefined);
    assert.throws(() => unsealBytes(key, Buffer.from('%PDF-1.4 plain')), SealError);
  });
});
