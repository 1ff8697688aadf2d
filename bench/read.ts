/**
 * Read-side benchmark: the query API, the projections' rebuild and their lag, each
 * next to its ceiling measured in the same run.
 *
 *   npm run bench:read [-- --seconds 10 --rounds 5 --connections 100 --applications 10000 --events 1000000
 *                          --rate 500 --no-pglite --no-postgres --only views,simulations,lag,rebuild --cpu-prof DIR]
 *
 * 1. Customer view: GET /api/applications/:id over the seeded applications (the ids in
 *    turn), against `mutuo query` as its own process beside `mutuo projector` and
 *    `mutuo application` on PostgreSQL + Redis, and against the embedded default
 *    `mutuo start` on PGlite with the hot copy in memory. Ceiling: a bare Fastify route
 *    in a process of its own, answering the same JSON bodies from a Map.
 *    Before the load, the CPU the serving process uses while idle, for 10 s.
 * 2. Simulations: POST /api/simulations, against a bare Fastify POST route answering a
 *    fixed JSON of the same size (the ceiling process above).
 *    For both, beside the requests a second: the CPU time (user and system, from /proc) the
 *    serving process spent per request over the measured seconds, Mutuo's and the bare
 *    route's. It moves less than the requests a second with the load generator's share of
 *    the cores, and says what a change saved.
 * 3. Rebuild: events per second rebuilding each projection over `--events` events
 *    seeded with bulk SQL into PostgreSQL, by `mutuo projector` as its own process.
 * 4. Lag: an open-loop writer submitting `--rate` commands a second to `mutuo application`;
 *    the time from each 201 to the moment the customer view's checkpoint (polled in
 *    mutuo_projections every 2 ms) holds the position it answered.
 *
 * PostgreSQL comes from TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
 * each setup in a schema of its own dropped at the end; Redis from REDIS_URL (this run's
 * keys are deleted at the end). `--cpu-prof DIR` writes CPU profiles of `mutuo query`,
 * `mutuo start` and the rebuilding `mutuo projector` there (slower: a diagnosis, not a
 * figure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { createClient } from 'redis';
import { startMutuo } from '../test/e2e/processes.ts';
import { devBearer, type AuthHeaders, type DemoUserId } from '../src/security/testing.ts';
import { checkTaxCode, computeCheckCharacter, MONTH_LETTERS } from '../src/domain/codice-fiscale.ts';
import { defaultRateTable } from '../src/domain/rates.ts';
import { italianRegions } from '../src/domain/regions.ts';
import { parseSimulationRequest, simulate } from '../src/domain/simulation.ts';
import { registerEventSchemas } from '../src/platform/schemas/event-schemas.ts';
import type { SqlClient } from '../src/platform/sql/sql-client.ts';
import { selectStream, storedLog } from '../src/platform/eventstore/store.ts';
import { openTestPostgres, testDatabaseUrl } from '../src/platform/sql/testing.ts';
import type { RebuildProgress } from '../src/platform/projections/projector.ts';
import { applicationDecider } from '../src/features/application/decider.ts';
import { applicationEventCatalog, type ApplicationEvent } from '../src/features/application/events.ts';
import { platformEventHistory } from '../src/app/catalog.ts';

/** Every projection `mutuo projector` runs. */
const projectionNames = ['customer-view', 'application-search', 'dashboard', 'rates'];

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '100' },
    applications: { type: 'string', default: '10000' },
    events: { type: 'string', default: '1000000' },
    rate: { type: 'string', default: '500' },
    projections: { type: 'string', default: projectionNames.join(',') },
    only: { type: 'string', default: 'views,simulations,lag,rebuild' },
    'no-pglite': { type: 'boolean', default: false },
    'no-postgres': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const connections = Number(args.connections);
const applications = Number(args.applications);
const eventCount = Number(args.events);
const rate = Number(args.rate);
const rebuilt = args.projections.split(',').filter(Boolean);
const only = new Set(args.only.split(','));
const figureNames = ['views', 'simulations', 'lag', 'rebuild'];
for (const name of only) if (!figureNames.includes(name)) throw new Error(`--only takes ${figureNames.join(', ')}; not "${name}"`);
for (const name of rebuilt) if (!projectionNames.includes(name)) throw new Error(`--projections takes ${projectionNames.join(', ')}; not "${name}"`);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const repositoryRoot = new URL('../', import.meta.url);
const submission = await readFile(new URL('../test/fixtures/submission.json', import.meta.url), 'utf8');
/** A typical simulation: 200,000 € over 25 years at 3.2 %, with fees, no schedule. */
const simulationBody = JSON.stringify({
  amount: 200_000,
  termYears: 25,
  annualRate: 3.2,
  propertyValue: 300_000,
  fees: { upfront: 1_500, perInstallment: 2, annual: 30 },
});
/** Each command's answered position is looked for in the checkpoint this often. */
const pollMs = 2;
/** How long the serving process's CPU is watched while idle, before the load. */
const idleSeconds = 10;
/** Applications submitted at once while seeding through the API. */
const seedConcurrency = 32;

const targets = { viewsOfBare: 80, viewsP99Ms: 10, simulationsOfBare: 70, rebuildPerSecond: 50_000, lagP99Ms: 100 };

