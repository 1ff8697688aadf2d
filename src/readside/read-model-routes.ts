import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { invalidInput } from '../domain/errors.ts';
import { parseSimulationRequest, simulate } from '../domain/simulation.ts';
import { dashboard, parseDashboardQuery } from './dashboard.ts';
import { awaitPosition, type QueryRoutesOptions } from './query-routes.ts';
import { publishedRates } from './rates.ts';
import { parseSearchQuery, searchApplications } from './search.ts';

/** The operator search, the executive dashboard, the rate table and simulations. */
export const readModelRoutes: FastifyPluginAsyncTypebox<QueryRoutesOptions> = async (app, options) => {
  const rates = publishedRates(options.db);

  app.get(
    '/api/applications',
    {
      schema: {
        summary: 'Operator search: ?q= (surname prefix or fuzzy), taxCode, status, region, page, pageSize; X-Min-Position',
        tags: ['queries'],
      },
    },
    async (request, reply) => {
      const query = parseSearchQuery(request.query as Record<string, unknown>);
      await awaitPosition(options, 'application-search', request, reply);
      return searchApplications(options.db, query);
    },
  );

  app.get(
    '/api/dashboard',
    { schema: { summary: 'By region and month: counts by status, amounts, approval rate, median processing time (?from=&to= as YYYY-MM)', tags: ['queries'] } },
    async (request, reply) => {
      const query = parseDashboardQuery(request.query as Record<string, unknown>);
      await awaitPosition(options, 'dashboard', request, reply);
      return dashboard(options.db, query);
    },
  );

  app.get('/api/rates', { schema: { summary: 'The published rate table', tags: ['queries'] } }, async (request, reply) => {
    const waited = await awaitPosition(options, 'rates', request, reply);
    const current = await rates.current(waited);
    return reply.header('etag', `"${current.version}"`).send(rates.view(current));
  });

  app.post(
    '/api/simulations',
    { schema: { summary: 'Installment, total interest, total cost, APRC and (schedule: true) the amortization schedule', tags: ['queries'] } },
    async (request) => {
      const parsed = parseSimulationRequest(request.body);
      if (!parsed.ok) throw invalidInput(parsed.errors);
      return simulate(parsed.value, (await rates.current()).table);
    },
  );
};
