/**
 * Flow benchmark: applications per second through the whole processing flow, and the
 * time from an application's submission to its decision, with every simulated outside
 * system (bureaus, mainframe, SMTP) answering at once. Next to it, the raw ceiling
 * measured in the same run: a bare Fastify server taking the same HTTP requests with the
 * same bodies and writing as many rows per application as the flow writes events, with
 * bare INSERTs into the same kind of database.
 *
 *   npm run bench:flow [-- --applications 300 --concurrency 32 --no-pglite --no-rabbitmq --no-kafka]
 *
 * Each application is driven as an applicant in a hurry would: submit, upload the three
 * sample PDFs, lock the rate, one request after the other. Its latency runs from the
 * submission's request to the moment a consumer of this process is handed its
 * ApplicationApproved. Three setups: the embedded default (PGlite and the in-process bus)
 * and PostgreSQL + RabbitMQ (DATABASE_URL, AMQP_URL; in a schema and a virtual host of
 * its own, removed at the end), then PostgreSQL + Apache Kafka (KAFKA_BROKERS; in a topic
 * and consumer groups of its own, removed at the end).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { openPlatform } from '../src/app/platform.ts';
import { loadConfig } from '../src/app/config.ts';
import { createPgliteClient } from '../src/platform/sql/pglite.ts';
import type { SqlClient } from '../src/platform/sql/sql-client.ts';
import { openTestPostgres } from '../src/platform/sql/testing.ts';
import { openVirtualHost } from '../src/platform/messaging/testing.ts';
import { Admin } from '@platformatic/kafka';
import { devBearer, type AuthHeaders } from '../src/security/testing.ts';
import { defineConsumer } from '../src/platform/messaging/consumer.ts';
import { ApplicationApproved, ApplicationRejected, ApplicationWithdrawn } from '../src/features/application/index.ts';
import { documentKinds } from '../src/features/documents/sample-pdfs.ts';

const { values: args } = parseArgs({
  options: {
    applications: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '32' },
    'no-rabbitmq': { type: 'boolean', default: false },
    'no-kafka': { type: 'boolean', default: false },
    'no-pglite': { type: 'boolean', default: false },
  },
});
const applications = Number(args.applications);
const concurrency = Number(args.concurrency);
const warmUp = 20;
/** Applications sent one at a time, after the saturated pass, for the latency of an idle platform. */
const alonePasses = 30;
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const kafkaBrokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
/** A pass in which nothing is decided for this long has failed. */
const stallMs = 60_000;
const submission = await readFile(new URL('../test/fixtures/submission.json', import.meta.url), 'utf8');
const decisions = [ApplicationApproved, ApplicationRejected, ApplicationWithdrawn] as const;

type Figure = { readonly perSecond: number; readonly p50Ms: number; readonly p99Ms: number };
type Pdfs = ReadonlyMap<string, Uint8Array>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function figure(latencies: number[], elapsedMs: number): Figure {
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? Number.NaN;
  return { perSecond: latencies.length / (elapsedMs / 1000), p50Ms: at(50), p99Ms: at(99) };
}

async function expect(response: Response, status: number, what: string): Promise<Response> {
  if (response.status !== status) throw new Error(`${what} answered ${response.status}: ${await response.text()}`);
  return response;
}

/** The applicant every application is submitted by (the development provider's token, cached per platform). */
const applicants = new Map<string, Promise<AuthHeaders>>();
function applicant(baseUrl: string): Promise<AuthHeaders> {
  if (!applicants.has(baseUrl)) applicants.set(baseUrl, devBearer(baseUrl, 'giulia'));
  return applicants.get(baseUrl)!;
}

async function submit(baseUrl: string): Promise<string> {
  const headers = { ...(await applicant(baseUrl)), 'content-type': 'application/json' };
  const response = await fetch(`${baseUrl}/api/applications`, { method: 'POST', headers, body: submission });
  return ((await (await expect(response, 201, 'the submission')).json()) as { applicationId: string }).applicationId;
}

