import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf } from '../../platform/http/access.ts';
import { ifMatchVersion } from '../../platform/http/request-input.ts';
import type { RateTable } from '../../domain/rates.ts';
import type { EventStore } from '../../platform/eventstore/types.ts';
import { stampEvents } from '../../platform/service.ts';
import { rateEventCatalog, rateTableStreamId } from './events.ts';
import { parseRateTable, rateTableView } from './rate-table.ts';

export type RateRoutesOptions = {
  readonly store: EventStore;
  readonly clock: () => Date;
  readonly newId: () => string;
  /** Called with the new table once it is stored. */
  readonly published: (table: RateTable) => void;
};

/** The operator's command on the rate table: publish a new one (an event on the `rate-table` stream). */
export const rateRoutes: FastifyPluginAsyncTypebox<RateRoutesOptions> = async (app, { store, clock, newId, published }) => {
  app.put(
    '/api/rates',
    {
      config: { permission: 'publishRates' },
      schema: {
        summary: 'Publish a new rate table (operator); If-Match: "<version>" publishes only over that version',
        tags: ['commands'],
        headers: Type.Object({ 'if-match': Type.Optional(Type.String()) }),
      },
    },
    async (request, reply) => {
      const { bands, reason } = parseRateTable(request.body);
      const version = ifMatchVersion(request);
      const now = clock();
      const event = { type: 'RateTablePublished', data: { bands, reason, publishedAt: now.toISOString() } };
      // Version 0 is the default table, before any was published. A conflict answers 409 with the current version.
      const result = await store.appendToStream(
        rateTableStreamId,
        stampEvents(rateEventCatalog, [event], { correlationId: request.id, causationId: null }, actorOf(request), now, newId),
        version === undefined ? 'any' : version === 0 ? 'no_stream' : version,
      );
      const table = { publishedAt: event.data.publishedAt, bands };
      published(table);
      return reply.header('etag', `"${result.nextVersion}"`).send({ ...rateTableView(table, result.nextVersion), position: result.lastPosition });
    },
  );
};
