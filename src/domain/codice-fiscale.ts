export type TaxCodeErrorReason =
  | 'LENGTH'
  | 'FORMAT'
  | 'DAY_OUT_OF_RANGE'
  | 'DATE_DOES_NOT_EXIST'
  | 'PLACE_CODE_000'
  | 'PLACE_CODE_UNKNOWN'
  | 'CHECK_CHAR_MISMATCH';

export type TaxCodeCheck =
  | {
      valid: true;
      normalized: string;
      birthDate: { yearTwoDigits: number; month: number; day: number };
      sex: 'M' | 'F';
      placeCode: string;
    }
  | { valid: false; reason: TaxCodeErrorReason; message: string };

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

const ODD_VALUES: Readonly<Record<string, number>> = {
  '0': 1,
  '1': 0,
  '2': 5,
  '3': 7,
  '4': 9,
  '5': 13,
  '6': 15,
  '7': 17,
  '8': 19,
  '9': 21,
  A: 1,
  B: 0,
  C: 5,
  D: 7,
  E: 9,
  F: 13,
  G: 15,
  H: 17,
  I: 19,
  J: 21,
  K: 2,
  L: 4,
  M: 18,
  N: 20,
  O: 11,
  P: 3,
  Q: 6,
  R: 8,
  S: 12,
  T: 14,
  U: 16,
  V: 10,
  W: 22,
  X: 25,
  Y: 24,
  Z: 23,
};

/** Omocodia letters, indexed by the digit they stand for. */
export const OMOCODIA_LETTERS = 'LMNPQRSTUV';

/** 0-based indices of the characters that are digits unless replaced by omocodia letters. */
export const OMOCODIA_POSITIONS: readonly number[] = [6, 7, 9, 10, 12, 13, 14];

/** Month letters, indexed by month - 1. */
export const MONTH_LETTERS = 'ABCDEHLMPRST';

/** A place code names an Italian municipality (A001–M999) or a foreign country (Z…). */
const PLACE_LETTERS = 'ABCDEFGHIJKLMZ';

const CODE_PATTERN = /^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$/;

function evenValue(ch: string): number {
  const code = ch.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 90) return code - 65;
  throw new RangeError(`invalid tax code character: ${JSON.stringify(ch)}`);
}

function oddValue(ch: string): number {
  const value = ODD_VALUES[ch];
  if (value === undefined) throw new RangeError(`invalid tax code character: ${JSON.stringify(ch)}`);
  return value;
}

/** Check character over the first 15 characters (uppercase A-Z / 0-9), as written. */
export function computeCheckCharacter(first15: string): string {
  if (first15.length !== 15) throw new RangeError('computeCheckCharacter expects exactly 15 characters');
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    const ch = first15[i] as string;
    // Positions are 1-based in the specification, so index 0 is an "odd" position.
    sum += i % 2 === 0 ? oddValue(ch) : evenValue(ch);
  }
  return LETTERS[sum % 26] as string;
}

function decodeOmocodia(code: string): string {
  const chars = code.split('');
  for (const pos of OMOCODIA_POSITIONS) {
    const idx = OMOCODIA_LETTERS.indexOf(chars[pos] as string);
    if (idx >= 0) chars[pos] = String(idx);
  }
  return chars.join('');
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(month: number, yearTwoDigits: number): number {
  if (month === 2) {
    // The century is unknown, so Feb 29 is allowed if either 19yy or 20yy is a leap year.
    return isLeap(1900 + yearTwoDigits) || isLeap(2000 + yearTwoDigits) ? 29 : 28;
  }
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function fail(reason: TaxCodeErrorReason, message: string): TaxCodeCheck {
  return { valid: false, reason, message };
}

export function checkTaxCode(input: string): TaxCodeCheck {
  const normalized = input.trim().toUpperCase();
  if (normalized.length !== 16) return fail('LENGTH', 'tax code must be 16 characters long');
  if (!CODE_PATTERN.test(normalized)) return fail('FORMAT', 'tax code has an invalid format');

  const decoded = decodeOmocodia(normalized);
  const yearTwoDigits = Number(decoded.slice(6, 8));
  const month = MONTH_LETTERS.indexOf(decoded[8] as string) + 1;
  const dayField = Number(decoded.slice(9, 11));

  let sex: 'M' | 'F';
  let day: number;
  if (dayField >= 1 && dayField <= 31) {
    sex = 'M';
    day = dayField;
  } else if (dayField >= 41 && dayField <= 71) {
    sex = 'F';
    day = dayField - 40;
  } else {
    return fail('DAY_OUT_OF_RANGE', 'tax code birth day is out of range');
  }

  if (day > daysInMonth(month, yearTwoDigits)) {
    return fail('DATE_DOES_NOT_EXIST', 'tax code birth date does not exist');
  }

  const placeCode = decoded.slice(11, 15);
  if (placeCode.endsWith('000')) return fail('PLACE_CODE_000', 'tax code place code is invalid');
  if (!PLACE_LETTERS.includes(placeCode[0] as string)) {
    return fail('PLACE_CODE_UNKNOWN', 'tax code place code must start with A to M (an Italian municipality) or Z (a foreign country)');
  }

  if (computeCheckCharacter(normalized.slice(0, 15)) !== normalized[15]) {
    return fail('CHECK_CHAR_MISMATCH', 'tax code check character is wrong');
  }

  return { valid: true, normalized, birthDate: { yearTwoDigits, month, day }, sex, placeCode };
}
