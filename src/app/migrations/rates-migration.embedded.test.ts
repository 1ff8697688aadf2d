import { describeRatesMigration } from './rates-migration.contract.ts';
import { openTestPglite } from '../../platform/sql/testing.ts';

describeRatesMigration('PGlite', () => openTestPglite({ migratedThrough: 20 }));
