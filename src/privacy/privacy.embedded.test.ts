import { openTestPglite } from '../eventstore/testing.ts';
import { describePrivacyContract } from './privacy.contract.ts';

describePrivacyContract('PGlite', openTestPglite);