/** The rest of an application's requests after its submission: three uploads and the rate lock. */
async function complete(baseUrl: string, applicationId: string, pdfs: Pdfs): Promise<void> {
  const headers = await applicant(baseUrl);
  for (const kind of documentKinds) {
    const form = new FormData();
    form.append('kind', kind);
    form.append('file', new Blob([pdfs.get(kind)!], { type: 'application/pdf' }), `${kind}.pdf`);
    let response = await fetch(`${baseUrl}/api/applications/${applicationId}/documents`, { method: 'POST', body: form, headers });
    // Over a broker the Document service may not have heard of a submission this fresh: it answers 404, and a client tries again.
    for (let attempt = 1; response.status === 404 && attempt < 15; attempt++)
      response = await fetch(`${baseUrl}/api/applications/${applicationId}/documents`, { method: 'POST', body: form, headers });
    await expect(response, 202, 'an upload');
  }
  const locked = await fetch(`${baseUrl}/api/applications/${applicationId}/rate-lock`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: '{}',
  });
  await expect(locked, 200, 'the rate lock');
}

/** Runs `count` drives, `concurrency` at a time. */
async function crowd(count: number, drive: (i: number) => Promise<void>, at = concurrency): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(at, count) }, async () => {
      while (next < count) await drive(next++);
    }),
  );
}

type Setup = {
  readonly label: string;
  readonly env: Record<string, string>;
  /** The database the ceiling writes to: the same kind, opened after the platform closed. */
  readonly ceilingDatabase: () => Promise<SqlClient>;
  readonly dispose: () => Promise<void>;
};

type FlowResult = {
  readonly flow: Figure & { readonly requests: Figure };
  readonly alone: Figure & { readonly requests: Figure };
  readonly eventsPerApplication: number;
  readonly commitsPerApplication: number;
  readonly pdfs: Pdfs;
};

/** The whole platform in this process, driven over HTTP. */
async function measureFlow(setup: Setup): Promise<FlowResult> {
  const config = loadConfig({ PORT: '0', BUREAU_LATENCY_MS: '0', MAINFRAME_LATENCY_MS: '0', ...setup.env });
  const decidedAt = new Map<string, { at: number; type: string }>();
  const platform = await openPlatform(config, false, {
    consumers: [
      defineConsumer({
        name: 'bench-decisions',
        events: decisions,
        handle: async (event) => {
          if (!decidedAt.has(event.partitionKey)) decidedAt.set(event.partitionKey, { at: performance.now(), type: event.type });
        },
      }),
    ],
  });
  try {
    const baseUrl = await platform.server.listen({ port: 0, host: '127.0.0.1' });
    // The sandbox's documents for the fixture's facts, the same for every application.
    const first = await submit(baseUrl);
    const pdfs = new Map<string, Uint8Array>();
    for (const kind of documentKinds) {
      const response = await expect(
        await fetch(`${baseUrl}/api/sandbox/applications/${first}/documents/${kind}`, { headers: await applicant(baseUrl) }),
        200,
        'a sample PDF',
      );
      pdfs.set(kind, new Uint8Array(await response.arrayBuffer()));
    }
    await complete(baseUrl, first, pdfs);

    const pass = async (count: number, at = concurrency) => {
      const startedAt = new Map<string, number>();
      const requestsMs: number[] = [];
      await crowd(
        count,
        async () => {
          const at = performance.now();
          const id = await submit(baseUrl);
          startedAt.set(id, at);
          await complete(baseUrl, id, pdfs);
          requestsMs.push(performance.now() - at);
        },
        at,
      );
      let decided = -1;
      let progressedAt = performance.now();
      for (;;) {
        const now = [...startedAt.keys()].filter((id) => decidedAt.has(id)).length;
        if (now === startedAt.size) break;
        if (now !== decided) [decided, progressedAt] = [now, performance.now()];
        else if (performance.now() - progressedAt > stallMs) throw new Error(`stalled: ${now} of ${startedAt.size} decided`);
        await sleep(10);
      }
      const refused = [...startedAt.keys()].filter((id) => decidedAt.get(id)!.type !== 'ApplicationApproved');
      if (refused.length > 0) throw new Error(`${refused.length} applications were not approved, e.g. ${refused[0]}`);
      const latencies = [...startedAt].map(([id, at]) => decidedAt.get(id)!.at - at);
      const elapsed = Math.max(...[...startedAt.keys()].map((id) => decidedAt.get(id)!.at)) - Math.min(...startedAt.values());
      return { ...figure(latencies, elapsed), requests: figure(requestsMs, elapsed) };
    };

    await pass(warmUp);
    // The notifications of the last decisions are still being sent: let the flow settle before counting.
    await sleep(1_000);
    const count = async () => Number((await platform.client.query<{ n: string }>('SELECT count(*)::text AS n FROM mutuo_events'))[0]!.n);
    // On PostgreSQL, the transactions committed in this database (the flow is all there is in it).
    const commits = async () =>
      config.databaseUrl
        ? Number((await platform.client.query<{ n: string }>('SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()'))[0]!.n)
        : Number.NaN;
    const [eventsBefore, commitsBefore] = [await count(), await commits()];
    const flow = await pass(applications);
    await sleep(1_000);
    const eventsPerApplication = ((await count()) - eventsBefore) / applications;
    // pg_stat_database is updated when a backend reports, at most every half second or so.
    await sleep(1_000);
    const commitsPerApplication = ((await commits()) - commitsBefore) / applications;
    // Latency alone: one applicant at a time, nothing queued behind anything.
    const alone = await pass(alonePasses, 1);
    return { flow, alone, eventsPerApplication, commitsPerApplication, pdfs };
  } finally {
    await platform.close();
  }
}

