/**
 * Who may do what: the one table every route's access is looked up in. A route names
 * its permission (`config: { permission: 'readApplication' }`); the access hook turns
 * away whoever's roles are not listed. The README carries the same table.
 */

/** `monitoring`: a monitoring system (Prometheus) that scrapes the metrics and nothing else. */
export const roles = ['applicant', 'operator', 'underwriter', 'executive', 'admin', 'monitoring'] as const;
export type Role = (typeof roles)[number];

export type Access = {
  /** Roles allowed, whatever application the request is about. */
  readonly roles: readonly Role[];
  /**
   * Applicants are allowed too, on their own applications only: the handler answers
   * 404 for anyone else's, exactly as for one that does not exist.
   */
  readonly ownApplication?: true;
};

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
  /** /metrics on the API's port (with METRICS_PORT they are served on a port of their own instead). */
  readMetrics: { roles: ['admin', 'monitoring'] },
} as const satisfies Record<string, 'public' | Access>;

export type Permission = keyof typeof permissions;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What a caller needs to reach this route (see permissions); a route without one is refused to everyone. */
    permission?: Permission;
  }
}
