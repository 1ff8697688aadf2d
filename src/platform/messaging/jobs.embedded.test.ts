import { openTestPglite } from '../sql/testing.ts';
import { describeJobs } from './jobs.contract.ts';

describeJobs('PGlite', openTestPglite);
