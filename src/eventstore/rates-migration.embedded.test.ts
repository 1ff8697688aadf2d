import { describeRatesMigration } from './rates-migration.contract.ts';
import { openTestPglite } from './testing.ts';

describeRatesMigration('PGlite', openTestPglite);
