import { describeEventStoreConformance } from './store.contract.ts';
import { openTestPglite } from '../sql/testing.ts';

describeEventStoreConformance('PGlite', openTestPglite);
