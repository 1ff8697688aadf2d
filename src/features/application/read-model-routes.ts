import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { dashboard, parseDashboardQuery } from './dashboard.ts';
import { awaitPosition } from '../../platform/http/read-your-writes.ts';
import type { QueryRoutesOptions } from './query-routes.ts';
import { parseSearchQuery, searchApplications } from './search.ts';

/** The operator search and the executive dashboard. */
export const readModelRoutes: FastifyPluginAsyncTypebox<QueryRoutesOptions> = async (app, options) => {
  app.get(
    '/api/applications',
    {
      config: { permission: 'searchApplications' },
      schema: {
        summary: 'Operator search: ?q= (surname prefix or fuzzy), taxCode, status, region, page, pageSize; X-Min-Position',
        tags: ['queries'],
      },
    },
    async (request, reply) => {
      const query = parseSearchQuery(request.query as Record<string, unknown>);
      await awaitPosition(options, 'application-search', request, reply);
      return searchApplications(options.db, options.search, query);
    },
  );

  app.get(
    '/api/dashboard',
    {
      config: { permission: 'readDashboard' },
      schema: { summary: 'By region and month: counts by status, amounts, approval rate, median processing time (?from=&to= as YYYY-MM)', tags: ['queries'] },
    },
    async (request, reply) => {
      const query = parseDashboardQuery(request.query as Record<string, unknown>);
      await awaitPosition(options, 'dashboard', request, reply);
      return dashboard(options.db, query);
    },
  );
};
