import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { register } from 'prom-client';
import { notFoundProblem, sendProblem } from './problem.ts';

/** Registers a feature's routes: `(app) => app.register(plugin, options)`. */
export type ServerRoutes = (app: FastifyInstance) => PromiseLike<unknown>;

export type ServerDependencies = {
  /** The routes of the services this process runs. */
  readonly routes: readonly ServerRoutes[];
  /** Readiness: resolves when the store answers. */
  readonly checkReady: () => Promise<void>;
  readonly logger: FastifyBaseLogger | false;
};

const correlationIdPattern = /^[\w.:-]{1,100}$/;

export async function buildServer({ routes, checkReady, logger }: ServerDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger || undefined,
    // Per-request log lines cost a measurable share of throughput; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // So does a child logger per request: requests log through the server's own, and the
    // error handler names the correlation id itself.
    childLoggerFactory: (serverLogger) => serverLogger,
    bodyLimit: 1_048_576,
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-correlation-id'];
      return typeof given === 'string' && correlationIdPattern.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler(sendProblem);
  app.setNotFoundHandler(notFoundProblem);
  // A callback hook, not an async one: it runs on every request, and a promise per request shows in the read path's figures.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-correlation-id', request.id);
    done();
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Mutuo',
        description: 'Event-sourced mortgage applications: commands return the stream version and global position they wrote.',
        version: '0.1.0',
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type(register.contentType).send(await register.metrics());
  });

  app.get('/health', { schema: { hide: true } }, async (_request, reply) => {
    try {
      await checkReady();
      return { status: 'ok' };
    } catch {
      return reply.status(503).send({ status: 'unavailable' });
    }
  });

  for (const register of routes) await register(app);
  return app;
}
