import { openTestPostgres } from '../sql/testing.ts';
import { describeJobs } from './jobs.contract.ts';

describeJobs('PostgreSQL', () => openTestPostgres());
