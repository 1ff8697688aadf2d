import type { FastifyBaseLogger } from 'fastify';
import { Gauge, register } from 'prom-client';
import type { Config } from './config.ts';
import type { SqlClient } from '../platform/sql/sql-client.ts';
import { describeHolder, startHorizonWatch, type HorizonState, type HorizonWatch } from '../platform/eventstore/horizon.ts';
import { consumerLag, relayLag, type ConsumerLag } from '../platform/messaging/lag.ts';
import type { HealthConcern } from '../platform/http/server.ts';

export type StallWatch = {
  /** What /health reports as degraded: the read horizon held back past the threshold. */
  readonly concerns: () => readonly HealthConcern[];
  readonly close: () => Promise<void>;
};

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** A stall as a log line carries it: the horizon, how long it has been held, and who holds it. */
function stallFields(state: HorizonState) {
  return { readHorizon: { xmin: state.xmin, xmax: state.xmax, heldSeconds: seconds(state.heldMs), heldSince: state.heldSince, holder: state.holder } };
}

/**
 * One gauge of the registry /metrics serves, set when scraped. A process that opens
 * platforms one after another (a test) registers it again: the last one opened reports.
 */
function gauge(name: string, help: string, labelNames: readonly string[], collect: (gauge: Gauge<string>) => Promise<void> | void) {
  register.removeSingleMetric(name);
  const metric = new Gauge({
    name,
    help,
    labelNames,
    async collect() {
      this.reset();
      await collect(this);
    },
  });
  return { name, metric };
}

/** The same read shared by the gauges of one scrape (they are collected one after the other). */
function sharedRead<T>(read: () => Promise<T>): () => Promise<T> {
  let reading: Promise<T> | undefined;
  return () =>
    (reading ??= read().finally(() => {
      setTimeout(() => (reading = undefined), 100);
    }));
}

/**
 * Names what stops the log's followers: the read horizon's watch (on PostgreSQL; PGlite
 * has one connection, so no other transaction can hold it, and the watch is off), which
 * logs a stall once when it begins and once when it ends and makes /health say degraded
 * meanwhile; and the lag of the relay and of the consumers this process runs, as metrics
 * (the projections' are the projector's, see read-side.ts).
 */
export function watchStalls(options: {
  readonly config: Config;
  readonly client: SqlClient;
  readonly logger: FastifyBaseLogger | false;
  readonly relay: string;
  readonly consumers: readonly string[];
}): StallWatch {
  const { config, client, logger } = options;
  let watch: HorizonWatch | undefined;
  const metrics: ReturnType<typeof gauge>[] = [];
  if (config.databaseUrl) {
    watch = startHorizonWatch({
      client,
      thresholdMs: config.horizon.stallMs,
      intervalMs: config.horizon.checkMs,
      onChange: ({ at, began, ended }) => {
        if (!logger) return;
        if (ended?.holder) {
          // It ended after the last reading that saw it, and before this one.
          logger.info(
            { ...stallFields(ended), endedBy: at },
            `the read horizon moves again: ${describeHolder(ended.holder, ended.observedAt)} held it back for at least ${seconds(ended.heldMs)} s, ` +
              `and ended within ${seconds(at.getTime() - ended.observedAt.getTime())} s before ${at.toISOString()}`,
          );
        }
        if (began?.holder) {
          logger.warn(
            stallFields(began),
            `the read horizon has been held back for ${seconds(began.heldMs)} s by ${describeHolder(began.holder, began.observedAt)}; ` +
              'the relay, the projector and every consumer wait for it to end',
          );
        }
      },
      onError: (error) => {
        if (logger) logger.warn({ err: error }, 'the read horizon could not be read; trying again');
      },
    });
    metrics.push(
      gauge(
        'mutuo_read_horizon_held_seconds',
        'How long the oldest transaction still running in the PostgreSQL cluster has held the read horizon back, as of the last check; 0 when none',
        [],
        (g) => g.set(watch!.state() ? watch!.state()!.heldMs / 1000 : 0),
      ),
    );
  } else if (logger) {
    logger.info('read horizon watch: off on PGlite, whose one connection no other transaction shares (MUTUO_HORIZON_STALL_MS applies on PostgreSQL)');
  }

  const readRelay = sharedRead(() => relayLag(client, options.relay));
  metrics.push(
    gauge('mutuo_relay_behind_events', 'Events appended and not yet published by the outbox relay', ['relay'], async (g) => {
      g.set({ relay: options.relay }, (await readRelay()).behindEvents);
    }),
    gauge('mutuo_relay_lag_seconds', 'How long the oldest event not yet published by the outbox relay has waited; 0 when caught up', ['relay'], async (g) => {
      g.set({ relay: options.relay }, (await readRelay()).lagMs / 1000);
    }),
  );
  if (options.consumers.length > 0) {
    const readConsumers = sharedRead(async () => {
      const lags: ConsumerLag[] = [];
      for (const consumer of options.consumers) {
        const lag = await consumerLag(client, consumer, { remember: true });
        if (lag) lags.push(lag);
      }
      return lags;
    });
    metrics.push(
      gauge(
        'mutuo_consumer_behind_events',
        'Events of the types a consumer handles that it has not yet handled, dead-lettered or parked',
        ['consumer'],
        async (g) => {
          for (const lag of await readConsumers()) g.set({ consumer: lag.consumer }, lag.behindEvents);
        },
      ),
      gauge('mutuo_consumer_lag_seconds', 'How long the oldest event a consumer has not yet passed has waited; 0 when caught up', ['consumer'], async (g) => {
        for (const lag of await readConsumers()) g.set({ consumer: lag.consumer }, lag.lagMs / 1000);
      }),
    );
  }

  return {
    concerns: () => {
      const state = watch?.state();
      if (!state?.stalled || !state.heldSince) return [];
      return [
        {
          code: 'READ_HORIZON_HELD',
          detail:
            `the read horizon has been held back for ${seconds(state.heldMs)} s by a transaction: events committed since wait to be published, projected and ` +
            'consumed (the log and mutuo status name it)',
          since: state.heldSince.toISOString(),
        },
      ];
    },
    close: async () => {
      await watch?.stop();
      // Only those still ours: a platform opened after this one in the same process registered its own.
      for (const { name, metric } of metrics) if (register.getSingleMetric(name) === metric) register.removeSingleMetric(name);
    },
  };
}
