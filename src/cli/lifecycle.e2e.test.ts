import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startMutuo, type MutuoProcess } from './testing.ts';

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
});
