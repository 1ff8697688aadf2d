import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DomainError, invalidInput } from '../../domain/errors.ts';
import type { EventStore } from '../../eventstore/types.ts';
import { WrongExpectedVersionError } from '../../eventstore/types.ts';
import { stampEvents } from '../service.ts';
import { rateTableStreamId } from './events.ts';
import { parseRateTable, rateTableAfter, rateTableView } from './rate-table.ts';

export type RateRoutesOptions = {
  readonly store: EventStore;
  readonly clock: () => Date;
  readonly newId: () => string;
  /** Called with the new table once it is stored. */
  readonly published: () => Promise<void>;
};

const ifMatchPattern = /^(?:W\/)?"?(\d{1,9})"?$/;

/** The operator's command on the rate table: publish a new one (an event on the `rate-table` stream). */
export const rateRoutes: FastifyPluginAsyncTypebox<RateRoutesOptions> = async (app, { store, clock, newId, published }) => {
  app.put(
    '/api/rates',
    {
      schema: {
        summary: 'Publish a new rate table (operator); If-Match: "<version>" publishes only over that version',
        tags: ['commands'],
        headers: Type.Object({ 'if-match': Type.Optional(Type.String()) }),
      },
    },
    async (request, reply) => {
      const { bands, reason } = parseRateTable(request.body);
      const ifMatch = request.headers['if-match'];
      const match = ifMatch === undefined ? undefined : ifMatchPattern.exec(ifMatch.trim());
      if (match === null) throw invalidInput([{ path: 'If-Match', message: 'must be the version the client last saw, as "<version>"' }]);
      const now = clock();
      const event = { type: 'RateTablePublished', data: { bands, reason, publishedAt: now.toISOString() } };
      const expected = match ? (Number(match[1]) === 0 ? 'no_stream' : Number(match[1])) : 'any';
      try {
        const result = await store.appendToStream(
          rateTableStreamId,
          stampEvents([event], { correlationId: request.id, causationId: null }, 'anonymous', now, newId),
          expected,
        );
        await published();
        const { table, version } = rateTableAfter(await store.readStream(rateTableStreamId));
        return reply.header('etag', `"${version}"`).send({ ...rateTableView(table, version), position: result.lastPosition });
      } catch (error) {
        if (error instanceof WrongExpectedVersionError) {
          throw new DomainError('conflict', 'VERSION_CONFLICT', `the rate table is at version ${error.currentVersion}`);
        }
        throw error;
      }
    },
  );
};
