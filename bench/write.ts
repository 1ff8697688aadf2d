/**
 * Write-side benchmark: submit-application commands per second and latency at several
 * concurrencies on a real PostgreSQL, next to the raw ceiling measured in the same run
 * (one small JSONB row INSERTed per transaction at the same concurrency).
 *
 *   npm run bench:write [-- --seconds 5 --clients 1,8,32]
 *
 * DATABASE_URL picks the server (default: postgres://postgres@127.0.0.1:5432/test);
 * everything happens in a schema of its own that is dropped at the end.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { loadConfig } from '../src/app/config.ts';
import { computeCheckCharacter } from '../src/domain/codice-fiscale.ts';
import { defaultRateTable } from '../src/domain/rates.ts';
import { migrate } from '../src/platform/sql/migrate.ts';
import { createPostgresClient } from '../src/platform/sql/postgres.ts';
import { SqlEventStore } from '../src/platform/eventstore/store.ts';
import { sqlSubjectKeys } from '../src/privacy/subject-keys.ts';
import { createPersonalDataVault } from '../src/privacy/vault.ts';
import { platformEventHistory } from '../src/app/catalog.ts';
import { createApplicationService } from '../src/features/application/service.ts';
import { devBearer } from '../src/security/testing.ts';
import { migrationFolders } from '../src/app/migrations.ts';

const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, clients: { type: 'string', default: '1,8,32' } },
});
const seconds = Number(args.seconds);
const clientCounts = args.clients.split(',').map(Number);
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `mutuo_bench_${process.pid}`;
const writeConcurrency = Number(process.env.DATABASE_WRITE_CONCURRENCY ?? 4);
const submission = JSON.parse(await readFile(new URL('../test/fixtures/submission.json', import.meta.url), 'utf8'));

const monthLetters = 'ABCDEHLMPRST';
/** The letters a place code starts with: Italian municipalities (A–M) and foreign countries (Z). */
const placeLetters = 'ABCDEFGHIJKLMZ';
let applicants = 0;
/**
 * A new person for each submission, as a lender sees them: each has a data subject and
 * key of their own to make (their tax code varies in the birth date and the town).
 */
function nextApplicant(): { firstName: string; lastName: string; taxCode: string; email: string } {
  const n = applicants++;
  const year = String(50 + (n % 50)).padStart(2, '0');
  const month = monthLetters[Math.floor(n / 50) % 12]!;
  const day = String(1 + (Math.floor(n / 600) % 28)).padStart(2, '0');
  const town = `${placeLetters[Math.floor(n / 16_800) % placeLetters.length]}${String(1 + (Math.floor(n / (16_800 * placeLetters.length)) % 999)).padStart(3, '0')}`;
  const first15 = `BNCGLI${year}${month}${day}${town}`;
  return { ...submission.applicant, taxCode: first15 + computeCheckCharacter(first15) };
}

type Figure = { readonly perSecond: number; readonly p50Ms: number; readonly p99Ms: number };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Runs `clients` loops of `operation` for the duration, after a one-second warm-up. */
async function closedLoop(clients: number, operation: () => Promise<unknown>): Promise<Figure> {
  const run = async (durationMs: number, latencies: number[] | null) => {
    const end = performance.now() + durationMs;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < end) {
          const start = performance.now();
          await operation();
          latencies?.push(performance.now() - start);
        }
      }),
    );
  };
  await run(1000, null);
  const latencies: number[] = [];
  const started = performance.now();
  await run(seconds * 1000, latencies);
  const elapsedS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { perSecond: latencies.length / elapsedS, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

async function rawInsert(clients: number): Promise<Figure> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: clients, options: `-c search_path=${schema}` });
  const row = JSON.stringify({ applicationId: randomUUID(), amountCents: 20_000_000, region: 'Lombardia' });
  try {
    // Prepared once per connection, as the store's statements are: the ceiling is the best bare insert.
    const insert = { name: 'bench_raw_insert', text: 'INSERT INTO bench_raw (data) VALUES ($1::jsonb)', values: [row] };
    return await closedLoop(clients, () => pool.query(insert));
  } finally {
    await pool.end();
  }
}

