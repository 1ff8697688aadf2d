import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DomainError } from '../../domain/errors.ts';
import { freeTextFields, hostileTextIn, hostileTextInJson, textField } from './text-input.ts';

/** Every character the rule refuses in a one-line field. */
const refused = [
  ...Array.from({ length: 0x20 }, (_, code) => code),
  ...Array.from({ length: 0x21 }, (_, i) => 0x7f + i),
  0x2028,
  0x2029,
  0x202a,
  0x202b,
  0x202c,
  0x202d,
  0x202e,
  0x2066,
  0x2067,
  0x2068,
  0x2069,
  0xd800,
  0xdbff,
  0xdc00,
  0xdfff,
].map((code) => String.fromCharCode(code));
const refusedCharacter = fc.constantFrom(...refused);
/** Text of any characters but those: letters of every script, emoji (surrogate pairs), marks, symbols. */
const fineText = fc.string({ unit: 'grapheme', maxLength: 30 }).filter((text) => !refused.some((character) => text.includes(character)));

describe('the text rule', () => {
  it('refuses any text holding a control character, a bidi control, a line separator or an unpaired surrogate, naming the field', () => {
    fc.assert(
      fc.property(fineText, refusedCharacter, fineText, (before, character, after) => {
        assert.deepEqual(
          hostileTextIn({ applicant: { firstName: `${before}${character}${after}` } }, '').map((error) => error.path),
          ['applicant.firstName'],
        );
      }),
    );
  });

  it('takes any other text, in any script', () => {
    fc.assert(fc.property(fc.dictionary(fineText, fc.oneof(fineText, fc.array(fineText))), (body) => assert.deepEqual(hostileTextIn(body, ''), [])));
    assert.deepEqual(hostileTextIn({ name: "Niccolò D'Amico-Sà", city: 'Forlì', note: '€ 200.000 👍🏽' }, ''), []);
  });

  it('takes line feeds, and nothing else of the kind, in free text: notes and reasons', () => {
    for (const name of freeTextFields) {
      assert.deepEqual(hostileTextIn({ [name]: 'first line\nsecond line' }, ''), []);
      for (const character of refused.filter((c) => c !== '\n'))
        assert.equal(hostileTextIn({ [name]: `a${character}b` }, '').length, 1, JSON.stringify(character));
    }
    assert.equal(hostileTextIn({ firstName: 'a\nb' }, '').length, 1);
  });

  it('names each field by its path, in arrays and under a root, and never repeats a hostile field name back', () => {
    const errors = hostileTextIn({ fixed: [{ reason: 'ok' }, { label: 'a\u0000' }], q: ['x', 'y\u202E'], 'evil\u202Ename': 'fine' }, '');
    assert.deepEqual(errors.map((error) => error.path).sort(), ['body', 'fixed[1].label', 'q[1]']);
    assert.doesNotMatch(JSON.stringify(errors), /\u202E|evil/);
    assert.deepEqual(
      hostileTextIn({ consumer: 'a\u0000' }, 'querystring').map((error) => error.path),
      ['querystring.consumer'],
    );
    assert.deepEqual(
      hostileTextIn('a\u0000', 'headers.if-match').map((error) => error.path),
      ['headers.if-match'],
    );
  });

  it('walks a body nested deeper than a call stack goes, and names at most ten fields', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}"\\u0000"${']'.repeat(100_000)}`) as unknown;
    assert.equal(hostileTextIn(deep, '').length, 1);
    assert.equal(
      hostileTextIn(
        Array.from({ length: 1_000 }, () => '\u0000'),
        '',
      ).length,
      10,
    );
  });

  it('holds a multipart text field to the same rule', () => {
    assert.equal(textField('kind', 'payslip'), 'payslip');
    assert.throws(
      () => textField('kind', 'payslip\u0000'),
      (error: unknown) => error instanceof DomainError && error.errors[0]?.path === 'kind',
    );
  });

  it('finds in a JSON body, by its text first, exactly what the walk of its value finds', () => {
    // Strings of any code units, the refused ones among them, however JSON.stringify escapes them.
    const text = fc.string({
      unit: fc.oneof(
        fc.constantFrom(...refused, '\\', '"', '/', 'è', '€', '\u2028'),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
        fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
      ),
    });
    fc.assert(
      fc.property(fc.jsonValue(), fc.dictionary(text, text), (value, strings) => {
        for (const body of [value, strings, { note: Object.values(strings).join('\n'), nested: [strings] }]) {
          const json = JSON.stringify(body);
          assert.deepEqual(hostileTextInJson(json, JSON.parse(json)), hostileTextIn(JSON.parse(json), ''), json);
        }
      }),
      { numRuns: 500 },
    );
    assert.deepEqual(hostileTextInJson('{"amount":200000,"termYears":25,"note":"a\\\\n"}', { amount: 200000, termYears: 25, note: 'a\\n' }), []);
  });
});