type Figure = {
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU time (user and system) of the serving process per request answered, in µs. */
  readonly cpuUsPerRequest: number;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Each setup's development identity provider signs the tokens: the applicant who submits
 * (and reads her own applications), and the admin who watches the projections.
 */
const tokens = new Map<string, Promise<AuthHeaders>>();
function bearer(baseUrl: string, user: DemoUserId): Promise<AuthHeaders> {
  const key = `${baseUrl} ${user}`;
  if (!tokens.has(key)) tokens.set(key, devBearer(baseUrl, user));
  return tokens.get(key)!;
}

/**
 * The public routes' rate limit per client: high enough never to refuse the load
 * generator's requests, so that counting them is still in the figures.
 */
const benchRateLimit = { RATE_LIMIT_PUBLIC_PER_MINUTE: '100000000' };
const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const thousands = (value: number) => Math.round(value).toLocaleString('en-US');
const met = (ok: boolean) => (ok ? 'yes' : '**no**');

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

// ---- cleaning up, also on Ctrl-C ----

/**
 * Steps to undo, last added first. Several callers (the code that opened it, a signal
 * handler) may run it at once: they share the one run, so nothing is cut off halfway.
 */
class Cleanup {
  private readonly steps: (() => Promise<unknown>)[] = [];
  private running: Promise<void> | undefined;
  constructor() {
    openCleanups.add(this);
  }
  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }
  run(): Promise<void> {
    this.running ??= (async () => {
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        await step().catch((error: unknown) => console.error('cleanup:', error instanceof Error ? error.message : error));
      }
      openCleanups.delete(this);
    })();
    return this.running;
  }
}
const openCleanups = new Set<Cleanup>();

async function scoped<T>(work: (cleanup: Cleanup) => Promise<T>): Promise<T> {
  const cleanup = new Cleanup();
  try {
    return await work(cleanup);
  } finally {
    await cleanup.run();
  }
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: stopping the processes and dropping the schemas…`);
    void (async () => {
      // The innermost scopes (opened last) first, as their own finally blocks would.
      for (const cleanup of [...openCleanups].reverse()) await cleanup.run();
      process.exit(130);
    })();
  });
}

// ---- processes ----

/** Each started process's pid, by the address it listens on: its CPU time is read from /proc. */
const pidOf = new Map<string, number>();

/** CPU seconds (user and system) a process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime and stime, in clock ticks of 1/100 s
}

/** A child that names its address once it listens (as `ready` finds it); stopped with the scope. */
async function startChild(
  command: readonly string[],
  env: Record<string, string>,
  cleanup: Cleanup,
  ready = /listening on (http:\/\/[\d.]+:\d+)/,
): Promise<string> {
  const child: ChildProcess = spawn(process.execPath, command, {
    cwd: repositoryRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  cleanup.add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  });
  let output = '';
  return new Promise<string>((resolve, reject) => {
    const look = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      const match = ready.exec(output);
      if (match) {
        pidOf.set(match[1]!, child.pid!);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    void exited.then(([code]) => reject(new Error(`${command.join(' ')} exited with ${code}:\n${output}`)));
  });
}

/**
 * The ceiling: bare Fastify in a process of its own, answering the same customer views
 * from a Map (with the same ETag and content type) and the simulation's JSON as a fixed
 * string. Plain JavaScript, so that no TypeScript loader runs in it.
 */
const ceilingScript = `
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
const { views, simulation } = JSON.parse(readFileSync(process.env.CEILING_DATA, 'utf8'));
const bodies = new Map(Object.entries(views));
const app = Fastify();
app.get('/api/applications/:id', async (request, reply) => {
  const view = bodies.get(request.params.id);
  if (!view) return reply.status(404).send({ title: 'no such application' });
  return reply.header('etag', '"' + view.version + '"').type('application/json; charset=utf-8').send(view.body);
});
app.post('/api/simulations', async (_request, reply) => reply.type('application/json; charset=utf-8').send(simulation));
const url = await app.listen({ port: 0, host: '127.0.0.1' });
console.log('ceiling listening on ' + url);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
`;

/**
 * `mutuo <service>` as its own process, as an operator runs it; with `--cpu-prof`, the
 * measured ones under node's profiler (which NODE_OPTIONS may not turn on).
 */
async function startService(service: string, env: Record<string, string>, cleanup: Cleanup, profile = false): Promise<string> {
  const directory = args['cpu-prof'];
  if (!profile || !directory) {
    const started = await startMutuo([service], env);
    cleanup.add(() => started.stop());
    pidOf.set(started.address, started.process.pid!);
    return started.address;
  }
  // A folder per service: the main thread and the loader's thread each write a profile there.
  const command = ['--cpu-prof', `--cpu-prof-dir=${join(directory, service)}`, 'bin/mutuo.js', service];
  return startChild(command, { PORT: '0', LOG_LEVEL: 'info', ...env }, cleanup, /API docs at (http:\/\/[\d.]+:\d+)/);
}

// ---- HTTP load ----

type Load = {
  readonly method: 'GET' | 'POST';
  readonly path?: string;
  readonly paths?: readonly string[];
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
};

/** autocannon at `connections` connections: one second of warm-up, then `seconds` measured. */
async function hammer(baseUrl: string, load: Load): Promise<Figure> {
  const paths = load.paths;
  let next = 0;
  const options: autocannon.Options = {
    url: `${baseUrl}${load.path ?? ''}`,
    connections,
    method: load.method,
    headers: { ...load.headers, ...(load.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(load.body !== undefined ? { body: load.body } : {}),
    // The ids in turn: every connection takes the next one.
    ...(paths ? { requests: [{ setupRequest: (request: autocannon.Request) => ({ ...request, path: paths[next++ % paths.length] }) }] } : {}),
  };
  await autocannon({ ...options, duration: 1 });
  const pid = pidOf.get(baseUrl);
  if (pid === undefined) throw new Error(`no process is known to serve ${baseUrl}`);
  const cpuFrom = await cpuSeconds(pid);
  const result = await autocannon({ ...options, duration: seconds });
  const cpuUsPerRequest = (((await cpuSeconds(pid)) - cpuFrom) * 1e6) / result.requests.total;
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${baseUrl}: ${result.non2xx} non-2xx answers and ${result.errors} errors`);
  return { perSecond: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99, cpuUsPerRequest };
}

const ofBare = (mutuo: Figure, bare: Figure) => (100 * mutuo.perSecond) / bare.perSecond;

