import { openTestPostgres } from '../../platform/sql/testing.ts';
import { describeReadModelsContract } from './read-models.contract.ts';

describeReadModelsContract('PostgreSQL', () => openTestPostgres(4), { splitRuns: 10 });
