import { openTestPostgres } from '../../eventstore/testing.ts';
import { describeApplicationApi } from './routes.contract.ts';

describeApplicationApi('PostgreSQL', openTestPostgres);