const median = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

/** A figure side by side with its ceiling: each field the median of its rounds, and each round's share of bare. */
type SideBySide = { readonly mutuo: Figure; readonly bare: Figure; readonly shares: readonly number[] };

/** The share of bare of a figure measured side by side: the median of its rounds' shares. */
const shareOf = ({ shares }: SideBySide) => median(shares);

/**
 * The ceiling and Mutuo in turn, `rounds` times, each round's share of bare taken from
 * its own pair, so that the machine's drift (the load generator shares the two cores,
 * and the machine's speed wanders by a fifth from minute to minute) falls on both alike:
 * the ceiling first in even rounds and Mutuo first in odd ones, so that neither is
 * always measured on the later, or the earlier, side of a drift. Every round's share is
 * printed as it comes.
 */
async function sideBySide(ceilingUrl: string, mutuoUrl: string, load: Load): Promise<SideBySide> {
  const bare: Figure[] = [];
  const mutuo: Figure[] = [];
  const shares: number[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      bare.push(await hammer(ceilingUrl, load));
      mutuo.push(await hammer(mutuoUrl, load));
    } else {
      mutuo.push(await hammer(mutuoUrl, load));
      bare.push(await hammer(ceilingUrl, load));
    }
    shares.push(ofBare(mutuo[round]!, bare[round]!));
    process.stdout.write(`${fixed(shares[round]!)} % `);
  }
  console.log('done');
  const medianOf = (figures: readonly Figure[]): Figure => ({
    perSecond: median(figures.map((figure) => figure.perSecond)),
    p50Ms: median(figures.map((figure) => figure.p50Ms)),
    p99Ms: median(figures.map((figure) => figure.p99Ms)),
    cpuUsPerRequest: median(figures.map((figure) => figure.cpuUsPerRequest)),
  });
  return { mutuo: medianOf(mutuo), bare: medianOf(bare), shares };
}

async function expectStatus(response: Response, status: number, what: string): Promise<Response> {
  if (response.status !== status) throw new Error(`${what} answered ${response.status}: ${await response.text()}`);
  return response;
}

/** Runs `count` tasks, `at` at a time. */
async function crowd(count: number, task: (i: number) => Promise<void>, at = seedConcurrency): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(at, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

type Submitted = { readonly applicationId: string; readonly position: number };

async function submit(writeUrl: string): Promise<Submitted> {
  const headers = { ...(await bearer(writeUrl, 'giulia')), 'content-type': 'application/json' };
  const response = await fetch(`${writeUrl}/api/applications`, { method: 'POST', headers, body: submission });
  return (await (await expectStatus(response, 201, 'a submission')).json()) as Submitted;
}

/** Until every projection holds the log's head and the head has not moved for two seconds (the flows have settled). */
async function settle(projectorUrl: string, timeoutMs = 600_000): Promise<void> {
  const started = performance.now();
  let lastHead = -1;
  let quietSince = performance.now();
  let lastReport = performance.now();
  for (;;) {
    const response = await expectStatus(await fetch(`${projectorUrl}/api/projections`, { headers: await bearer(projectorUrl, 'ada') }), 200, 'the projections');
    const { items } = (await response.json()) as { items: { name: string; headPosition: number; behindEvents: number }[] };
    const head = Math.max(...items.map((item) => item.headPosition));
    const behind = Math.max(...items.map((item) => item.behindEvents));
    if (head !== lastHead || behind > 0) [lastHead, quietSince] = [head, performance.now()];
    else if (performance.now() - quietSince >= 2_000) return;
    if (performance.now() - started > timeoutMs) throw new Error(`the read side did not settle in ${timeoutMs / 1000} s`);
    // The flows of the seeded applications may run for minutes (mutuo start runs all of them).
    if (performance.now() - lastReport > 30_000) {
      lastReport = performance.now();
      process.stdout.write(`(${fixed((lastReport - started) / 1000)} s: ${behind > 0 ? `${behind} events behind` : 'the flows are still appending'}) `);
    }
    await sleep(250);
  }
}

type View = { readonly version: number; readonly body: string };

/** Every seeded view, once: what the ceiling answers, and a check that the query API has them all. */
async function readViews(queryUrl: string, ids: readonly string[]): Promise<Record<string, View>> {
  const views: Record<string, View> = {};
  await crowd(ids.length, async (i) => {
    const id = ids[i]!;
    const response = await expectStatus(
      await fetch(`${queryUrl}/api/applications/${id}`, { headers: await bearer(queryUrl, 'giulia') }),
      200,
      `the view of ${id}`,
    );
    views[id] = { version: Number(response.headers.get('etag')?.replaceAll('"', '')), body: await response.text() };
  });
  return views;
}

// ---- the setups serving the read side ----

type Endpoints = {
  readonly label: string;
  readonly writeUrl: string;
  readonly queryUrl: string;
  readonly projectorUrl: string;
  /** PostgreSQL only: where the lag is measured from. */
  readonly databaseUrl?: string;
  /** Every application submitted, for the Redis keys to delete at the end. */
  readonly submitted: Set<string>;
};

/** `mutuo application`, `mutuo projector` and `mutuo query`, each its own process, on PostgreSQL and Redis. */
async function distributedSetup(cleanup: Cleanup): Promise<Endpoints> {
  const database = await openTestPostgres(2);
  cleanup.add(() => database.dispose());
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-bench-read-'));
  cleanup.add(() => rm(dataDir, { recursive: true, force: true }));
  const submitted = new Set<string>();
  // The views of this run's applications, once the processes that write them have stopped.
  cleanup.add(async () => {
    const redis = createClient({ url: redisUrl });
    await redis.connect();
    try {
      const keys = [...submitted].map((id) => `mutuo:view:${id}`);
      for (let i = 0; i < keys.length; i += 1_000) await redis.unlink(keys.slice(i, i + 1_000));
    } finally {
      redis.destroy();
    }
  });
  const env = { MUTUO_DATA_DIR: dataDir, DATABASE_URL: database.connectionString!, REDIS_URL: redisUrl, AMQP_URL: '', ...benchRateLimit };
  const [writeUrl, projectorUrl, queryUrl] = await Promise.all([
    startService('application', env, cleanup),
    startService('projector', env, cleanup),
    startService('query', env, cleanup, true),
  ]);
  return {
    label: 'separate processes, PostgreSQL + Redis',
    writeUrl: writeUrl!,
    projectorUrl: projectorUrl!,
    queryUrl: queryUrl!,
    databaseUrl: database.connectionString!,
    submitted,
  };
}

/** `mutuo start` on PGlite: every service in one process, the customer view's hot copy in its memory. */
async function embeddedSetup(cleanup: Cleanup): Promise<Endpoints> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-bench-read-'));
  cleanup.add(() => rm(dataDir, { recursive: true, force: true }));
  // Empty values, so that a DATABASE_URL, REDIS_URL or AMQP_URL of the caller's shell is not inherited.
  const url = await startService('start', { MUTUO_DATA_DIR: dataDir, DATABASE_URL: '', REDIS_URL: '', AMQP_URL: '', ...benchRateLimit }, cleanup, true);
  return { label: 'mutuo start, PGlite + memory', writeUrl: url, projectorUrl: url, queryUrl: url, submitted: new Set() };
}

