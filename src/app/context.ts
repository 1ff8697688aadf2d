import type { ViewCache } from '../features/application/customer-view.ts';
import type { ServiceContext } from '../platform/service.ts';
import type { PersonalDataVault } from '../privacy/vault.ts';
import type { Config } from './config.ts';

/** What the composition root has for the services: the platform's context, the whole configuration, the vault, the customer view's hot copy. */
export type AppContext = ServiceContext & {
  readonly config: Config;
  readonly personalData: PersonalDataVault;
  /** The customer view's hot copy, shared by the projector and the query API of this process. */
  readonly viewCache: ViewCache | undefined;
};

/** What the read side's services (the projector, the query API) need beside the platform's context. */
export type ReadSideNeeds = Omit<AppContext, keyof ServiceContext>;
