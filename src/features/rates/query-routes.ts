import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { invalidInput } from '../../domain/errors.ts';
import { parseSimulationRequest, simulate, type SimulationResult } from '../../domain/simulation.ts';
import { awaitPosition, type ReadYourWrites } from '../../platform/http/read-your-writes.ts';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { publishedRates } from './read-model.ts';

const Euros = Type.Number({ description: 'euros' });
/** What simulate answers, as a schema: Fastify serializes the answer from it, and /docs shows it. */
const SimulationAnswer = Type.Unsafe<SimulationResult>(
  Type.Object({
    annualRate: Type.Number({ description: 'percent: the rate given, or the published one' }),
    installment: Type.Number({ description: 'euros a month; the last installment may differ by the rounding it absorbs' }),
    totalInterest: Euros,
    totalCost: Type.Number({ description: 'euros: interest and every fee' }),
    aprc: Type.Number({ description: 'APRC (TAEG) in percent, two decimals' }),
    schedule: Type.Optional(Type.Array(Type.Object({ period: Type.Integer(), installment: Euros, interest: Euros, principal: Euros, balance: Euros }))),
  }),
);

export type RateQueryRoutesOptions = ReadYourWrites & { readonly db: SqlQueryable };

/** The published rate table and simulations: public, rate-limited, read at the read path's speed. */
export const rateQueryRoutes: FastifyPluginAsyncTypebox<RateQueryRoutesOptions> = async (app, options) => {
  const rates = publishedRates(options.db);

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