/** Filled in as the figures are measured. */
type ReadFigures = {
  label: string;
  views?: SideBySide & { readonly bytes: number };
  simulations?: SideBySide & { readonly bytes: number };
  /** CPU of the process serving the queries while no request comes, in percent of a core. */
  idlePercent?: number;
  lag?: LagFigure;
};

async function measureReadSide(open: (cleanup: Cleanup) => Promise<Endpoints>): Promise<ReadFigures> {
  return scoped(async (cleanup) => {
    const endpoints = await open(cleanup);
    const { label } = endpoints;
    const figures: ReadFigures = { label };
    if (only.has('views') || only.has('simulations')) {
      process.stdout.write(`${label}: seeding ${thousands(applications)} applications through POST /api/applications… `);
      const ids: string[] = [];
      await crowd(applications, async () => {
        const { applicationId } = await submit(endpoints.writeUrl);
        endpoints.submitted.add(applicationId);
        ids.push(applicationId);
      });
      process.stdout.write('waiting for the read side and the flows to settle… ');
      const settling = performance.now();
      await settle(endpoints.projectorUrl);
      const views = await readViews(endpoints.queryUrl, ids);
      console.log(`settled in ${fixed((performance.now() - settling) / 1000)} s`);
      // What the serving process spends with no request to answer: its background looks for work.
      const pid = pidOf.get(endpoints.queryUrl)!;
      const idleFrom = await cpuSeconds(pid);
      await sleep(idleSeconds * 1_000);
      figures.idlePercent = (100 * ((await cpuSeconds(pid)) - idleFrom)) / idleSeconds;
      console.log(`${label}: idle for ${idleSeconds} s, the process serving the queries used ${fixed(figures.idlePercent, 1)} % of a core`);

      // The ceiling answers exactly what Mutuo does: the same views, the simulation's own result.
      const parsed = parseSimulationRequest(JSON.parse(simulationBody));
      if (!parsed.ok) throw new Error(`the simulation body is refused: ${JSON.stringify(parsed.errors)}`);
      const simulation = JSON.stringify(simulate(parsed.value, defaultRateTable));
      const answered = await (
        await expectStatus(
          await fetch(`${endpoints.queryUrl}/api/simulations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: simulationBody }),
          200,
          'a simulation',
        )
      ).text();
      if (answered !== simulation) throw new Error(`the query API simulates ${answered}, the ceiling would answer ${simulation}`);
      const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-bench-ceiling-'));
      cleanup.add(() => rm(dataDir, { recursive: true, force: true }));
      const dataFile = join(dataDir, 'ceiling.json');
      await writeFile(dataFile, JSON.stringify({ views, simulation }));

      // The applicant reads her own applications: the token is checked and the view's owner compared on each request.
      const viewLoad: Load = { method: 'GET', paths: ids.map((id) => `/api/applications/${id}`), headers: await bearer(endpoints.queryUrl, 'giulia') };
      const simulationLoad: Load = { method: 'POST', path: '/api/simulations', body: simulationBody };
      const bytes = Math.round(Object.values(views).reduce((sum, view) => sum + Buffer.byteLength(view.body), 0) / ids.length);
      // Each figure right after its ceiling, so that both see the machine in the same state.
      await scoped(async (ceilingCleanup) => {
        const ceilingUrl = await startChild(['--input-type=module', '-e', ceilingScript], { CEILING_DATA: dataFile }, ceilingCleanup);
        if (only.has('views')) {
          process.stdout.write(`${label}: views, bare Fastify and Mutuo in turn, ${rounds} rounds… `);
          figures.views = { ...(await sideBySide(ceilingUrl, endpoints.queryUrl, viewLoad)), bytes };
        }
        if (only.has('simulations')) {
          process.stdout.write(`${label}: simulations, bare Fastify and Mutuo in turn, ${rounds} rounds… `);
          figures.simulations = { ...(await sideBySide(ceilingUrl, endpoints.queryUrl, simulationLoad)), bytes: Buffer.byteLength(simulation) };
        }
      });
    }
    if (only.has('lag') && endpoints.databaseUrl) {
      process.stdout.write(`${label}: ${rate} commands/s for ${seconds} s, following the customer view's checkpoint… `);
      figures.lag = await measureLag(endpoints, endpoints.databaseUrl);
      console.log('done');
    }
    return figures;
  });
}

// ---- 4. the lag under load ----

type LagFigure = {
  readonly asked: number;
  readonly sentPerSecond: number;
  readonly answeredPerSecond: number;
  readonly failed: number;
  readonly commandP50Ms: number;
  readonly commandP99Ms: number;
  readonly lagP50Ms: number;
  readonly lagP99Ms: number;
  readonly lagMaxMs: number;
  /** Commands whose position the checkpoint had not reached 30 s after the last answer. */
  readonly unresolved: number;
};

/**
 * An open-loop writer: command i goes out at i / rate seconds, whether the earlier ones
 * were answered or not. Each answer's position is then looked for in the customer
 * view's checkpoint, polled every `pollMs` on a connection of its own; the lag is from
 * the 201 arriving to the first poll that sees the checkpoint at or past it (0 when the
 * checkpoint was there before the answer).
 */
async function measureLag(endpoints: Endpoints, databaseUrl: string): Promise<LagFigure> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const checkpointQuery = { name: 'bench_checkpoint', text: `SELECT position FROM mutuo_projections WHERE name = 'customer-view'` };
    const read = async () => Number((await client.query<{ position: string }>(checkpointQuery)).rows[0]?.position ?? 0);
    let checkpoint = await read();
    const waiting: { position: number; answeredAt: number }[] = [];
    const lags: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const position = await read();
        const at = performance.now();
        checkpoint = position;
        for (let i = waiting.length - 1; i >= 0; i--) {
          if (waiting[i]!.position > position) continue;
          lags.push(Math.max(0, at - waiting[i]!.answeredAt));
          // Swap-remove: the last one has been looked at already.
          waiting[i] = waiting.at(-1)!;
          waiting.pop();
        }
        await sleep(pollMs);
      }
    })();

    const total = Math.round(rate * seconds);
    const commandMs: number[] = [];
    let failed = 0;
    let lastAnsweredAt = 0;
    const inFlight: Promise<void>[] = [];
    const send = async () => {
      const at = performance.now();
      try {
        const { applicationId, position } = await submit(endpoints.writeUrl);
        const answeredAt = performance.now();
        endpoints.submitted.add(applicationId);
        commandMs.push(answeredAt - at);
        lastAnsweredAt = answeredAt;
        if (position <= checkpoint) lags.push(0);
        else waiting.push({ position, answeredAt });
      } catch {
        failed++;
      }
    };
    const startedAt = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - startedAt) * rate) / 1000) + 1);
      for (; sent < due; sent++) inFlight.push(send());
      await sleep(1);
    }
    const sendingMs = performance.now() - startedAt;
    await Promise.all(inFlight);
    const deadline = performance.now() + 30_000;
    while (waiting.length > 0 && performance.now() < deadline) await sleep(10);
    polling = false;
    await poller;

    lags.sort((a, b) => a - b);
    commandMs.sort((a, b) => a - b);
    // A whole number of intervals: the first command goes at 0, the last at (total - 1) / rate.
    const sendingS = Math.max(sendingMs, ((total - 1) / rate) * 1000) / 1000;
    return {
      asked: rate,
      sentPerSecond: (total - 1) / sendingS,
      answeredPerSecond: commandMs.length / ((lastAnsweredAt - startedAt) / 1000),
      failed,
      commandP50Ms: percentile(commandMs, 50),
      commandP99Ms: percentile(commandMs, 99),
      lagP50Ms: percentile(lags, 50),
      lagP99Ms: percentile(lags, 99),
      lagMaxMs: lags.at(-1) ?? Number.NaN,
      unresolved: waiting.length,
    };
  } finally {
    await client.end();
  }
}

