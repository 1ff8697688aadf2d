import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import cors from '@fastify/cors';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifySchema,
  type onRequestHookHandler,
} from 'fastify';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessTable, TokenVerifier } from './identity.ts';
import { invalidInput } from '../../domain/errors.ts';
import { accessControl, isDocumentation, type RouteGuard } from './access.ts';
import { notFoundProblem, sendProblem } from './problem.ts';
import { hostileTextInJson, refusedRequestText } from './text-input.ts';
import { webPages } from './web.ts';

/** Registers a feature's routes: `(app) => app.register(plugin, options)`. */
export type ServerRoutes = (app: FastifyInstance) => PromiseLike<unknown>;

export type ServerDependencies = {
  /** The routes of the services this process runs. */
  readonly routes: readonly ServerRoutes[];
  /** Readiness: resolves when the store answers. */
  readonly checkReady: () => Promise<void>;
  /** What keeps a process that answers from working as it should (a stall): /health then says degraded, with them. */
  readonly concerns?: () => readonly HealthConcern[];
  /** The services this process runs, which /health names (their health is the process's). */
  readonly services?: readonly string[];
  readonly logger: FastifyBaseLogger | false;
  readonly verifyToken: TokenVerifier;
  /** Who may call a route, by the permission it names. */
  readonly access: AccessTable;
  readonly http: HttpLimits;
};

/**
 * Why /health says degraded: the process answers, but part of its work waits (the read
 * horizon held back: nothing new is published, projected or consumed). A stable code, a
 * sentence, since when. Public, like /health itself: no query, user or database names.
 */
export type HealthConcern = { readonly code: string; readonly detail: string; readonly since: string };

export type HttpLimits = {
  /** Largest JSON body, in bytes (uploads have their own limit). */
  readonly bodyLimitBytes: number;
  /** Requests a minute one client address may make to the public routes; 0: no limit. */
  readonly publicRequestsPerMinute: number;
  /** Origins a browser may call the API from; none: only pages served by the API itself. */
  readonly corsOrigins: readonly string[];
};

const correlationIdPattern = /^[\w.:-]{1,100}$/;

/** What helmet sets with `options`, recorded once against a response that only records them. */
function helmetHeaders(options: Parameters<typeof helmet>[0]): Readonly<Record<string, string>> {
  const recorded: Record<string, string> = {};
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => {
      recorded[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader: (name: string) => {
      delete recorded[name.toLowerCase()];
    },
  } as unknown as ServerResponse;
  helmet(options)({} as IncomingMessage, recorder, () => undefined);
  return recorded;
}

/** Headers for old browsers' features, of no use to anyone here: each costs every answer its bytes. */
const obsolete = {
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  originAgentCluster: false,
  xXssProtection: false,
} as const;

/**
 * The security headers of a document (the web pages and the API's documentation, served
 * from the API's own origin): scripts, styles and images from this origin only, never
 * framed, no referrer, a window and resources of its own. None of them varies per request
 * (no nonces), so they are computed once and every answer gets the copy.
 */
const documentHeaders = helmetHeaders({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      objectSrc: ["'none'"],
      frameAncestors: ["'none'"],
    },
  },
  xFrameOptions: { action: 'deny' },
  ...obsolete,
});

/**
 * The security headers of a JSON answer, those OWASP's REST Security Cheat Sheet names for
 * every API response: never framed (frame-ancestors and X-Frame-Options), never sniffed as
 * something else, HTTPS only; and a policy that lets nothing load, should a browser ever
 * open one as a page. What only a document uses (its scripts' and styles' origins, its
 * opener, its referrer, its embedding) has no effect on JSON: with nosniff and its content
 * type, a browser refuses to load it into another origin's page. Each header costs every
 * answer its validation and bytes, which the read path's figures show.
 */
const apiHeaders = helmetHeaders({
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  xFrameOptions: { action: 'deny' },
  crossOriginOpenerPolicy: false,
  crossOriginResourcePolicy: false,
  referrerPolicy: false,
  ...obsolete,
});

/**
 * The headers of a JSON answer of a route that needs an identity: it may carry personal
 * data, which no browser or proxy may keep a copy of. The public routes (the rate table,
 * simulations) may be cached; an error answer of theirs is not (see sendProblem).
 */
const privateApiHeaders = { ...apiHeaders, 'cache-control': 'no-store' };

/** The web pages, the redirect to them and the API's documentation are documents; every other route answers JSON. */
const isDocument = (url: string) => url === '/' || url === '/app' || url.startsWith('/app/') || isDocumentation(url);

/** The security headers a route answers with (or, for a request no route matches, its path): only a public one's may be cached. */
const securityHeadersFor = (url: string, isPublic = false) => (isDocument(url) ? documentHeaders : isPublic ? apiHeaders : privateApiHeaders);

