import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { invalidInput } from '../../domain/errors.ts';
import { parseSimulationRequest, simulate, type SimulationResult } from '../../domain/simulation.ts';
import { dashboard, parseDashboardQuery } from './dashboard.ts';
import { awaitPosition, type QueryRoutesOptions } from './query-routes.ts';
import { publishedRates } from '../rates/read-model.ts';
import { parseSearchQuery, searchApplications } from './search.ts';

const Euros = Type.Number({ description: 'euros' });
/** What simulate answers, as a schema: Fastify serializes the answer from it, and /docs shows it. */
const SimulationAnswer = Type.Unsafe<SimulationResult>(Type.Object({
  annualRate: Type.Number({ description: 'percent: the rate given, or the published one' }),
  installment: Type.Number({ description: 'euros a month; the last installment may differ by the rounding it absorbs' }),
  totalInterest: Euros,
  totalCost: Type.Number({ description: 'euros: interest and every fee' }),
  aprc: Type.Number({ description: 'APRC (TAEG) in percent, two decimals' }),
  schedule: Type.Optional(
    Type.Array(Type.Object({ period: Type.Integer(), installment: Euros, interest: Euros, principal: Euros, balance: Euros })),
  ),
}));

/** The operator search, the executive dashboard, the rate table and simulations. */
export const readModelRoutes: FastifyPluginAsyncTypebox<QueryRoutesOptions> = async (app, options) => {
  const rates = publishedRates(options.db);

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

  app.get('/api/rates', { config: { permission: 'public' }, schema: { summary: 'The published rate table', tags: ['queries'] } }, async (request, reply) => {
    const waited = await awaitPosition(options, 'rates', request, reply);
    const current = await rates.current(waited);
    return reply.header('etag', `"${current.version}"`).send(rates.view(current));
  });

  app.post(
    '/api/simulations',
    {
      config: { permission: 'public' },
      schema: {
        summary: 'Installment, total interest, total cost, APRC and (schedule: true) the amortization schedule',
        tags: ['queries'],
        response: { 200: SimulationAnswer },
      },
    },
    // Not async: while the rate table in memory is fresh the whole request is synchronous, which
    // spares a promise and a turn of the microtask queue to every simulation (the read path's figure).
    (request, reply) => {
      const parsed = parseSimulationRequest(request.body);
      if (!parsed.ok) throw invalidInput(parsed.errors);
      const input = parsed.value;
      const published = rates.inMemory();
      if (published) {
        reply.send(simulate(input, published.table));
        return;
      }
      return rates.current().then((current) => simulate(input, current.table));
    },
  );
};
