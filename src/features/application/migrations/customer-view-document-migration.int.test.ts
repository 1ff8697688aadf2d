import { describeCustomerViewDocumentMigration } from './customer-view-document-migration.contract.ts';
import { openTestPostgres } from '../../../platform/sql/testing.ts';

describeCustomerViewDocumentMigration('PostgreSQL', () => openTestPostgres(4, { migratedThrough: 20 }));