/** The headers of an answer to a request no route took: those of its path. */
const withUnroutedHeaders = (request: FastifyRequest, reply: FastifyReply) =>
  reply.headers(securityHeadersFor(request.url.split('?', 1)[0]!)).header('x-correlation-id', request.id);

/** The headers a route's schema declares: they are text the route reads. */
function declaredHeaders(schema: FastifySchema | undefined): string[] {
  const headers = schema?.headers as { properties?: Record<string, unknown> } | undefined;
  return Object.keys(headers?.properties ?? {});
}

export async function buildServer({
  routes,
  checkReady,
  concerns,
  services = [],
  logger,
  verifyToken,
  access,
  http,
}: ServerDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    // The process's logger is every request's logger, not the server's: given a server
    // logger, Fastify times every response and listens for its end, only to log the line per
    // request that is off here (this way saves some 5 % of a bare request's instructions,
    // bench:instructions). Errors are still logged, ours by the error handler and Fastify's
    // own through request.log; the server's logger is silent, and nothing logs through it.
    ...(logger ? { childLoggerFactory: () => logger } : {}),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: http.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-correlation-id'];
      return typeof given === 'string' && correlationIdPattern.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
    // A path the router cannot read (bad percent-encoding, a parameter over 100 characters)
    // is refused before any route's hook: it gets the answer of a request no route matches.
    frameworkErrors: (error, request, reply) => sendProblem(error, request, withUnroutedHeaders(request, reply)),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler(sendProblem);
  // Every text field of every route is held to one rule (src/platform/http/text-input.ts): a JSON body
  // as it is parsed, with Fastify's own parser (which refuses prototype poisoning) first; the
  // path parameters, query string and declared headers in the hook below. The API takes JSON
  // and, for uploads, multipart forms: a plain-text body is refused (415), not left unchecked.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    parseJson(request, body as string, (error: Error | null, parsed?: unknown) => {
      const hostile = error ? [] : hostileTextInJson(body as string, parsed);
      done(error ?? (hostile.length > 0 ? invalidInput(hostile) : null), parsed);
    });
  });
  // One callback hook per route, not several async ones: it runs on every request, and each
  // promise and hook per request shows in the read path's figures. It sets the security
  // headers and names the correlation id, refuses hostile text in the path, query string and
  // headers, then checks the caller's access (and the public routes' rate limit, by client
  // address, each route counted apart). Made once per route, it knows the route's permission
  // and limit without looking them up at each request. A request that matches no route gets
  // its headers from the not-found handler.
  const publicLimit = http.publicRequestsPerMinute > 0 ? { max: http.publicRequestsPerMinute, windowMs: 60_000 } : undefined;
  const guardFor = accessControl(verifyToken, access, publicLimit);
  app.decorateRequest('identity', undefined);
  app.decorateRequest('ownerScope', undefined);
  app.addHook('onRoute', (route) => {
    // Made at the route's first request, not here: a plugin's own onRoute hooks (the web
    // pages name their permission in one) run after this one, on the same route options.
    let made: { guard: RouteGuard; headers: Readonly<Record<string, string>>; textHeaders: readonly string[] } | undefined;
    const hook: onRequestHookHandler = (request, reply, done) => {
      made ??= {
        guard: guardFor({ url: route.url, permission: route.config?.permission }),
        headers: securityHeadersFor(route.url, route.config?.permission !== undefined && access(route.config.permission) === 'public'),
        textHeaders: declaredHeaders(route.schema),
      };
      reply.headers(made.headers).header('x-correlation-id', request.id);
      const refused = refusedRequestText(request, made.textHeaders);
      if (refused) return done(refused);
      made.guard(request, reply, done);
    };
    const others = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [hook, ...others];
  });
  app.setNotFoundHandler((request, reply) => notFoundProblem(request, withUnroutedHeaders(request, reply)));
  if (http.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: [...http.corsOrigins],
      methods: ['GET', 'POST', 'PUT'],
      allowedHeaders: ['authorization', 'content-type', 'if-match', 'x-min-position', 'x-correlation-id', 'last-event-id'],
      exposedHeaders: ['etag', 'location', 'x-correlation-id', 'x-read-model-behind'],
    });
  }

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

  // 200 while the process answers, degraded or not: a load balancer or an orchestrator keeps
  // sending it requests (commands and reads still work) and does not restart it, which would
  // not end a stall held by another transaction. 503 only when the database does not answer.
  app.get('/health', { schema: { hide: true }, config: { permission: 'public' } }, async (_request, reply) => {
    try {
      await checkReady();
    } catch {
      return reply.status(503).header('cache-control', 'no-store').send({ status: 'unavailable', services });
    }
    const reasons = concerns?.() ?? [];
    if (reasons.length === 0) return { status: 'ok', services };
    return reply.header('cache-control', 'no-store').send({ status: 'degraded', services, reasons });
  });

  for (const register of routes) await register(app);
  await webPages(app);
  return app;
}
