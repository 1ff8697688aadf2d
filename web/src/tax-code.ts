// The server's own check of the codice fiscale, so that the form refuses what the server would.
export { checkTaxCode } from '../../src/domain/codice-fiscale.ts';
