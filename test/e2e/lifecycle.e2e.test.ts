import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { devBearer } from '../../src/security/testing.ts';
import { startMutuo, type MutuoProcess } from './processes.ts';

const submission = await readFile(new URL('../fixtures/submission.json', import.meta.url), 'utf8');

/** The embedded platform of a data folder, as a user starts it. */
const embedded = (dataDir: string) => ({ MUTUO_DATA_DIR: dataDir, DATABASE_URL: '', AMQP_URL: '', REDIS_URL: '', NODE_ENV: '' });

/** `mutuo <args>` that is expected not to start: the error startMutuo gives, with the process's exit code and output. */
async function refusedStart(args: readonly string[], env: Readonly<Record<string, string>>): Promise<Error> {
  const started = await startMutuo(args, env).then(
    (running) => running,
    (error: unknown) => error as Error,
  );
  if (started instanceof Error) return started;
  await started.stop();
  assert.fail(`mutuo ${args.join(' ')} started:\n${started.output()}`);
}

describe('the platform as a process: starting and stopping', () => {
  const folders: string[] = [];
  const running: MutuoProcess[] = [];
  const folder = async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-lifecycle-'));
    folders.push(dataDir);
    return dataDir;
  };
  const start = async (env: Record<string, string>) => {
    const process = await startMutuo(['start'], env);
    running.push(process);
    return process;
  };
  after(async () => {
    for (const process of running) if (process.process.exitCode === null && process.process.signalCode === null) process.process.kill('SIGKILL');
    await Promise.all(folders.map((dataDir) => rm(dataDir, { recursive: true, force: true })));
  });

  it('will not start in production without the outside systems its services call, and names the missing setting', async () => {
    const production = {
      ...embedded(await folder()),
      NODE_ENV: 'production',
      AUTH_JWKS_URL: 'https://id.bank.example/jwks',
      AUTH_ISSUER: 'https://id.bank.example',
      MUTUO_SUBJECT_DIGEST_SECRET: 'x'.repeat(32),
      BUREAU_CRIF_URL: 'http://127.0.0.1:1',
      BUREAU_EXPERIAN_URL: 'http://127.0.0.1:2',
      MAINFRAME_URL: 'tcp://127.0.0.1:3',
      SMTP_URL: '',
    };
    const withoutSmtp = await refusedStart(['start'], production);
    assert.match(withoutSmtp.message, /exited with 1/);
    assert.match(withoutSmtp.message, /SMTP_URL/);
    const withoutMainframe = await refusedStart(['bank-gateway'], { ...production, MAINFRAME_URL: '' });
    assert.match(withoutMainframe.message, /exited with 1[\s\S]*MAINFRAME_URL/);
  });

  it('refuses a second process on a data folder another one has open, naming the folder and its holder, and starts once it is free', async () => {
    const dataDir = await folder();
    const first = await start(embedded(dataDir));
    const second = await refusedStart(['start'], embedded(dataDir));
    assert.match(second.message, /exited with 1/);
    assert.ok(second.message.includes(join(dataDir, 'pglite')), second.message);
    assert.ok(second.message.includes(`process ${first.process.pid}`), second.message);
    // The first one was not disturbed.
    assert.equal((await fetch(`${first.address}/health`)).status, 200);
    await first.stop();
    assert.equal(first.process.exitCode, 0);
    const third = await start(embedded(dataDir));
    assert.equal((await fetch(`${third.address}/health`)).status, 200);
    await third.stop();
  });

  it('ends its live streams on SIGTERM and exits with 0, also while a request hangs', { timeout: 120_000 }, async () => {
    const platform = await start(embedded(await folder()));
    const applicant = await devBearer(platform.address, 'giulia');
    const submitted = await fetch(`${platform.address}/api/applications`, {
      method: 'POST',
      headers: { ...applicant, 'content-type': 'application/json' },
      body: submission,
    });
    assert.equal(submitted.status, 201);
    const { applicationId } = (await submitted.json()) as { applicationId: string };

    const stream = await fetch(`${platform.address}/api/applications/${applicationId}/live`, { headers: applicant });
    assert.equal(stream.status, 200);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let received = '';
    while (!received.includes('event: change')) received += (await reader.read()).value ?? '';

    // A request that never finishes: its headers promise a body that never comes. The server's
    // "100 Continue" says it has the request in hand.
    const { hostname, port } = new URL(platform.address);
    const hanging = connect(Number(port), hostname);
    await once(hanging, 'connect');
    hanging.on('error', () => undefined);
    hanging.write(
      `POST /api/applications HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: ${applicant.authorization}\r\ncontent-type: application/json\r\ncontent-length: 4000\r\nexpect: 100-continue\r\n\r\n`,
    );
    const [interim] = (await once(hanging, 'data')) as [Buffer];
    assert.match(interim.toString(), /^HTTP\/1\.1 100 Continue/);
    hanging.write('{"applicant":');

    const exited = once(platform.process, 'exit');
    platform.process.kill('SIGTERM');
    // The server ends the stream: the page's client would reconnect to another process.
    for (;;) if ((await reader.read()).done) break;
    const [code] = await exited;
    hanging.destroy();
    assert.equal(code, 0, platform.output());
  });
});
