import { openTestPglite } from '../eventstore/testing.ts';
import { describeReadModelsContract } from './read-models.contract.ts';

describeReadModelsContract('PGlite', openTestPglite, { splitRuns: 30 });