async function serviceSubmit(clients: number): Promise<Figure> {
  const client = createPostgresClient({ connectionString: databaseUrl, schema, maxConnections: clients });
  // As the platform writes: the applicant sealed with their key.
  const personalData = createPersonalDataVault({
    keys: sqlSubjectKeys(client, { digestSecret: 'bench digest secret, 32 characters or more' }),
    definitions: platformEventHistory,
  });
  const applications = createApplicationService({
    store: new SqlEventStore(client, { maxConcurrentWrites: writeConcurrency, personalData }),
    clock: () => new Date(),
    newId: randomUUID,
    rateTable: () => defaultRateTable,
    limits: loadConfig(process.env).applications,
  });
  const context = { correlationId: 'bench', actor: 'bench' };
  try {
    const { applicant, income, property, loan } = submission;
    const command = {
      applicant,
      income: { monthlyNetCents: income.monthlyNet * 100, monthlyDebtsCents: 0, employment: income.employment },
      property: { valueCents: property.value * 100, region: property.region },
      loan: { amountCents: loan.amount * 100, termYears: loan.termYears, rateType: loan.rateType, publicGuarantee: false },
    };
    return await closedLoop(clients, () => applications.submit({ ...command, applicant: nextApplicant() }, context));
  } finally {
    await client.close();
  }
}

/** The whole command path as a client sees it: HTTP, validation, decide, append, answer. */
async function httpSubmit(url: string, clients: number): Promise<Figure> {
  const request = {
    url: `${url}/api/applications`,
    method: 'POST' as const,
    // An applicant's token: verified once, then remembered by the server, as for any client.
    headers: { ...(await devBearer(url, 'giulia')), 'content-type': 'application/json' },
    // A new person each time (see nextApplicant), written into each request as it is sent.
    requests: [{ setupRequest: (request: autocannon.Request) => ({ ...request, body: JSON.stringify({ ...submission, applicant: nextApplicant() }) }) }],
    connections: clients,
  };
  await autocannon({ ...request, duration: 1 });
  const result = await autocannon({ ...request, duration: seconds });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`HTTP run had ${result.non2xx} non-2xx answers and ${result.errors} errors`);
  return { perSecond: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99 };
}

async function startServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const serverDatabaseUrl = new URL(databaseUrl);
  serverDatabaseUrl.searchParams.set('options', `-c search_path=${schema}`);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/app/cli/main.ts', 'application'], {
    cwd: new URL('../', import.meta.url),
    env: { ...process.env, PORT: '0', DATABASE_URL: serverDatabaseUrl.toString(), DATABASE_POOL_SIZE: '32', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // The start-up line carries the address the server listens on.
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const match = /API docs at (http:\/\/[\d.]+:\d+)/.exec(output);
      if (match) {
        clearInterval(timer);
        resolve(match[1]!);
      }
    }, 50);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

const admin = new pg.Client({ connectionString: databaseUrl });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
await admin.query(`CREATE TABLE ${schema}.bench_raw (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, data jsonb NOT NULL)`);
const migrator = createPostgresClient({ connectionString: databaseUrl, schema, maxConnections: 1 });
await migrate(migrator, migrationFolders);
await migrator.close();

const rows: string[] = [];
try {
  const server = await startServer();
  try {
    for (const clients of clientCounts) {
      const raw = await rawInsert(clients);
      const service = await serviceSubmit(clients);
      const http = await httpSubmit(server.url, clients);
      const line = (name: string, figure: Figure) =>
        `| ${clients} | ${name} | ${figure.perSecond.toFixed(0)} | ${figure.p50Ms.toFixed(2)} | ${figure.p99Ms.toFixed(2)} | ${((100 * figure.perSecond) / raw.perSecond).toFixed(0)} % |`;
      rows.push(line('raw INSERT (ceiling)', raw), line('submit, command handler', service), line('submit over HTTP', http));
      console.error(`${clients} clients done`);
    }
  } finally {
    await server.stop();
  }
} finally {
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}

console.log(`PostgreSQL ${databaseUrl.replace(/\/\/[^@]*@/, '//')}, ${seconds} s per figure after 1 s of warm-up\n`);
console.log('| clients | what | per second | p50 ms | p99 ms | of ceiling |');
console.log('| ---: | --- | ---: | ---: | ---: | ---: |');
console.log(rows.join('\n'));
