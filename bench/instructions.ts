/**
 * Instructions a serving process executes per simulation request, counted by valgrind's
 * callgrind: unlike requests a second, the count does not move with what else the machine
 * is doing, so it tells where a request's cost goes on a noisy machine.
 *
 *   npm run bench:instructions [-- --requests 5000 --warmup 20000 --rounds 4 --connections 20]
 *
 * Side by side, each in its own process under callgrind, POST /api/simulations answered by:
 * 1. the ceiling of bench:read: a bare Fastify route answering the simulation's JSON from memory;
 * 2. the same, setting in an onRequest hook the headers Mutuo's JSON answers carry (the
 *    security headers and the correlation id), read off Mutuo's own answer;
 * 3. the same with a hook that does nothing, which tells the hook from the headers;
 * 4. `mutuo query` on PostgreSQL (TEST_DATABASE_URL, a schema of its own) and Redis.
 *
 * Each process is warmed up first, uncounted, then counted over `rounds` rounds of
 * `requests`. A round's count includes whatever the process did meanwhile, the garbage
 * collector's and the compiler's threads too, so rounds differ when a major collection or a
 * compilation falls into them: the table gives the lowest round (the steady cost of a
 * request) and the median. Needs valgrind (Debian's package); about 50 times slower than
 * native, so the counts are of few requests.
 */
import autocannon from 'autocannon';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openTestPostgres } from '../src/platform/sql/testing.ts';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000' },
    warmup: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '4' },
    connections: { type: 'string', default: '20' },
  },
});
const requests = Number(args.requests);
const warmup = Number(args.warmup);
const rounds = Number(args.rounds);
const connections = Number(args.connections);
for (const [name, value] of Object.entries({ requests, warmup, rounds, connections })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a whole number of at least 1, got ${value}`);
}
try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('bench:instructions needs valgrind (apt-get install valgrind)');
  process.exit(1);
}

const repositoryRoot = new URL('../', import.meta.url);
/** The simulation bench:read asks for. */
const simulationBody = JSON.stringify({
  amount: 200_000,
  termYears: 25,
  annualRate: 3.2,
  propertyValue: 300_000,
  fees: { upfront: 1_500, perInstallment: 2, annual: 30 },
});

/** The ceiling, with HEADERS (JSON) set in an onRequest hook, or HOOK=empty for a hook that does nothing. */
const ceilingScript = `
import Fastify from 'fastify';
const app = Fastify();
const headers = process.env.HEADERS ? JSON.parse(process.env.HEADERS) : undefined;
if (headers) app.addHook('onRequest', (request, reply, done) => { reply.headers(headers).header('x-correlation-id', process.env.CORRELATION_ID); done(); });
if (process.env.HOOK === 'empty') app.addHook('onRequest', (request, reply, done) => done());
app.post('/api/simulations', async (_request, reply) => reply.type('application/json; charset=utf-8').send(process.env.ANSWER));
const url = await app.listen({ port: 0, host: '127.0.0.1' });
console.log('ceiling listening on ' + url);
`;

type Counted = { readonly pid: number; readonly url: string; readonly stop: () => Promise<void> };

/** `command` under callgrind with counting off until asked; resolves once `ready` names its address. */
async function underCallgrind(command: readonly string[], env: Record<string, string>, outDir: string, ready: RegExp): Promise<Counted> {
  const child: ChildProcess = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${outDir}/callgrind.%p`, process.execPath, ...command],
    {
      cwd: repositoryRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = once(child, 'exit');
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command.join(' ')} did not start in 5 minutes:\n${output}`)), 300_000);
    const look = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    void exited.then(([code]) => reject(new Error(`${command.join(' ')} exited with ${code}:\n${output}`)));
  });
  return {
    pid: child.pid!,
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const control = (pid: number, ...options: string[]) => execFileSync('callgrind_control', [...options, String(pid)], { stdio: 'ignore' });

async function load(url: string, amount: number): Promise<void> {
  const result = await autocannon({
    url: `${url}/api/simulations`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: simulationBody,
    connections,
    amount,
    timeout: 120,
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers and ${result.errors} errors`);
}

