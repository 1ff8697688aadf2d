/** Characters a local part may hold outside quotes (RFC 5322 atext), in runs separated by single dots. */
const atom = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
/** A domain label: letters, digits and inner hyphens (an internationalized name in its xn-- form). */
const label = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const addrSpec = new RegExp(`^${atom}(?:\\.${atom})*@${label}(?:\\.${label})+$`);

/** The longest address SMTP carries, and the longest local part (RFC 5321). */
export const maxEmailLength = 254;
const maxLocalPartLength = 64;

/**
 * Whether `text` is a bare address (an addr-spec in dot-atom form): `name@example.com`, no
 * display name, angle brackets, quotes, comments, whitespace, control characters or list
 * separators, so that nothing reading it (a mailer above all) can find another recipient in it.
 */
export function isEmailAddress(text: string): boolean {
  return text.length <= maxEmailLength && text.indexOf('@') <= maxLocalPartLength && addrSpec.test(text);
}
