import { openTestPglite } from '../../platform/sql/testing.ts';
import { describeReadModelsContract } from './read-models.contract.ts';

describeReadModelsContract('PGlite', openTestPglite, { splitRuns: 30 });
