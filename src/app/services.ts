import { applicationModule } from '../features/application/module.ts';
import { bankGatewayModule } from '../features/bank-gateway/module.ts';
import { documentsModule } from '../features/documents/module.ts';
import { notificationModule } from '../features/notification/module.ts';
import { projectorModule, queryModule } from './read-side.ts';
import { scoringModule } from '../features/scoring/module.ts';
import type { ServiceModule, ServiceName } from '../platform/service.ts';

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
