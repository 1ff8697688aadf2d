import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createPgliteClient } from '../eventstore/pglite.ts';

const repositoryRoot = new URL('../../', import.meta.url);
const submission = JSON.parse(
  await readFile(new URL('test/fixtures/submission.json', repositoryRoot), 'utf8'),
) as Record<string, unknown>;

type Running = { readonly process: ChildProcess; readonly url: string };

/** Starts `mutuo start` as its own process, as a user would, and waits for its address. */
async function startPlatform(dataDir: string): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], {
    cwd: repositoryRoot,
    env: { ...process.env, PORT: '0', MUTUO_DATA_DIR: dataDir, LOG_LEVEL: 'info', DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the platform did not start:\n${output}`)), 60_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Mutuo is running on [^:]+: (http:\/\/[\d.]+:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.once('exit', (code) => reject(new Error(`the platform exited with ${code}:\n${output}`)));
  });
  return { process: child, url };
}

describe('a crash of the embedded platform', () => {
  const folders: string[] = [];
  after(() => Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true }))));

  it('keeps every submission answered 201 and leaves nothing half-written after kill -9', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-crash-'));
    folders.push(dataDir);
    const first = await startPlatform(dataDir);

    const acknowledged: string[] = [];
    let killed = false;
    const client = async () => {
      while (!killed) {
        try {
          const response = await fetch(`${first.url}/api/applications`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(submission),
          });
          if (response.status === 201) acknowledged.push(((await response.json()) as { applicationId: string }).applicationId);
          else assert.fail(`unexpected ${response.status}: ${await response.text()}`);
        } catch (error) {
          if (!killed) throw error;
        }
      }
    };
    const clients = Array.from({ length: 8 }, client);
    // Kill once a fair number of submissions are through, while others are in flight.
    while (acknowledged.length < 150) await new Promise((resolve) => setTimeout(resolve, 20));
    first.process.kill('SIGKILL');
    killed = true;
    await once(first.process, 'exit');
    await Promise.all(clients);
    const answered = [...acknowledged];

    const second = await startPlatform(dataDir);
    try {
      for (const id of answered) {
        const response = await fetch(`${second.url}/api/applications/${id}/events`);
        assert.equal(response.status, 200, `application ${id} was answered 201 before the crash`);
        const events = (await response.json()) as { type: string; version: number }[];
        assert.deepEqual(events.map((e) => [e.type, e.version]), [['MortgageApplicationSubmitted', 1]]);
      }
      const after = await fetch(`${second.url}/api/applications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(submission),
      });
      assert.equal(after.status, 201, 'the restarted platform takes new applications');
    } finally {
      second.process.kill('SIGTERM');
      await once(second.process, 'exit');
    }

    // Looking into the data folder itself: each stream is one whole submission.
    const database = await createPgliteClient(join(dataDir, 'pglite'));
    try {
      const streams = await database.query<{ n: number; versions: number }>(
        `SELECT count(*)::int AS n, max(versions)::int AS versions
           FROM (SELECT stream_id, count(*) AS versions FROM mutuo_events GROUP BY stream_id) s`,
      );
      assert.equal(streams[0]!.versions, 1);
      assert.ok(streams[0]!.n >= answered.length + 1);
    } finally {
      await database.close();
    }
  });
});
