import { applicationModule } from '../features/application/module.ts';
import { bankGatewayModule } from '../features/bank-gateway/module.ts';
import { documentsModule } from '../features/documents/module.ts';
import { notificationModule } from '../features/notification/module.ts';
import { scoringModule } from '../features/scoring/module.ts';
import type { ConsumerTopology } from '../platform/messaging/bus.ts';
import type { ServiceModule, ServiceParts } from '../platform/service.ts';
import type { AppContext } from './context.ts';
import { projectorModule, queryModule } from './read-side.ts';

export const serviceNames = ['application', 'scoring', 'documents', 'bank-gateway', 'notification', 'projector', 'query'] as const;
export type ServiceName = (typeof serviceNames)[number];

/** Every service, by the name `mutuo <name>` starts it under, each given what it needs of the whole. */
export const services: Readonly<Record<ServiceName, (context: AppContext) => Promise<ServiceParts>>> = {
  application: (context) => applicationModule.start({ ...context, config: context.config.applications }),
  scoring: (context) => scoringModule.start({ ...context, config: context.config.scoring, digestSecret: context.config.privacy.subjectDigestSecret }),
  documents: (context) => documentsModule.start({ ...context, config: context.config.documents }),
  'bank-gateway': (context) => bankGatewayModule.start({ ...context, config: context.config.gateway }),
  notification: (context) => notificationModule.start({ ...context, config: context.config.notification }),
  projector: (context) => projectorModule.start(context),
  query: (context) => queryModule.start(context),
};

/** The services with a consumer of their own, by name. */
const consuming: Readonly<Partial<Record<ServiceName, ServiceModule<never>>>> = {
  application: applicationModule,
  scoring: scoringModule,
  documents: documentsModule,
  'bank-gateway': bankGatewayModule,
  notification: notificationModule,
};

/** The consumers of these services, by name and the event types they take, as the bus declares them. */
export function consumerTopologies(names: readonly ServiceName[]): ConsumerTopology[] {
  return names.flatMap((name) => {
    const consumes = consuming[name]?.consumes;
    return consumes ? [{ consumer: consumes.name, eventTypes: consumes.events.map((event) => event.type) }] : [];
  });
}
