// The server's own check of an email address, so that the form refuses what the server would.
export { isEmailAddress } from '../../src/domain/email-address.ts';
