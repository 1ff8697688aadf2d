import { describeRatesMigration } from './rates-migration.contract.ts';
import { openTestPostgres } from '../../platform/sql/testing.ts';

describeRatesMigration('PostgreSQL', () => openTestPostgres(20, { migratedThrough: 20 }));
