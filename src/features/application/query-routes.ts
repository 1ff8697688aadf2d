import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { checkOwner } from '../../platform/http/access.ts';
import { applicationIdParam } from '../../platform/http/request-input.ts';
import { applicationSubmitter } from './ownership.ts';
import { DomainError } from '../../domain/errors.ts';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { awaitPosition, type ReadYourWrites } from '../../platform/http/read-your-writes.ts';
import { storedView, type ViewCache } from './customer-view.ts';
import type { LiveFeed } from './live.ts';
import type { ApplicationSearch } from './search.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';

export type QueryRoutesOptions = ReadYourWrites & {
  readonly db: SqlQueryable;
  /** The hot copy of the customer view; none when no process keeps one this process can trust. */
  readonly viewCache: ViewCache | undefined;
  readonly live: LiveFeed;
  /** Opens the personal data the read models keep sealed. */
  readonly personalData: Pick<PersonalDataVault, 'open'>;
  readonly search: ApplicationSearch;
};

const positionPattern = /^\d{1,18}$/;

const applicationId = applicationIdParam;

const IdParams = Type.Object({ id: Type.String() });
const MinPosition = Type.Object({ minPosition: Type.Optional(Type.String({ description: 'wait until the read model holds this position' })) });

export const queryRoutes: FastifyPluginAsyncTypebox<QueryRoutesOptions> = async (app, options) => {
  const { db, viewCache } = options;

  app.get(
    '/api/applications/:id',
    {
      config: { permission: 'readApplication' },
      schema: {
        summary: 'The applicant’s view of an application (the customer view read model)',
        description: 'Send X-Min-Position (or ?minPosition=) with the position a command answered to read your own write.',
        tags: ['queries'],
        params: IdParams,
        querystring: MinPosition,
      },
    },
    async (request, reply) => {
      const id = applicationId(request.params.id);
      const waited = await awaitPosition(options, 'customer-view', request, reply);
      // A read that waited for a position reads the durable copy: the hot one is written just after its commit.
      let view = waited ? undefined : await viewCache?.get(id);
      if (!view) {
        view = await storedView(db, options.personalData, id);
        if (view && !waited) await viewCache?.fill(id, view);
      }
      if (!view) throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
      checkOwner(request, view.owner ?? undefined);
      return reply.header('etag', `"${view.version}"`).type('application/json; charset=utf-8').send(view.body);
    },
  );

  app.get(
    '/api/applications/:id/live',
    {
      config: { permission: 'followApplication' },
      schema: {
        summary: 'Server-Sent Events: each change of the application (send Last-Event-ID to resume)',
        tags: ['queries'],
        params: IdParams,
      },
    },
    async (request, reply) => {
      const id = applicationId(request.params.id);
      const lastEventId = request.headers['last-event-id'];
      const after = typeof lastEventId === 'string' && positionPattern.test(lastEventId) ? Number(lastEventId) : undefined;
      const submitter = await applicationSubmitter(db, id);
      if (submitter === undefined) throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
      checkOwner(request, submitter ?? undefined);
      const free = options.live.admit(request.identity!.subject);
      const abort = new AbortController();
      request.raw.on('close', () => abort.abort());
      reply.hijack();
      const out = reply.raw;
      let keepAlive: NodeJS.Timeout | undefined;
      try {
        // The raw response: the headers set on the reply (security, correlation id) go along by hand.
        out.writeHead(200, {
          ...(reply.getHeaders() as Record<string, string>),
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store, no-transform',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        out.write('retry: 2000\n\n');
        // A comment now and then keeps proxies from closing an idle stream.
        keepAlive = setInterval(() => out.write(': keep-alive\n\n'), 15_000);
        for await (const change of options.live.follow(id, after, abort.signal)) {
          out.write(`id: ${change.position}\nevent: change\ndata: ${JSON.stringify(change)}\n\n`);
        }
      } finally {
        clearInterval(keepAlive);
        out.end();
        free();
      }
    },
  );

  // The server waits for every answer to end before it closes, and a live stream ends only when the feed does.
  app.addHook('preClose', () => options.live.close());
};
