// The server's own readers of an amount and of a rate, so that a page reads a field as the
// server's rules would, and shows the value it is about to send beside the field.
import { readAnnualRate } from '../../src/domain/annual-rate.ts';
import { readItalianEuros } from '../../src/domain/money.ts';
import { euros } from './parts.tsx';

/** What a field's text reads as: the number to send and how it shows, or why it reads as nothing. */
export type Reading = { readonly value: number; readonly shown: string } | { readonly problem: string };

/** Euros written the Italian way: "200.000" is two hundred thousand, "3.200,50" is 3200.50. */
export function readAmount(text: string): Reading {
  const read = readItalianEuros(text);
  return 'cents' in read ? { value: read.cents / 100, shown: euros(read.cents / 100) } : read;
}

/** A percentage with up to four decimals, after a comma or a dot: "3,875". */
export function readRate(text: string): Reading {
  const read = readAnnualRate(text);
  return 'rate' in read ? { value: Number(read.rate), shown: `${read.rate.replace('.', ',')} %` } : read;
}

/** The number a reading gives; NaN for none, which the server refuses naming the field. */
export const numberOf = (reading: Reading): number => ('value' in reading ? reading.value : Number.NaN);

/** Beside a field, as it is typed: "= 200.000,00 €", or why the text is not a value. Nothing while it is empty. */
export function ReadAs({ text, reading, testId }: { text: string; reading: Reading; testId: string }) {
  if (text.trim() === '') return null;
  return 'shown' in reading ? (
    <small className="muted" data-testid={testId}>
      = {reading.shown}
    </small>
  ) : (
    <small className="error" data-testid={testId}>
      {reading.problem}
    </small>
  );
}
