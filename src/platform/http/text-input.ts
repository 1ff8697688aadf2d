import type { FastifyRequest } from 'fastify';
import { invalidInput, type FieldError } from '../../domain/errors.ts';

/**
 * What no text field takes: the C0 and C1 control characters and DEL (PostgreSQL refuses a
 * NUL, the others garble logs, terminals and mail), the line and paragraph separators, the
 * bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069: text that
 * displays other than it reads), and unpaired surrogates (no text at all: PostgreSQL refuses
 * them in JSON). With the `u` flag a surrogate pair is one character, outside the range.
 */
const forbidden = /[\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069\uD800-\uDFFF]/u;
/** The same but for the line feed, in free text that may run over several lines. */
const forbiddenInFreeText = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069\uD800-\uDFFF]/u;

/** The fields of free text, wherever they are: an operator's note, a reason. They may hold line feeds. */
export const freeTextFields: ReadonlySet<string> = new Set(['note', 'reason']);

const message = 'must not contain control characters (line breaks and tabs included), bidirectional overrides or unpaired surrogates';
const freeTextMessage = 'must not contain control characters other than line feeds, bidirectional overrides or unpaired surrogates';
const nameMessage = 'has a field name with a control character, a bidirectional override or an unpaired surrogate';

/** At most this many fields are named: a body of hostile text gets an answer of bounded size. */
const maxErrors = 10;

const pathOf = (parent: string, name: string) => (parent === '' ? name : `${parent}.${name}`);

/**
 * The fields of `value` (a parsed body, a query string, path parameters) that break the rule,
 * named under `root`. It walks with a stack of its own, not by recursion: a body may nest as
 * deep as its size allows. A field name that breaks the rule is not repeated back.
 */
export function hostileTextIn(value: unknown, root: string): FieldError[] {
  const errors: FieldError[] = [];
  const pending: { value: unknown; path: string; name: string }[] = [{ value, path: root, name: root }];
  for (let next = pending.pop(); next !== undefined && errors.length < maxErrors; next = pending.pop()) {
    const { value: current, path, name } = next;
    if (typeof current === 'string') {
      const freeText = freeTextFields.has(name);
      if ((freeText ? forbiddenInFreeText : forbidden).test(current)) errors.push({ path: path || 'body', message: freeText ? freeTextMessage : message });
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) pending.push({ value: current[i], path: `${path}[${i}]`, name });
    } else if (typeof current === 'object' && current !== null) {
      for (const [key, inner] of Object.entries(current)) {
        if (forbidden.test(key)) errors.push({ path: path || 'body', message: nameMessage });
        else pending.push({ value: inner, path: pathOf(path, key), name: key });
      }
    }
  }
  return errors;
}

/**
 * Whether a JSON text may hold a string the rule refuses: a control character can only be
 * written in JSON as an escape (a literal one is malformed JSON, refused as such), so a text
 * with no escape but \" \\ \/, and none of the other characters the rule refuses, has
 * none. Most bodies have neither: one scan of the text spares them the walk of the value.
 */
const mayHoldHostileText = /\\[^"\\/]|[\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069\uD800-\uDFFF]/u;

/** The fields of a JSON body that break the rule, given its text and the value parsed from it. */
export function hostileTextInJson(text: string, parsed: unknown): FieldError[] {
  return mayHoldHostileText.test(text) ? hostileTextIn(parsed, '') : [];
}

/** A multipart text field: its value, or a 400 naming it. */
export function textField(name: string, value: unknown): string {
  const text = String(value);
  const errors = hostileTextIn(text, name);
  if (errors.length > 0) throw invalidInput(errors);
  return text;
}

/** Whether a flat record (path parameters, a query string) may hold a field that breaks the rule: the quick test of every request. */
function mayBreak(record: unknown): boolean {
  if (typeof record !== 'object' || record === null) return false;
  for (const key in record) {
    const value = (record as Record<string, unknown>)[key];
    if (forbidden.test(key) || (typeof value === 'string' ? forbidden.test(value) : value !== undefined)) return true;
  }
  return false;
}

/**
 * The refusal of a request whose path parameters, query string or `headers` (those the
 * route declares) break the rule; undefined when they do not. It runs on every request,
 * so it walks the fields only when a quick look finds something to name.
 */
export function refusedRequestText(request: FastifyRequest, headers: readonly string[]): Error | undefined {
  if (headers.length === 0 && !mayBreak(request.params) && !mayBreak(request.query)) return undefined;
  const errors: FieldError[] = [];
  if (mayBreak(request.params)) errors.push(...hostileTextIn(request.params, 'params'));
  if (mayBreak(request.query)) errors.push(...hostileTextIn(request.query, 'querystring'));
  for (const name of headers) {
    const value = request.headers[name];
    if (value !== undefined) errors.push(...hostileTextIn(value, `headers.${name}`));
  }
  return errors.length > 0 ? invalidInput(errors) : undefined;
}
