import { createHmac } from 'node:crypto';

/**
 * A key for one purpose, derived from the platform's digest secret
 * (MUTUO_SUBJECT_DIGEST_SECRET): the keyed digests made for one purpose (credit inputs,
 * search keys) cannot be matched against another's, and none can be recomputed, to confirm
 * a guess, without the secret.
 */
export function purposeKey(secret: string, purpose: string): string {
  return createHmac('sha256', secret).update(`mutuo/${purpose}`, 'utf8').digest('base64');
}
