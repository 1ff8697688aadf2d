import { openTestPostgres } from '../../platform/sql/testing.ts';
import { describeApplicationApi } from './routes.contract.ts';

describeApplicationApi('PostgreSQL', openTestPostgres);
