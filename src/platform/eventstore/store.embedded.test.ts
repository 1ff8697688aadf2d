import { describeEventStoreConformance } from './conformance.ts';
import { openTestPglite } from '../sql/testing.ts';

describeEventStoreConformance('PGlite', openTestPglite);
