import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DeadLetters } from './dead-letters.ts';

const IdParams = Type.Object({ id: Type.String({ pattern: '^[1-9][0-9]{0,15}$' }) });

/** Operations on the dead letters: list, inspect, redrive, discard. */
export const deadLetterRoutes: FastifyPluginAsyncTypebox<{ deadLetters: DeadLetters }> = async (app, { deadLetters }) => {
  app.get(
    '/api/dead-letters',
    {
      config: { permission: 'operateDeadLetters' },
      schema: {
        summary: 'Dead letters, newest first',
        tags: ['operations'],
        querystring: Type.Object(
          {
            consumer: Type.Optional(Type.String({ maxLength: 100 })),
            status: Type.Optional(
              Type.Unsafe<'open' | 'dead' | 'redrive_requested' | 'discard_requested' | 'redriven' | 'discarded'>({
                type: 'string',
                enum: ['open', 'dead', 'redrive_requested', 'discard_requested', 'redriven', 'discarded'],
              }),
            ),
            limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$' })),
            offset: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { consumer, status, limit, offset } = request.query;
      return deadLetters.list({
        ...(consumer ? { consumer } : {}),
        ...(status ? { status } : {}),
        limit: Math.min(Number(limit ?? 50), 500),
        offset: Number(offset ?? 0),
      });
    },
  );

  app.get(
    '/api/dead-letters/:id',
    { config: { permission: 'operateDeadLetters' }, schema: { summary: 'One dead letter with its original message', tags: ['operations'], params: IdParams } },
    async (request) => deadLetters.get(Number(request.params.id)),
  );

  app.post(
    '/api/dead-letters/:id/redrive',
    {
      config: { permission: 'operateDeadLetters' },
      schema: { summary: 'Ask its consumer to handle the message again, then what was parked behind it', tags: ['operations'], params: IdParams },
    },
    async (request, reply) => reply.status(202).send(await deadLetters.requestRedrive(Number(request.params.id))),
  );

  app.post(
    '/api/dead-letters/:id/discard',
    {
      config: { permission: 'operateDeadLetters' },
      schema: { summary: 'Give the message up and release what was parked behind it', tags: ['operations'], params: IdParams },
    },
    async (request, reply) => reply.status(202).send(await deadLetters.requestDiscard(Number(request.params.id))),
  );
};
