import { openTestPglite } from '../eventstore/testing.ts';
import { describeProjectorContract } from './projector.contract.ts';

describeProjectorContract('PGlite', openTestPglite, { poisonRuns: 15 });
