import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FolderInUseError, lockFolder, type FolderHolder } from './folder-lock.ts';

/** The pid of a process that has exited. */
async function goneProcessId(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

describe('a data folder held by one process', () => {
  let parent: string;
  let count = 0;
  const folder = () => join(parent, `db-${++count}`);
  const leaveLock = (dataDir: string, holder: FolderHolder) => writeFile(`${dataDir}.lock`, JSON.stringify(holder));
  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'mutuo-lock-'));
  });
  after(() => rm(parent, { recursive: true, force: true }));

  it('refuses a folder already held, naming it and its holder, until it is released', async () => {
    const dataDir = folder();
    const lock = await lockFolder(dataDir);
    const holder = JSON.parse(await readFile(`${dataDir}.lock`, 'utf8')) as FolderHolder;
    assert.deepEqual([holder.pid, holder.host], [process.pid, hostname()]);
    await assert.rejects(
      lockFolder(dataDir),
      (error: Error) => error instanceof FolderInUseError && error.message.includes(dataDir) && error.message.includes(`process ${process.pid}`),
    );
    await lock.release();
    await (await lockFolder(dataDir)).release();
    assert.deepEqual(await readdir(parent), [], 'nothing is left beside the folder');
  });

  it('takes over a lock whose holder is gone: killed, or started before the machine was', async () => {
    const killed = folder();
    await leaveLock(killed, { pid: await goneProcessId(), host: hostname(), startedAt: new Date().toISOString() });
    await (await lockFolder(killed)).release();
    const beforeBoot = folder();
    await leaveLock(beforeBoot, { pid: process.ppid, host: hostname(), startedAt: '2001-01-01T00:00:00.000Z' });
    await (await lockFolder(beforeBoot)).release();
    // This pid, from a previous run of the process (a container's pid 1 after a restart).
    const previousRun = folder();
    await leaveLock(previousRun, { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() });
    await (await lockFolder(previousRun)).release();
    const garbage = folder();
    await writeFile(`${garbage}.lock`, 'not a lock');
    await (await lockFolder(garbage)).release();
  });

  it('refuses a lock of a live process, and one of another machine it cannot check', async () => {
    const live = folder();
    await leaveLock(live, { pid: process.ppid, host: hostname(), startedAt: new Date().toISOString() });
    await assert.rejects(lockFolder(live), FolderInUseError);
    const elsewhere = folder();
    await leaveLock(elsewhere, { pid: await goneProcessId(), host: 'another-machine.example', startedAt: new Date().toISOString() });
    await assert.rejects(lockFolder(elsewhere), /another-machine\.example/);
  });

  it('takes over a stale lock whose removal was claimed by a process killed while at it', async () => {
    const dataDir = folder();
    const stale = JSON.stringify({ pid: await goneProcessId(), host: hostname(), startedAt: new Date().toISOString() } satisfies FolderHolder);
    await writeFile(`${dataDir}.lock`, stale);
    const digest = createHash('sha256').update(stale).digest('hex').slice(0, 16);
    const claimant = { pid: await goneProcessId(), host: hostname(), startedAt: new Date().toISOString() } satisfies FolderHolder;
    await writeFile(`${dataDir}.lock.${digest}.claim`, JSON.stringify(claimant));
    const lock = await lockFolder(dataDir);
    assert.equal((JSON.parse(await readFile(`${dataDir}.lock`, 'utf8')) as FolderHolder).pid, process.pid);
    await lock.release();
    assert.deepEqual(
      (await readdir(parent)).filter((name) => name.startsWith(dataDir.slice(parent.length + 1))),
      [],
      'neither the lock nor a claim is left',
    );
  });

  it('lets one of several processes racing for a stale lock have it', async () => {
    const dataDir = folder();
    await leaveLock(dataDir, { pid: await goneProcessId(), host: hostname(), startedAt: new Date().toISOString() });
    const script = `import('${new URL('./folder-lock.ts', import.meta.url).href}').then(({ lockFolder }) => lockFolder(${JSON.stringify(dataDir)})).then(() => { console.log('held'); setTimeout(() => {}, 3000); }, (error) => console.log(error.name))`;
    const racers = Array.from({ length: 4 }, () => spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const outcomes = await Promise.all(
      racers.map(async (racer) => {
        let output = '';
        racer.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        while (!output.includes('\n')) await once(racer.stdout, 'data');
        return output.trim();
      }),
    );
    // Only now: a holder killed earlier would leave a stale lock for the slower ones.
    for (const racer of racers) racer.kill();
    assert.deepEqual(outcomes.sort(), ['FolderInUseError', 'FolderInUseError', 'FolderInUseError', 'held']);
  });
});
