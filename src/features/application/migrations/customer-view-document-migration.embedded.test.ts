import { describeCustomerViewDocumentMigration } from './customer-view-document-migration.contract.ts';
import { openTestPglite } from '../../../platform/sql/testing.ts';

describeCustomerViewDocumentMigration('PGlite', () => openTestPglite({ migratedThrough: 20 }));