/** Instructions per request of each round, once warmed up. */
async function count(target: Counted, outDir: string, label: string): Promise<number[]> {
  process.stdout.write(`${label}: warming up… `);
  await load(target.url, warmup);
  const perRequest: number[] = [];
  for (let round = 0; round < rounds; round++) {
    control(target.pid, '--zero');
    control(target.pid, '--instr=on');
    await load(target.url, requests);
    control(target.pid, '--dump');
    control(target.pid, '--instr=off');
    // Each dump is a file of its own, numbered: the newest holds this round.
    const dumps = (await readdir(outDir)).filter((name) => name.startsWith(`callgrind.${target.pid}.`));
    const newest = dumps.sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop())).pop();
    if (newest === undefined) throw new Error(`callgrind wrote no dump for ${label}`);
    const totals = /^(?:summary|totals): (\d+)/m.exec(await readFile(join(outDir, newest), 'utf8'));
    if (!totals) throw new Error(`no totals in ${newest}`);
    perRequest.push(Number(totals[1]) / requests);
    process.stdout.write(`${Math.round(perRequest.at(-1)!).toLocaleString('en-US')} `);
  }
  process.stdout.write('\n');
  return perRequest;
}

const outDir = await mkdtemp(join(tmpdir(), 'mutuo-bench-instructions-'));
const stops: (() => Promise<void>)[] = [];
const results: { label: string; perRequest: number[] }[] = [];
try {
  const database = await openTestPostgres(2);
  stops.push(() => database.dispose());
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-bench-instructions-data-'));
  stops.push(() => rm(dataDir, { recursive: true, force: true }));
  const mutuo = await underCallgrind(
    ['bin/mutuo.js', 'query'],
    {
      PORT: '0',
      MUTUO_DATA_DIR: dataDir,
      DATABASE_URL: database.connectionString!,
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      AMQP_URL: '',
      RATE_LIMIT_PUBLIC_PER_MINUTE: '100000000',
    },
    outDir,
    /API docs at (http:\/\/[\d.]+:\d+)/,
  );
  stops.push(mutuo.stop);
  // What Mutuo answers, headers and body, is what the ceilings answer.
  const answer = await fetch(`${mutuo.url}/api/simulations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: simulationBody });
  if (answer.status !== 200) throw new Error(`mutuo query answers a simulation with ${answer.status}: ${await answer.text()}`);
  const body = await answer.text();
  // Every header of Mutuo's answer that bare Fastify does not send itself; the correlation id apart, as it varies.
  const sentByFastify = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive', 'x-correlation-id']);
  const securityHeaders = Object.fromEntries([...answer.headers].filter(([name]) => !sentByFastify.has(name)));
  const ceilingEnv = { ANSWER: body, CORRELATION_ID: answer.headers.get('x-correlation-id') ?? '' };
  const ceilingReady = /ceiling listening on (http:\/\/[\d.]+:\d+)/;
  const variants: [string, Record<string, string>][] = [
    ['bare Fastify (the ceiling)', {}],
    [`bare + Mutuo's ${Object.keys(securityHeaders).length} security headers and correlation id`, { HEADERS: JSON.stringify(securityHeaders) }],
    ['bare + an onRequest hook that does nothing', { HOOK: 'empty' }],
  ];
  for (const [label, env] of variants) {
    const ceiling = await underCallgrind(['--input-type=module', '-e', ceilingScript], { ...ceilingEnv, ...env }, outDir, ceilingReady);
    stops.push(ceiling.stop);
    results.push({ label, perRequest: await count(ceiling, outDir, label) });
    await ceiling.stop();
  }
  results.push({ label: 'mutuo query (PostgreSQL + Redis)', perRequest: await count(mutuo, outDir, 'mutuo query') });
} finally {
  for (const stop of stops.reverse()) await stop();
  await rm(outDir, { recursive: true, force: true });
}

const sorted = (values: readonly number[]) => [...values].sort((a, b) => a - b);
const lowest = (values: readonly number[]) => sorted(values)[0]!;
const median = (values: readonly number[]) => sorted(values)[Math.floor((values.length - 1) / 2)]!;
const thousands = (value: number) => Math.round(value).toLocaleString('en-US');
const bare = lowest(results[0]!.perRequest);
console.log(
  `\nInstructions per POST /api/simulations (callgrind), ${rounds} rounds of ${thousands(requests)} requests after ${thousands(warmup)} uncounted, ${connections} connections; node ${process.version}`,
);
console.log('| server | lowest round | median round | lowest, bare = 100 | bare ÷ this |');
console.log('|---|---:|---:|---:|---:|');
for (const { label, perRequest } of results) {
  const steady = lowest(perRequest);
  console.log(
    `| ${label} | ${thousands(steady)} | ${thousands(median(perRequest))} | ${((100 * steady) / bare).toFixed(1)} | ${((100 * bare) / steady).toFixed(1)} % |`,
  );
}
