import type { Access as HttpAccess, AccessTable } from '../platform/http/identity.ts';

/**
 * Who may do what: the one table every route's access is looked up in. A route names
 * its permission (`config: { permission: 'readApplication' }`); the access hook turns
 * away whoever's roles are not listed. The README carries the same table.
 */

/** `monitoring`: a monitoring system (Prometheus) that scrapes the metrics and nothing else. */
export const roles = ['applicant', 'operator', 'underwriter', 'executive', 'admin', 'monitoring'] as const;
export type Role = (typeof roles)[number];

/** Who a permission lets in: the HTTP layer's Access, with the roles that exist. */
export type Access = HttpAccess & { readonly roles: readonly Role[] };

/** `public`: no identity needed (comparators and portals call these anonymously; they are rate-limited). */
export const permissions = {
  public: 'public',
  /** Any authenticated caller: who am I. */
  identify: { roles: ['applicant', 'operator', 'underwriter', 'executive', 'admin', 'monitoring'] },
  submitApplication: { roles: ['applicant'] },
  readApplication: { roles: ['operator', 'underwriter', 'admin'], ownApplication: true },
  followApplication: { roles: ['operator', 'underwriter'], ownApplication: true },
  readAuditTrail: { roles: ['operator', 'underwriter', 'admin'] },
  searchApplications: { roles: ['operator', 'underwriter'] },
  approveIncome: { roles: ['operator', 'underwriter'] },
  changeRate: { roles: ['operator', 'underwriter'] },
  lockRate: { roles: ['operator', 'underwriter'], ownApplication: true },
  updateProperty: { roles: ['operator'], ownApplication: true },
  uploadDocument: { roles: ['operator'], ownApplication: true },
  withdrawApplication: { roles: ['operator'], ownApplication: true },
  readNotifications: { roles: ['operator', 'admin'], ownApplication: true },
  publishRates: { roles: ['operator', 'admin'] },
  readDashboard: { roles: ['executive', 'admin'] },
  operateDeadLetters: { roles: ['admin'] },
  operateProjections: { roles: ['admin'] },
  erasePersonalData: { roles: ['admin'] },
  /** Registering schemas and setting compatibility levels in the schema registry (/registry); reading it is public. */
  operateSchemaRegistry: { roles: ['admin'] },
  /** /metrics on the API's port (with METRICS_PORT they are served on a port of their own instead). */
  readMetrics: { roles: ['admin', 'monitoring'] },
} as const satisfies Record<string, 'public' | Access>;

export type Permission = keyof typeof permissions;

/** The table as the server looks a route's permission up in it: a name it lacks lets no one in. */
export const accessTable: AccessTable = (permission) => (Object.hasOwn(permissions, permission) ? permissions[permission as Permission] : undefined);
