import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { checkTaxCode, computeCheckCharacter, MONTH_LETTERS, OMOCODIA_LETTERS, OMOCODIA_POSITIONS } from './codice-fiscale.ts';
import type { TaxCodeErrorReason } from './codice-fiscale.ts';

type Fixture = {
  valid: { code: string; kind: string; person: { dob: string; sex: 'M' | 'F'; place: string } | null }[];
  invalid: { code: string; reason: TaxCodeErrorReason }[];
};

const fixture = JSON.parse(readFileSync(new URL('../../test/fixtures/codice-fiscale.json', import.meta.url), 'utf8')) as Fixture;

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function maxDay(month: number, yy: number): number {
  if (month === 2) return isLeap(1900 + yy) || isLeap(2000 + yy) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

type Generated = {
  code: string;
  yy: number;
  month: number;
  day: number;
  sex: 'M' | 'F';
  placeCode: string;
};

const letterArb = fc.constantFrom(...LETTERS.split(''));
/** Place codes start with A–M (an Italian municipality) or Z (a foreign country); no other letter names a place. */
const PLACE_LETTERS = 'ABCDEFGHIJKLMZ';
const placeLetterArb = fc.constantFrom(...PLACE_LETTERS.split(''));
const noPlaceLetterArb = fc.constantFrom(...LETTERS.split('').filter((letter) => !PLACE_LETTERS.includes(letter)));

const validCodeArb: fc.Arbitrary<Generated> = fc
  .record({
    name: fc.array(letterArb, { minLength: 6, maxLength: 6 }).map((a) => a.join('')),
    yy: fc.integer({ min: 0, max: 99 }),
    month: fc.integer({ min: 1, max: 12 }),
    dayFraction: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    sex: fc.constantFrom<'M' | 'F'>('M', 'F'),
    placeLetter: placeLetterArb,
    placeNumber: fc.integer({ min: 1, max: 999 }),
  })
  .map(({ name, yy, month, dayFraction, sex, placeLetter, placeNumber }) => {
    const day = 1 + Math.floor(dayFraction * maxDay(month, yy));
    const placeCode = placeLetter + pad(placeNumber, 3);
    const first15 = name + pad(yy, 2) + MONTH_LETTERS[month - 1] + pad(sex === 'F' ? day + 40 : day, 2) + placeCode;
    return { code: first15 + computeCheckCharacter(first15), yy, month, day, sex, placeCode };
  });

function applyOmocodia(code: string, positions: readonly number[]): string {
  const chars = code.slice(0, 15).split('');
  for (const pos of positions) chars[pos] = OMOCODIA_LETTERS[Number(chars[pos])] as string;
  const first15 = chars.join('');
  return first15 + computeCheckCharacter(first15);
}

function assertDecodes(code: string, expected: Generated): void {
  const result = checkTaxCode(code);
  assert.ok(result.valid, `${code} should be valid: ${JSON.stringify(result)}`);
  assert.deepEqual(result.birthDate, { yearTwoDigits: expected.yy, month: expected.month, day: expected.day });
  assert.equal(result.sex, expected.sex);
  assert.equal(result.placeCode, expected.placeCode);
}

describe('checkTaxCode: fixture vectors', () => {
  for (const v of fixture.valid) {
    it(`accepts ${v.code} (${v.kind})`, () => {
      const result = checkTaxCode(v.code);
      assert.ok(result.valid, JSON.stringify(result));
      assert.equal(result.normalized, v.code);
      if (v.person !== null) {
        const [year, month, day] = v.person.dob.split('-').map(Number) as [number, number, number];
        assert.deepEqual(result.birthDate, { yearTwoDigits: year % 100, month, day });
        assert.equal(result.sex, v.person.sex);
        assert.equal(result.placeCode, v.person.place);
      }
    });
  }

  it('decodes omocodic vectors to the same person as the plain code', () => {
    const plain = checkTaxCode('BNCGLI90C55F205Z');
    assert.ok(plain.valid);
    for (const code of ['BNCGLI90C55F20RU', 'BNCGLI90CRRFNLRB']) {
      const result = checkTaxCode(code);
      assert.ok(result.valid);
      assert.deepEqual(result.birthDate, plain.birthDate);
      assert.equal(result.sex, plain.sex);
      assert.equal(result.placeCode, plain.placeCode);
    }
  });

  for (const v of fixture.invalid) {
    it(`rejects ${v.code} with ${v.reason}`, () => {
      const result = checkTaxCode(v.code);
      assert.ok(!result.valid);
      assert.equal(result.reason, v.reason);
      assert.ok(result.message.length > 0);
    });
  }
});

describe('checkTaxCode: edge cases', () => {
  const withCheck = (first15: string): string => first15 + computeCheckCharacter(first15);

  it('trims and uppercases', () => {
    const result = checkTaxCode('  bncgli90c55f205z \n');
    assert.ok(result.valid);
    assert.equal(result.normalized, 'BNCGLI90C55F205Z');
  });

  it('accepts Feb 29 when either century makes the year leap', () => {
    assert.ok(checkTaxCode(withCheck('RSSMRA00B29H501')).valid); // 2000
    assert.ok(checkTaxCode(withCheck('RSSMRA04B29H501')).valid);
    assert.ok(checkTaxCode(withCheck('RSSMRA96B69H501')).valid);
  });

  it('rejects Feb 29 in a year that is leap in neither century', () => {
    const result = checkTaxCode(withCheck('RSSMRA01B29H501'));
    assert.ok(!result.valid);
    assert.equal(result.reason, 'DATE_DOES_NOT_EXIST');
  });

  it('rejects Apr 31 and day 00 / 40 / 72', () => {
    const reasonOf = (first15: string): string | undefined => {
      const r = checkTaxCode(withCheck(first15));
      return r.valid ? undefined : r.reason;
    };
    assert.equal(reasonOf('RSSMRA80D31H501'), 'DATE_DOES_NOT_EXIST');
    assert.equal(reasonOf('RSSMRA80D71H501'), 'DATE_DOES_NOT_EXIST');
    assert.equal(reasonOf('RSSMRA80A00H501'), 'DAY_OUT_OF_RANGE');
    assert.equal(reasonOf('RSSMRA80A40H501'), 'DAY_OUT_OF_RANGE');
    assert.equal(reasonOf('RSSMRA80A72H501'), 'DAY_OUT_OF_RANGE');
  });

  it('rejects an omocodic place code that decodes to 000', () => {
    const result = checkTaxCode(withCheck('RSSMRA80A01HLLL'));
    assert.ok(!result.valid);
    assert.equal(result.reason, 'PLACE_CODE_000');
  });

  it('rejects non-omocodia letters in digit positions', () => {
    const result = checkTaxCode('RSSMRA8AA01H501X');
    assert.ok(!result.valid);
    assert.equal(result.reason, 'FORMAT');
  });
});

describe('checkTaxCode: properties', () => {
  it('generated valid codes are valid and decode back', () => {
    fc.assert(
      fc.property(validCodeArb, (g) => {
        const result = checkTaxCode(g.code);
        assert.ok(result.valid);
        assert.equal(result.normalized, g.code);
        assertDecodes(g.code, g);
      }),
    );
  });

  it('omocodia substitution on any subset of digit positions keeps the code valid with the same data', () => {
    fc.assert(
      fc.property(validCodeArb, fc.subarray([...OMOCODIA_POSITIONS]), (g, positions) => {
        const omocodic = applyOmocodia(g.code, positions);
        for (const pos of positions) assert.ok(OMOCODIA_LETTERS.includes(omocodic[pos] as string));
        assertDecodes(omocodic, g);
      }),
    );
  });

  it('any other check letter gives CHECK_CHAR_MISMATCH', () => {
    fc.assert(
      fc.property(validCodeArb, fc.subarray([...OMOCODIA_POSITIONS]), letterArb, (g, positions, letter) => {
        const code = applyOmocodia(g.code, positions);
        fc.pre(letter !== code[15]);
        const result = checkTaxCode(code.slice(0, 15) + letter);
        assert.ok(!result.valid);
        assert.equal(result.reason, 'CHECK_CHAR_MISMATCH');
      }),
    );
  });

  it('a place code starting with N to Y gives PLACE_CODE_UNKNOWN, omocodic or not', () => {
    fc.assert(
      fc.property(validCodeArb, fc.subarray([...OMOCODIA_POSITIONS]), noPlaceLetterArb, (g, positions, letter) => {
        const moved = g.code.slice(0, 11) + letter + g.code.slice(12, 15);
        const code = applyOmocodia(moved + computeCheckCharacter(moved), positions);
        const result = checkTaxCode(code);
        assert.ok(!result.valid, code);
        assert.equal(result.reason, 'PLACE_CODE_UNKNOWN');
      }),
    );
  });

  it('lowercase input is accepted and normalized to uppercase', () => {
    fc.assert(
      fc.property(validCodeArb, fc.subarray([...OMOCODIA_POSITIONS]), (g, positions) => {
        const code = applyOmocodia(g.code, positions);
        const result = checkTaxCode(code.toLowerCase());
        assert.ok(result.valid);
        assert.equal(result.normalized, code);
        assertDecodes(code.toLowerCase(), g);
      }),
    );
  });
});
