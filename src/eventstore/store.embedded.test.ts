import { describeEventStoreConformance } from './conformance.ts';
import { openTestPglite } from './testing.ts';

describeEventStoreConformance('PGlite', openTestPglite);