/**
 * The ceiling: the same requests, with the same bodies, to bare Fastify routes that each
 * write their share of the flow's events as single-row INSERTs, one after the other.
 */
async function measureCeiling(database: SqlClient, rowsPerApplication: number, pdfs: Pdfs): Promise<Figure> {
  await database.exec('CREATE TABLE bench_ceiling (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stream_id text NOT NULL, data jsonb NOT NULL)');
  const requests = 2 + documentKinds.length;
  const shares = Array.from(
    { length: requests },
    (_, i) => Math.floor(((i + 1) * rowsPerApplication) / requests) - Math.floor((i * rowsPerApplication) / requests),
  );
  const insert = async (streamId: string, rows: number) => {
    for (let i = 0; i < rows; i++) await database.query('INSERT INTO bench_ceiling (stream_id, data) VALUES ($1, $2::jsonb)', [streamId, submission]);
  };
  const app = Fastify();
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  // The clients ask for a token as they do of Mutuo; the ceiling checks none.
  app.post('/auth/dev/token', async () => ({ accessToken: 'ceiling' }));
  let uploads = 0;
  app.post('/api/applications', async (_request, reply) => {
    const applicationId = randomUUID();
    await insert(applicationId, shares[0]!);
    return reply.status(201).send({ applicationId });
  });
  app.post<{ Params: { id: string } }>('/api/applications/:id/documents', async (request, reply) => {
    await insert(request.params.id, shares[1 + (uploads++ % documentKinds.length)]!);
    return reply.status(202).send({ applicationId: request.params.id });
  });
  app.post<{ Params: { id: string } }>('/api/applications/:id/rate-lock', async (request) => {
    await insert(request.params.id, shares[requests - 1]!);
    return { applicationId: request.params.id };
  });
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const pass = async (count: number) => {
      const latencies: number[] = [];
      const started = performance.now();
      await crowd(count, async () => {
        const at = performance.now();
        await complete(baseUrl, await submit(baseUrl), pdfs);
        latencies.push(performance.now() - at);
      });
      return figure(latencies, performance.now() - started);
    };
    await pass(warmUp);
    return await pass(applications);
  } finally {
    await app.close();
  }
}