// ---- 3. rebuilding over a million events ----

/** Applicants to cycle through, each with a tax code that passes the application's own check. */
function applicantPool(size = 64) {
  const firstNames = [
    'Giulia',
    'Marco',
    'Francesca',
    'Luca',
    'Chiara',
    'Alessandro',
    'Sara',
    'Matteo',
    'Elena',
    'Davide',
    'Martina',
    'Andrea',
    'Valentina',
    'Simone',
    'Federica',
    'Lorenzo',
  ];
  const lastNames = [
    'Rossi',
    'Bianchi',
    'Romano',
    'Colombo',
    'Ricci',
    'Marino',
    'Greco',
    'Bruno',
    'Gallo',
    'Conti',
    'De Luca',
    'Costa',
    'Giordano',
    'Mancini',
    'Rizzo',
    'Lombardi',
    "D'Amico",
    'Esposito',
    'Ferrari',
    'Russo',
  ];
  // Consonants, then vowels, then X: the three letters a surname or a name gives the code.
  const letters = (name: string) => {
    const upper = name.toUpperCase().replace(/[^A-Z]/g, '');
    return `${upper.replace(/[AEIOU]/g, '')}${upper.replace(/[^AEIOU]/g, '')}XXX`.slice(0, 3);
  };
  const pool = { firstNames: [] as string[], lastNames: [] as string[], taxCodes: [] as string[], emails: [] as string[] };
  for (let i = 0; i < size; i++) {
    const firstName = firstNames[i % firstNames.length]!;
    const lastName = lastNames[(i * 7) % lastNames.length]!;
    const first15 = `${letters(lastName)}${letters(firstName)}${String(60 + (i % 40)).padStart(2, '0')}${MONTH_LETTERS[i % 12]}${String(1 + (i % 28)).padStart(2, '0')}F205`;
    const taxCode = first15 + computeCheckCharacter(first15);
    if (!checkTaxCode(taxCode).valid) throw new Error(`made an invalid tax code ${taxCode}`);
    pool.firstNames.push(firstName);
    pool.lastNames.push(lastName);
    pool.taxCodes.push(taxCode);
    pool.emails.push(`${firstName}.${lastName.replace(/[^A-Za-z]/g, '')}${i}@example.com`.toLowerCase());
  }
  return pool;
}

