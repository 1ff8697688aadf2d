import { openTestPostgres } from '../eventstore/testing.ts';
import { describePrivacyContract } from './privacy.contract.ts';

describePrivacyContract('PostgreSQL', openTestPostgres);
