import type { SqlClient } from '../sql/sql-client.ts';
import { sqlSubjectKeys } from '../../privacy/subject-keys.ts';
import { createPersonalDataVault, type PersonalDataVault } from '../../privacy/vault.ts';
import { platformEventHistory } from '../../app/catalog.ts';
import { createUnitOfWork, type UnitOfWork } from './session.ts';
import { SqlEventStore } from './store.ts';

/** The digest secret of the tests' vaults (the search's keys are made with it too). */
export const testDigestSecret = 'a test digest secret of 32 chars.';

/** The vault as the platform has it, on the test's database. */
export const testVault = (client: SqlClient): PersonalDataVault =>
  createPersonalDataVault({ keys: sqlSubjectKeys(client, { digestSecret: testDigestSecret }), definitions: platformEventHistory });

/** The event store as the platform has it: personal data sealed. */
export function sealingStore(client: SqlClient): SqlEventStore {
  return new SqlEventStore(client, { personalData: testVault(client) });
}

/** Sessions as the platform opens them, on the test's database; `onCommit` sees what each commit signalled. */
export function testSessions(client: SqlClient, onCommit?: (signals: ReadonlySet<string>) => void): UnitOfWork {
  return createUnitOfWork({ client, personalData: testVault(client), ...(onCommit ? { onCommit } : {}) });
}
