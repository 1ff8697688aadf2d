import { openTestPglite } from '../eventstore/testing.ts';
import { describeJobs } from './jobs.contract.ts';

describeJobs('PGlite', openTestPglite);