/**
 * Application `i` has up to three events, with the data and metadata the application
 * service stores (a submission like the fixture's, with varied applicants, amounts,
 * terms and regions; a rate lock; then an approval or, one in five, a rejection):
 * MortgageApplicationSubmitted v1, InterestRateLocked v1, ApplicationApproved or
 * ApplicationRejected v1. They are interleaved with other applications' as in real
 * life: the lock comes `spread` applications later, the decision `2 × spread` later, so
 * a batch of the projector meets applications it has already written. An event's
 * position is its place in that order, (i + (k − 1) × spread) × 3 + k for its k-th
 * event: unique, increasing along each stream, and far below any position a live
 * transaction can take (txid × 65536), so the gap-safe readAll sees them all.
 * Applications are submitted 20 s apart, ending a day ago.
 */
const seedSql = `
  WITH apps AS MATERIALIZED (
    SELECT i, gen_random_uuid() AS id, gen_random_uuid() AS correlation_id, 1 + i % $4 AS who,
           100000 + i * 7919 % 300 * 1000 AS amount
      FROM generate_series($1::bigint, $2::bigint) AS i
  ), facts AS (
    SELECT a.*, k, (a.i + (k - 1) * $5) * 3 + k AS position,
           $3::timestamptz + (a.i + (k - 1) * $5) * interval '20 seconds' AS at
      FROM apps a CROSS JOIN generate_series(1, 3) AS k
     WHERE (a.i - 1) * 3 + k <= $6
  )
  INSERT INTO mutuo_events (position, stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at)
  SELECT f.position, 'application-' || f.id, f.k, gen_random_uuid(),
         CASE WHEN f.k = 1 THEN 'MortgageApplicationSubmitted' WHEN f.k = 2 THEN 'InterestRateLocked'
              WHEN f.i % 5 = 0 THEN 'ApplicationRejected' ELSE 'ApplicationApproved' END,
         CASE WHEN f.k = 2 THEN 2 ELSE 1 END,
         CASE WHEN f.k = 1 THEN jsonb_build_object(
                'applicationId', f.id,
                'applicant', jsonb_build_object('firstName', ($7::text[])[f.who], 'lastName', ($8::text[])[f.who],
                                                'taxCode', ($9::text[])[f.who], 'email', ($10::text[])[f.who]),
                'income', jsonb_build_object('monthlyNetCents', (1800 + f.i * 31 % 50 * 100) * 100,
                                             'monthlyDebtsCents', CASE WHEN f.i % 3 = 0 THEN 25000 ELSE 0 END,
                                             'employment', (ARRAY['permanent', 'permanent', 'permanent', 'fixed-term', 'self-employed', 'retired'])[1 + f.i % 6]),
                'property', jsonb_build_object('valueCents', f.amount * (125 + f.i % 4 * 10) / 100 * 100,
                                               'region', ($11::text[])[1 + f.i * 7 % 20], 'energyClass', 'unknown'),
                'loan', jsonb_build_object('amountCents', f.amount * 100, 'termYears', (ARRAY[15, 20, 25, 30])[1 + f.i % 4],
                                           'rateType', CASE WHEN f.i % 4 = 0 THEN 'variable' ELSE 'fixed' END,
                                           'publicGuarantee', f.i % 10 = 0),
                'submittedAt', t.iso)
              WHEN f.k = 2 THEN jsonb_build_object('annualRate', trim_scale((300 + f.i % 4 * 15)::numeric / 100)::text, 'lockDays', 30, 'lockedAt', t.iso, 'expiresAt', t.expires)
              WHEN f.i % 5 = 0 THEN jsonb_build_object('reason', 'credit check: debt-to-income 38.20 % is over the 35.00 % cap', 'rejectedAt', t.iso)
              ELSE jsonb_build_object('contractNumber', 'MU' || lpad((f.i * 7919 % 10000000000)::text, 10, '0'), 'approvedAt', t.iso)
         END,
         jsonb_build_object(
           'actor', CASE WHEN f.k = 3 THEN 'system:application' ELSE 'anonymous' END,
           'occurredAt', t.iso,
           'causationId', CASE WHEN f.k = 3 THEN gen_random_uuid()::text END,
           'correlationId', CASE WHEN f.k = 2 THEN gen_random_uuid() ELSE f.correlation_id END),
         f.at + interval '3 milliseconds'
    FROM facts f
   CROSS JOIN LATERAL (
         SELECT to_char(f.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS iso,
                to_char((f.at + interval '30 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS expires) t`;

async function seedEvents(client: SqlClient, total: number): Promise<number> {
  const pool = applicantPool();
  const spread = 2_000;
  const apps = Math.ceil(total / 3);
  const chunk = 50_000;
  const base = new Date(Date.now() - 86_400_000 - (apps + 2 * spread) * 20_000);
  base.setUTCMilliseconds(0);
  const started = performance.now();
  for (let first = 1; first <= apps; first += chunk) {
    const last = Math.min(apps, first + chunk - 1);
    await client.query(seedSql, [
      first,
      last,
      base.toISOString(),
      pool.firstNames.length,
      spread,
      total,
      pool.firstNames,
      pool.lastNames,
      pool.taxCodes,
      pool.emails,
      [...italianRegions],
    ]);
    process.stdout.write(`${thousands(Math.min(total, last * 3))} `);
  }
  const [row] = await client.query<{ n: string; head: string; bound: string }>(
    `SELECT count(*)::text AS n, max(position)::text AS head, (pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 65536)::text AS bound FROM mutuo_events`,
  );
  if (Number(row!.n) !== total) throw new Error(`seeded ${row!.n} events, not ${total}`);
  if (Number(row!.head) >= Number(row!.bound)) throw new Error('the seeded positions are not all below the snapshot bound');
  // As an event store that has been around a while: hint bits set, statistics known, nothing left to flush.
  await client.exec('VACUUM ANALYZE mutuo_events');
  await client.exec('CHECKPOINT');
  process.stdout.write(`in ${fixed((performance.now() - started) / 1000)} s; `);
  return Number(row!.head);
}

