import { describeRatesMigration } from './rates-migration.contract.ts';
import { openTestPostgres } from './testing.ts';

describeRatesMigration('PostgreSQL', () => openTestPostgres());
