import { openTestPostgres } from '../platform/sql/testing.ts';
import { describePrivacyContract } from './privacy.contract.ts';

describePrivacyContract('PostgreSQL', openTestPostgres);
