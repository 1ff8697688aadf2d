import { openTestPostgres } from '../eventstore/testing.ts';
import { describeJobs } from './jobs.contract.ts';

describeJobs('PostgreSQL', () => openTestPostgres());
