import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Gauge, register } from 'prom-client';
import { DomainError } from '../domain/errors.ts';
import type { ServiceModule } from '../platform/service.ts';
import type { ReadSideNeeds } from './context.ts';
import { rateQueryRoutes, ratesProjection } from '../features/rates/index.ts';
import { watchCheckpoints } from '../platform/projections/checkpoints.ts';
import { customerViewProjection } from '../features/application/customer-view.ts';
import { dashboardProjection } from '../features/application/dashboard.ts';
import { startLiveFeed } from '../features/application/live.ts';
import { describeFailure, RebuildRunningError, startProjector, WrittenElsewhereError, type Projector } from '../platform/projections/projector.ts';
import { queryRoutes } from '../features/application/query-routes.ts';
import { readModelRoutes } from '../features/application/read-model-routes.ts';
import { searchKeys, searchProjection } from '../features/application/search.ts';

/**
 * The projector: keeps every read model up to date from the event log. Several
 * processes may run it; one writes each projection at a time (the lease), the others
 * stand by. It answers for its projections: their lag, and their rebuilds.
 */
export const projectorModule: ServiceModule<ReadSideNeeds> = {
  name: 'projector',
  async start({ config, client, store, logger, viewCache, idlePollMs, personalData }) {
    const projector = startProjector({
      client,
      store,
      leaseMs: config.projectionLeaseMs,
      ...(idlePollMs ? { idleMs: idlePollMs } : {}),
      projections: [
        customerViewProjection(viewCache, personalData),
        searchProjection(searchKeys(config.privacy.subjectDigestSecret)),
        dashboardProjection,
        ratesProjection,
      ],
      // Code and message only: PostgreSQL's detail and where quote the row's values, personal data among them.
      onError: (error, projection) => {
        if (logger) logger.warn({ projection, ...describeFailure(error) }, `projection ${projection} is paused, and tries again`);
      },
      // Never the event's data: where it is in the log, and why it failed.
      onParked: (parked) => {
        if (!logger) return;
        const where = `event ${parked.position} (${parked.eventType}, version ${parked.streamVersion} of ${parked.streamId})`;
        if (parked.errorCode === null) logger.warn(parked, `projection ${parked.projection} parked ${where} behind the parked event of its stream`);
        else logger.error(parked, `projection ${parked.projection} cannot apply ${where}: parked with its stream's later events, the others go on`);
      },
    });
    const gauges = projectionGauges(projector);
    return {
      routes: [(app) => app.register(projectionRoutes, { projector })],
      wake: projector.wake,
      describe: `projector: read models in the database${viewCache ? `, the customer view's hot copy in ${viewCache.kind}` : ''}`,
      close: async () => {
        await projector.stop();
        for (const name of gauges) register.removeSingleMetric(name);
      },
    };
  },
};

/**
 * The query API: the read models, read-your-writes, live updates, rates and
 * simulations. It writes nothing, so any number of processes can serve it.
 */
export const queryModule: ServiceModule<ReadSideNeeds> = {
  name: 'query',
  async start({ config, client, store, viewCache, personalData }) {
    const checkpoints = watchCheckpoints(client);
    const live = startLiveFeed(store, client, { perCaller: config.http.liveStreamsPerCaller, perProcess: config.http.liveStreamsPerProcess });
    const search = { keys: searchKeys(config.privacy.subjectDigestSecret), personalData };
    const options = { db: client, checkpoints, viewCache, live, maxWaitMs: config.readWaitMs, personalData, search };
    return {
      routes: [(app) => app.register(queryRoutes, options), (app) => app.register(readModelRoutes, options), (app) => app.register(rateQueryRoutes, options)],
      wake: live.wake,
      close: async () => {
        checkpoints.close();
        await live.close();
      },
    };
  },
};

function projectionGauges(projector: Projector) {
  let last: Awaited<ReturnType<Projector['status']>> = [];
  // One status read per scrape, shared by the gauges.
  let reading: Promise<void> | undefined;
  const refresh = () =>
    (reading ??= projector
      .status()
      .then((status) => {
        last = status;
      })
      .finally(() => {
        setTimeout(() => (reading = undefined), 100);
      }));
  const gauge = (name: string, help: string, value: (s: (typeof last)[number]) => number) => {
    // One projector per process; a test that opens platforms one after another registers them again.
    register.removeSingleMetric(name);
    new Gauge({
      name,
      help,
      labelNames: ['projection'],
      async collect() {
        await refresh();
        for (const status of last) this.set({ projection: status.name }, value(status));
      },
    });
    return name;
  };
  return [
    gauge('mutuo_projection_position', 'The position of the last event in the read model', (s) => s.position),
    gauge('mutuo_projection_behind_events', 'Events appended and not yet in the read model', (s) => s.behindEvents),
    gauge('mutuo_projection_lag_seconds', 'How long the oldest event not yet in the read model has waited', (s) => s.lagMs / 1000),
    gauge(
      'mutuo_projection_parked_events',
      'Events the read model could not apply, or held behind one of their stream that it could not',
      (s) => s.parkedEvents,
    ),
  ];
}

