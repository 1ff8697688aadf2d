import { applicationModule } from '../features/application/module.ts';
import { bankGatewayModule } from '../features/bank-gateway/module.ts';
import { documentsModule } from '../features/documents/module.ts';
import { notificationModule } from '../features/notification/module.ts';
import { readPublishedRates } from '../features/rates/index.ts';
import { scoringModule } from '../features/scoring/module.ts';
import type { ServiceParts } from '../platform/service.ts';
import type { AppContext } from './context.ts';
import { projectorModule, queryModule } from './read-side.ts';

export const serviceNames = ['application', 'scoring', 'documents', 'bank-gateway', 'notification', 'projector', 'query'] as const;
export type ServiceName = (typeof serviceNames)[number];

/** Every service, by the name `mutuo <name>` starts it under, each given what it needs of the whole. */
export const services: Readonly<Record<ServiceName, (context: AppContext) => Promise<ServiceParts>>> = {
  application: (context) => applicationModule.start({ ...context, config: context.config.applications }),
  scoring: (context) =>
    scoringModule.start({
      ...context,
      config: context.config.scoring,
      digestSecret: context.config.privacy.subjectDigestSecret,
      publishedRateTable: async (db) => (await readPublishedRates(db)).table,
    }),
  documents: (context) => documentsModule.start({ ...context, config: context.config.documents }),
  'bank-gateway': (context) => bankGatewayModule.start({ ...context, config: context.config.gateway }),
  notification: (context) => notificationModule.start({ ...context, config: context.config.notification }),
  projector: (context) => projectorModule.start(context),
  query: (context) => queryModule.start(context),
};
