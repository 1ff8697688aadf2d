import { openTestPglite } from '../platform/sql/testing.ts';
import { describePrivacyContract } from './privacy.contract.ts';

describePrivacyContract('PGlite', openTestPglite);
