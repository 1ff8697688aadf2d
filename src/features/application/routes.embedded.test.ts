import { openTestPglite } from '../../platform/sql/testing.ts';
import { describeApplicationApi } from './routes.contract.ts';

describeApplicationApi('PGlite', openTestPglite);
