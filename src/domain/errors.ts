/** A field that is wrong, named by its path in the request (`applicant.taxCode`). */
export type FieldError = { readonly path: string; readonly message: string };

/**
 * How a broken rule answers: `invalid` input (400), `not_found` (404), `conflict`
 * with the current state (409), or a `rule` the current state forbids (422); and, for
 * access, `unauthenticated` (401: no valid identity) or `forbidden` (403: a role that may not).
 */
export type DomainErrorKind = 'invalid' | 'not_found' | 'conflict' | 'rule' | 'unauthenticated' | 'forbidden';

/** A business rule refused a command. `code` is stable: clients may switch on it. */
export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    readonly code: string,
    message: string,
    readonly errors: readonly FieldError[] = [],
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export function invalidInput(errors: readonly FieldError[]): DomainError {
  const message = errors.length === 1 ? `${errors[0]!.path}: ${errors[0]!.message}` : `${errors.length} fields are invalid`;
  return new DomainError('invalid', 'INVALID_INPUT', message, errors);
}

export function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