const NameParams = Type.Object({ name: Type.String() });
const StreamQuery = Type.Object({ streamId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,200}$' })) }, { additionalProperties: false });

const projectionRoutes: FastifyPluginAsyncTypebox<{ projector: Projector }> = async (app, { projector }) => {
  const allowed = { config: { permission: 'operateProjections' } } as const;
  const known = (name: string) => {
    if (!projector.names.includes(name)) throw new DomainError('not_found', 'PROJECTION_NOT_FOUND', `no projection named ${name}`);
  };
  /** A redrive or a discard, refused while a rebuild runs or where another process writes the projection. */
  const operate = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    known(name);
    try {
      return await work();
    } catch (error) {
      if (error instanceof RebuildRunningError) throw new DomainError('conflict', 'REBUILD_RUNNING', error.message);
      if (error instanceof WrittenElsewhereError) throw new DomainError('conflict', 'PROJECTION_WRITTEN_ELSEWHERE', error.message);
      throw error;
    }
  };
  app.get(
    '/api/projections',
    { ...allowed, schema: { summary: 'Each projection: its position, how far behind it is, its rebuild', tags: ['operations'] } },
    async () => ({
      items: await projector.status(),
    }),
  );

  app.post(
    '/api/projections/:name/rebuild',
    { ...allowed, schema: { summary: 'Rebuild a read model from position 0 into a shadow copy and swap it in', tags: ['operations'], params: NameParams } },
    async (request, reply) => {
      const { name } = request.params;
      known(name);
      const done = projector.rebuild(name);
      // Refusals (already running, written elsewhere) come at once; the rebuild itself goes on in the background.
      const early = await Promise.race([
        done.then(
          () => undefined,
          (error: unknown) => error,
        ),
        new Promise((resolve) => setTimeout(resolve, 50, 'started')),
      ]);
      if (early instanceof RebuildRunningError) throw new DomainError('conflict', 'REBUILD_RUNNING', early.message);
      if (early instanceof Error) throw new DomainError('rule', 'REBUILD_REFUSED', early.message);
      return reply.status(202).send(projector.progress(name));
    },
  );

  app.get(
    '/api/projections/:name/rebuild',
    { ...allowed, schema: { summary: 'The progress of the latest rebuild of a read model', tags: ['operations'], params: NameParams } },
    async (request) => {
      const progress = projector.progress(request.params.name);
      if (!progress) throw new DomainError('not_found', 'REBUILD_NOT_FOUND', `no rebuild of ${request.params.name} in this process`);
      return progress;
    },
  );

  app.get(
    '/api/projections/:name/parked',
    {
      ...allowed,
      schema: {
        summary: "The events a read model could not apply, and those of their streams held behind them, in the log's order",
        tags: ['operations'],
        params: NameParams,
        querystring: Type.Object({ limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,3}$' })) }, { additionalProperties: false }),
      },
    },
    async (request) => {
      known(request.params.name);
      return projector.parked(request.params.name, Math.min(Number(request.query.limit ?? 100), 1_000));
    },
  );

  app.post(
    '/api/projections/:name/parked/redrive',
    {
      ...allowed,
      schema: {
        summary: "Apply a read model's parked events again (of one stream with ?streamId=), each stream in its order; what still fails is parked again",
        tags: ['operations'],
        params: NameParams,
        querystring: StreamQuery,
      },
    },
    async (request) => {
      const { name } = request.params;
      const redriven = await operate(name, () => projector.redrive(name, request.query.streamId));
      request.log.info({ projection: name, streamId: request.query.streamId ?? null, ...redriven }, `parked events of ${name} redriven`);
      return redriven;
    },
  );

  app.post(
    '/api/projections/:name/parked/discard',
    {
      ...allowed,
      schema: {
        summary: "Give a read model's parked events up (of one stream with ?streamId=): their streams follow the log again without them",
        tags: ['operations'],
        params: NameParams,
        querystring: StreamQuery,
      },
    },
    async (request) => {
      const { name } = request.params;
      const discarded = await operate(name, () => projector.discard(name, request.query.streamId));
      request.log.warn({ projection: name, streamId: request.query.streamId ?? null, ...discarded }, `parked events of ${name} discarded`);
      return discarded;
    },
  );
};
