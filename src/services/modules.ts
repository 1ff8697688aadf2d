import { applicationModule } from './application/module.ts';
import { bankGatewayModule } from './bank-gateway/module.ts';
import { documentsModule } from './documents/module.ts';
import { notificationModule } from './notification/module.ts';
import { projectorModule, queryModule } from '../readside/module.ts';
import { scoringModule } from './scoring/module.ts';
import type { ServiceModule, ServiceName } from './service.ts';

/** Every service, by the name `mutuo <name>` starts it under. */
export const serviceModules: Readonly<Record<ServiceName, ServiceModule | undefined>> = {
  application: applicationModule,
  scoring: scoringModule,
  documents: documentsModule,
  'bank-gateway': bankGatewayModule,
  notification: notificationModule,
  projector: projectorModule,
  query: queryModule,
};
