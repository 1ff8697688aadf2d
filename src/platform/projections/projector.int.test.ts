import { openTestPostgres } from '../sql/testing.ts';
import { describeProjectorContract } from './projector.contract.ts';

describeProjectorContract('PostgreSQL', () => openTestPostgres(4), { poisonRuns: 10, killsConnections: true });
