import { openTestPglite } from '../../eventstore/testing.ts';
import { describeApplicationApi } from './routes.contract.ts';

describeApplicationApi('PGlite', openTestPglite);