/** The first seeded application read back and decoded as the projector will: the data must pass the catalog. */
async function checkSeeded(client: SqlClient): Promise<void> {
  // As stored: the seeded data is written in the clear, as the bench's own inserts wrote it.
  const first = await selectStream(client, (await storedLog(client).readAll(0, 1))[0]!.streamId);
  let state = applicationDecider.initialState;
  for (const stored of first)
    state = applicationDecider.evolve(state, applicationEventCatalog.decode(stored.type, stored.schemaVersion, stored.data) as ApplicationEvent);
  if (first.length !== 3 || (state.status !== 'approved' && state.status !== 'rejected'))
    throw new Error(`the first seeded application reads as ${state.status}`);
}

type RebuildFigure = { readonly projection: string; readonly events: number; readonly seconds: number; readonly perSecond: number };

async function measureRebuilds(): Promise<RebuildFigure[]> {
  return scoped(async (cleanup) => {
    const database = await openTestPostgres(2);
    cleanup.add(() => database.dispose());
    const client = database.client;
    await registerEventSchemas(client, platformEventHistory);
    process.stdout.write(`rebuild: seeding ${thousands(eventCount)} events… `);
    const head = await seedEvents(client, eventCount);
    await checkSeeded(client);
    // The live projections and the relay start where the log ends: what is measured is the rebuild alone.
    await client.query('INSERT INTO mutuo_projections (name, position) SELECT unnest($1::text[]), $2', [projectionNames, head]);
    await client.query(`INSERT INTO mutuo_relay (name, holder, lease_until, position) VALUES ('outbox', 'bench', now(), $1)`, [head]);
    const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-bench-read-'));
    cleanup.add(() => rm(dataDir, { recursive: true, force: true }));
    const projectorUrl = await startService(
      'projector',
      { MUTUO_DATA_DIR: dataDir, DATABASE_URL: database.connectionString!, REDIS_URL: '', AMQP_URL: '', ...benchRateLimit },
      cleanup,
      true,
    );
    // A rebuild is refused until this process holds the projection's lease.
    for (let held = 0; held < projectionNames.length; await sleep(100)) {
      const [row] = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM mutuo_projections WHERE name = ANY($1) AND holder IS NOT NULL', [
        projectionNames,
      ]);
      held = Number(row!.n);
    }
    console.log('rebuilding:');
    const figures: RebuildFigure[] = [];
    for (const name of rebuilt) figures.push(await rebuild(projectorUrl, name));
    return figures;
  });
}

async function rebuild(projectorUrl: string, name: string): Promise<RebuildFigure> {
  const started = performance.now();
  const admin = await bearer(projectorUrl, 'ada');
  await expectStatus(await fetch(`${projectorUrl}/api/projections/${name}/rebuild`, { method: 'POST', headers: admin }), 202, `the rebuild of ${name}`);
  let printed = performance.now();
  for (;;) {
    await sleep(100);
    const response = await expectStatus(await fetch(`${projectorUrl}/api/projections/${name}/rebuild`, { headers: admin }), 200, `the progress of ${name}`);
    const progress = (await response.json()) as RebuildProgress;
    if (progress.state === 'failed') throw new Error(`the rebuild of ${name} failed: ${progress.error}`);
    if (progress.state === 'done') {
      const wall = (performance.now() - started) / 1000;
      console.log(`  ${name}: done, ${thousands(progress.applied)} events in ${fixed(wall, 1)} s`);
      // The projector's own figure: applied over the time from its start to the swap's end.
      return { projection: name, events: progress.applied, seconds: progress.applied / progress.eventsPerSecond, perSecond: progress.eventsPerSecond };
    }
    if (performance.now() - printed >= 2_000) {
      printed = performance.now();
      const eta = progress.etaSeconds === null ? '?' : fixed(progress.etaSeconds);
      console.log(
        `  ${name}: ${progress.state}, ${thousands(progress.applied)} / ${thousands(progress.total)} events, ${thousands(progress.eventsPerSecond)}/s, ${eta} s to go`,
      );
    }
  }
}

// ---- the run ----

