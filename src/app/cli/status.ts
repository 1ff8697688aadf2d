import { createPostgresClient } from '../../platform/sql/postgres.ts';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { describeHolder, horizonJudge, readHorizon, type HorizonState } from '../../platform/eventstore/horizon.ts';
import { lagAfter, type Lag } from '../../platform/eventstore/lag.ts';
import { consumerLag, consumerNames, relayLag, relayNames, type ConsumerLag } from '../../platform/messaging/lag.ts';
import { alignedTable, UsageError } from './dlq.ts';

const usage = `usage: mutuo status [--json]

  The read horizon of the event store (the oldest transaction still running in the
  PostgreSQL cluster, which every reader of the log waits for) and the transaction that
  holds it, if any; then the lag of the outbox relay, of each read model and of each
  consumer: events appended and not yet passed, and how long the oldest has waited.

  Reads the database at DATABASE_URL, as any process of a deployment does: it needs no
  running process. --json prints the same as one JSON object.`;

export type StatusReport = {
  readonly horizon: HorizonState & {
    /** Held at most this long: the holder's transaction is this old (a backend's; unknown for a prepared one). */
    readonly heldAtMostMs: number | null;
    readonly thresholdMs: number;
  };
  /** Whether the database (its search_path) holds Mutuo's tables: the horizon is the cluster's, the lags are the platform's. */
  readonly platformTables: boolean;
  readonly relays: readonly (Lag & { readonly name: string; readonly position: number })[];
  readonly projections: readonly (Lag & { readonly name: string; readonly position: number })[];
  readonly consumers: readonly ConsumerLag[];
};

/** Everything `mutuo status` prints, read from the database. */
export async function statusReport(db: SqlQueryable, stallMs: number): Promise<StatusReport> {
  // One look: how long the holder has held the horizon is what the catalog proves of it
  // (see horizonJudge); a running process's watch, which looks again and again, knows more.
  const { state } = horizonJudge(stallMs).observe(await readHorizon(db));
  const holder = state.holder;
  const startedAt = holder?.kind === 'backend' ? holder.transactionStartedAt : null;
  const heldAtMostMs = startedAt ? Math.max(state.heldMs, state.observedAt.getTime() - startedAt.getTime()) : null;
  const horizon = { ...state, heldAtMostMs, thresholdMs: stallMs };
  const [tables] = await db.query<{ found: boolean }>(`SELECT to_regclass('mutuo_consumers') IS NOT NULL AS found`);
  if (!tables?.found) return { horizon, platformTables: false, relays: [], projections: [], consumers: [] };
  const relays = await Promise.all((await relayNames(db)).map(async (name) => ({ name, ...(await relayLag(db, name)) })));
  const checkpoints = await db.query<{ name: string; position: string }>('SELECT name, position::text AS position FROM mutuo_projections ORDER BY name');
  const projections = await Promise.all(
    checkpoints.map(async ({ name, position }) => ({ name, position: Number(position), ...(await lagAfter(db, Number(position))) })),
  );
  const consumers: ConsumerLag[] = [];
  for (const name of await consumerNames(db)) {
    const lag = await consumerLag(db, name);
    if (lag) consumers.push(lag);
  }
  return { horizon, platformTables: true, relays, projections, consumers };
}

const secondsText = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function horizonText({ horizon }: StatusReport): string {
  const { holder } = horizon;
  if (!holder) return `read horizon: moving (no transaction holds it back; xmin ${horizon.xmin}, xmax ${horizon.xmax})`;
  const atMost = horizon.heldAtMostMs === null ? '' : `, at most ${secondsText(horizon.heldAtMostMs)}`;
  const verdict = horizon.stalled ? `STALLED (held back past ${secondsText(horizon.thresholdMs)})` : 'held';
  return `read horizon: ${verdict} for at least ${secondsText(horizon.heldMs)}${atMost}, xmin ${horizon.xmin}, by ${describeHolder(holder, horizon.observedAt)}`;
}

/** The report as `mutuo status` prints it. */
export function statusText(report: StatusReport): string {
  const lag = (item: Lag) => [String(item.behindEvents), secondsText(item.lagMs)];
  const rows = [
    ...report.relays.map((relay) => ['relay', relay.name, ...lag(relay), '', '']),
    ...report.projections.map((projection) => ['projection', projection.name, ...lag(projection), '', '']),
    ...report.consumers.map((consumer) => ['consumer', consumer.consumer, ...lag(consumer), String(consumer.openDeadLetters), String(consumer.parked)]),
  ];
  if (!report.platformTables) return `${horizonText(report)}\n\nno Mutuo tables (migrated to this version) in this database's search path: no lag to show`;
  return [horizonText(report), '', alignedTable(['follower', 'name', 'behind (events)', 'lag', 'dead letters', 'parked'], rows)].join('\n');
}

/** `mutuo status [--json]`: returns what to print. */
export async function statusCommand(
  args: readonly string[],
  settings: { readonly databaseUrl: string | undefined; readonly stallMs: number },
): Promise<string> {
  const json = args[0] === '--json';
  if (args.length > (json ? 1 : 0)) throw new UsageError(usage);
  if (!settings.databaseUrl) {
    throw new UsageError(
      'mutuo status reads the database: set DATABASE_URL. On the embedded database (PGlite), which the running process holds alone, ' +
        "no other transaction can hold the read horizon back; mutuo projections shows the read models' lag.",
    );
  }
  const client = createPostgresClient({ connectionString: settings.databaseUrl, maxConnections: 2 });
  try {
    const report = await statusReport(client, settings.stallMs);
    return json ? JSON.stringify(report, null, 2) : statusText(report);
  } finally {
    await client.close();
  }
}