async function embeddedSetup(): Promise<Setup> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-bench-flow-'));
  let ceiling: SqlClient | undefined;
  return {
    label: 'embedded (PGlite, in-process bus)',
    env: { MUTUO_DATA_DIR: dataDir },
    ceilingDatabase: async () => (ceiling = await createPgliteClient(join(dataDir, 'ceiling'))),
    dispose: async () => {
      await ceiling?.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function brokerSetup(): Promise<Setup> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-bench-flow-'));
  const database = await openTestPostgres(20);
  const broker = await openVirtualHost(amqpUrl);
  return {
    label: 'PostgreSQL + RabbitMQ',
    env: { MUTUO_DATA_DIR: dataDir, DATABASE_URL: database.connectionString!, AMQP_URL: broker.url },
    // The ceiling writes into the same schema; the flow's tables are idle by then.
    ceilingDatabase: async () => database.client,
    dispose: async () => {
      await Promise.all([database.dispose(), broker.dispose(), rm(dataDir, { recursive: true, force: true })]);
    },
  };
}

async function kafkaSetup(): Promise<Setup> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-bench-flow-'));
  const database = await openTestPostgres(20);
  // A topic of its own, whose consumer groups are named in its namespace (mutuo.bench-flow-<pid>.<consumer>).
  const namespace = `mutuo.bench-flow-${process.pid}`;
  const topic = `${namespace}.events`;
  return {
    label: 'PostgreSQL + Apache Kafka',
    env: { MUTUO_DATA_DIR: dataDir, DATABASE_URL: database.connectionString!, KAFKA_BROKERS: kafkaBrokers, KAFKA_TOPIC: topic },
    ceilingDatabase: async () => database.client,
    dispose: async () => {
      const admin = new Admin({ clientId: 'mutuo-bench', bootstrapBrokers: kafkaBrokers.split(',') });
      try {
        const groups = [...(await admin.listGroups()).keys()].filter((group) => group.startsWith(`${namespace}.`));
        if (groups.length > 0) await admin.deleteGroups({ groups });
        await admin.deleteTopics({ topics: [topic] });
      } finally {
        await admin.close();
      }
      await Promise.all([database.dispose(), rm(dataDir, { recursive: true, force: true })]);
    },
  };
}

const fixed = (value: number, digits = 0) => value.toFixed(digits);
const throughput: string[] = [];
const latency: string[] = [];
console.log(
  `Node ${process.version} on ${process.platform}/${process.arch}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
);
console.log(
  `${applications} applications (after ${warmUp} to warm up), ${concurrency} applicants at a time; PostgreSQL at ${databaseUrl.replace(/\/\/[^@]*@/, '//')}`,
);
const setups = [...(args['no-pglite'] ? [] : [embeddedSetup]), ...(args['no-rabbitmq'] ? [] : [brokerSetup]), ...(args['no-kafka'] ? [] : [kafkaSetup])];
for (const open of setups) {
  const setup = await open();
  try {
    process.stdout.write(`${setup.label}: the flow… `);
    const { flow, alone, eventsPerApplication, commitsPerApplication, pdfs } = await measureFlow(setup);
    process.stdout.write(`${fixed(flow.perSecond, 1)}/s; the ceiling… `);
    const ceiling = await measureCeiling(await setup.ceilingDatabase(), Math.round(eventsPerApplication), pdfs);
    console.log(`${fixed(ceiling.perSecond, 1)}/s`);
    const commits = Number.isNaN(commitsPerApplication) ? 'n/a' : fixed(commitsPerApplication);
    throughput.push(
      `| ${setup.label} | ${fixed(flow.perSecond, 1)} | ${fixed(ceiling.perSecond, 1)} | ${fixed((100 * flow.perSecond) / ceiling.perSecond)} % | ${fixed(flow.p50Ms)} | ${fixed(flow.p99Ms)} | ${fixed(ceiling.p50Ms)} | ${fixed(ceiling.p99Ms)} | ${fixed(eventsPerApplication, 1)} | ${commits} |`,
    );
    latency.push(
      `| ${setup.label} | ${fixed(alone.p50Ms)} | ${fixed(alone.p99Ms)} | ${fixed(alone.requests.p50Ms)} | ${fixed(alone.p50Ms - alone.requests.p50Ms)} |`,
    );
  } finally {
    await setup.dispose();
  }
}
console.log('');
console.log(`Saturated: ${applications} applications, ${concurrency} applicants at a time`);
console.log('');
console.log(
  '| setup | applications/s | ceiling applications/s | flow / ceiling | p50 ms | p99 ms | ceiling p50 ms | ceiling p99 ms | events/application | commits/application |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const row of throughput) console.log(row);
console.log('');
console.log(`One applicant at a time: ${alonePasses} applications, submission to decision`);
console.log('');
console.log('| setup | p50 ms | p99 ms | the 5 requests, p50 ms | after the rate lock, p50 ms |');
console.log('|---|---:|---:|---:|---:|');
for (const row of latency) console.log(row);