console.log(
  `Node ${process.version} on ${process.platform}/${process.arch}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
);
console.log(
  `${seconds} s per figure after 1 s of warm-up (views and simulations: ${rounds} rounds of the ceiling and Mutuo in turn, the share of bare the median of the rounds' own), ${connections} connections, ${thousands(applications)} applications, ${thousands(eventCount)} events to rebuild, ${rate} commands/s; PostgreSQL at ${testDatabaseUrl.replace(/\/\/[^@]*@/, '//')}, Redis at ${redisUrl.replace(/\/\/[^@]*@/, '//')}`,
);
{
  const admin = new pg.Client({ connectionString: testDatabaseUrl });
  await admin.connect();
  const { rows } = await admin.query<{ server_version: string }>('SHOW server_version');
  await admin.end();
  console.log(`PostgreSQL ${rows[0]?.server_version ?? '?'} on the same machine; load generator, servers and databases share the cores`);
}
if (args['cpu-prof']) console.log(`profiling the query processes into ${args['cpu-prof']}: the figures are slower than without`);

const readFigures: ReadFigures[] = [];
let rebuildFigures: RebuildFigure[] = [];
if (only.has('views') || only.has('simulations') || only.has('lag')) {
  if (!args['no-postgres'] || only.has('lag')) readFigures.push(await measureReadSide(distributedSetup));
  if (!args['no-pglite'] && (only.has('views') || only.has('simulations'))) readFigures.push(await measureReadSide(embeddedSetup));
}
if (only.has('rebuild')) rebuildFigures = await measureRebuilds();

if (readFigures.some((figures) => figures.idlePercent !== undefined)) {
  console.log('');
  console.log(`0. Idle: CPU of the process serving the queries over ${idleSeconds} s once the seeded flows have settled, no request coming`);
  for (const { label, idlePercent } of readFigures) if (idlePercent !== undefined) console.log(`   ${label}: ${fixed(idlePercent, 1)} % of a core`);
}
if (readFigures.some((figures) => figures.views)) {
  console.log('');
  console.log(`1. Customer view: GET /api/applications/:id over ${thousands(applications)} applications in turn, ${connections} connections, ${seconds} s`);
  console.log(
    `   (bare: Fastify in its own process answering the same bodies from a Map; target ≥ ${targets.viewsOfBare} % of bare and p99 ≤ ${targets.viewsP99Ms} ms)`,
  );
  console.log('');
  console.log(
    '| setup | req/s | p50 ms | p99 ms | bare req/s | bare p50 ms | bare p99 ms | of bare | rounds | CPU µs/req | bare CPU µs/req | body bytes | target met |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|');
  for (const { label, views } of readFigures) {
    if (!views) continue;
    const share = shareOf(views);
    const ok = share >= targets.viewsOfBare && views.mutuo.p99Ms <= targets.viewsP99Ms;
    console.log(
      `| ${label} | ${thousands(views.mutuo.perSecond)} | ${fixed(views.mutuo.p50Ms)} | ${fixed(views.mutuo.p99Ms)} | ${thousands(views.bare.perSecond)} | ${fixed(views.bare.p50Ms)} | ${fixed(views.bare.p99Ms)} | ${fixed(share)} % | ${views.shares.map((round) => fixed(round)).join(', ')} | ${fixed(views.mutuo.cpuUsPerRequest, 1)} | ${fixed(views.bare.cpuUsPerRequest, 1)} | ${views.bytes} | ${met(ok)} |`,
    );
  }
}
if (readFigures.some((figures) => figures.simulations)) {
  console.log('');
  console.log(`2. Simulations: POST /api/simulations ${simulationBody}, ${connections} connections, ${seconds} s`);
  console.log(`   (bare: a Fastify POST route answering a fixed JSON of the same size; target ≥ ${targets.simulationsOfBare} % of bare)`);
  console.log('');
  console.log(
    '| setup | req/s | p50 ms | p99 ms | bare req/s | bare p50 ms | bare p99 ms | of bare | rounds | CPU µs/req | bare CPU µs/req | answer bytes | target met |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|');
  for (const { label, simulations } of readFigures) {
    if (!simulations) continue;
    const share = shareOf(simulations);
    console.log(
      `| ${label} | ${thousands(simulations.mutuo.perSecond)} | ${fixed(simulations.mutuo.p50Ms)} | ${fixed(simulations.mutuo.p99Ms)} | ${thousands(simulations.bare.perSecond)} | ${fixed(simulations.bare.p50Ms)} | ${fixed(simulations.bare.p99Ms)} | ${fixed(share)} % | ${simulations.shares.map((round) => fixed(round)).join(', ')} | ${fixed(simulations.mutuo.cpuUsPerRequest, 1)} | ${fixed(simulations.bare.cpuUsPerRequest, 1)} | ${simulations.bytes} | ${met(share >= targets.simulationsOfBare)} |`,
    );
  }
}
if (rebuildFigures.length > 0) {
  console.log('');
  console.log(
    `3. Rebuild: each projection from position 0 over ${thousands(eventCount)} stored events on PostgreSQL, by \`mutuo projector\` as its own process`,
  );
  console.log(`   (events/s = events read / time from the rebuild's start to its swap; target for customer-view ≥ ${thousands(targets.rebuildPerSecond)}/s)`);
  console.log('');
  console.log('| projection | events | seconds | events/s | target met |');
  console.log('|---|---:|---:|---:|---|');
  for (const figure of rebuildFigures) {
    const verdict = figure.projection === 'customer-view' ? met(figure.perSecond >= targets.rebuildPerSecond) : 'no target';
    console.log(`| ${figure.projection} | ${thousands(figure.events)} | ${fixed(figure.seconds, 1)} | ${thousands(figure.perSecond)} | ${verdict} |`);
  }
}
const lagged = readFigures.filter((figures) => figures.lag);
if (lagged.length > 0) {
  console.log('');
  console.log(
    `4. Projection lag under load: an open-loop writer at ${rate} submissions/s for ${seconds} s; lag = the customer view's checkpoint (polled every ${pollMs} ms) reaching the answered position − the 201's arrival`,
  );
  console.log(`   (target p99 ≤ ${targets.lagP99Ms} ms)`);
  console.log('');
  console.log(
    '| setup | asked/s | sent/s | answered/s | failed | writer kept the rate | command p50 ms | command p99 ms | lag p50 ms | lag p99 ms | lag max ms | never reached | target met |',
  );
  console.log('|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|');
  for (const { label, lag } of lagged) {
    if (!lag) continue;
    const kept = lag.answeredPerSecond >= 0.95 * lag.asked && lag.failed === 0;
    console.log(
      `| ${label} | ${lag.asked} | ${fixed(lag.sentPerSecond)} | ${fixed(lag.answeredPerSecond)} | ${lag.failed} | ${kept ? 'yes' : '**no**'} | ${fixed(lag.commandP50Ms, 1)} | ${fixed(lag.commandP99Ms, 1)} | ${fixed(lag.lagP50Ms, 1)} | ${fixed(lag.lagP99Ms, 1)} | ${fixed(lag.lagMaxMs, 1)} | ${lag.unresolved} | ${met(lag.lagP99Ms <= targets.lagP99Ms && lag.unresolved === 0)} |`,
    );
    if (!kept) console.log(`\nThe writer did not keep ${lag.asked} commands/s: ${fixed(lag.answeredPerSecond)}/s answered, ${lag.failed} failed.`);
  }
}
