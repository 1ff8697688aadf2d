import { openTestPglite } from '../sql/testing.ts';
import { describeProjectorContract } from './projector.contract.ts';

describeProjectorContract('PGlite', openTestPglite, { poisonRuns: 15 });
