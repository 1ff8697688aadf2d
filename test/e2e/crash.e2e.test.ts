import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createPgliteClient } from '../../src/platform/sql/pglite.ts';
import { devBearer } from '../../src/security/testing.ts';
import { startMutuo } from './processes.ts';

const repositoryRoot = new URL('../../', import.meta.url);
const submission = JSON.parse(await readFile(new URL('test/fixtures/submission.json', repositoryRoot), 'utf8')) as Record<string, unknown>;

/** Starts `mutuo start` as its own process, as a user would, on the embedded database of a data folder. */
const startPlatform = (dataDir: string) => startMutuo(['start'], { MUTUO_DATA_DIR: dataDir, DATABASE_URL: '', AMQP_URL: '', REDIS_URL: '' });

describe('a crash of the embedded platform', () => {
  const folders: string[] = [];
  after(() => Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true }))));

  it('keeps every submission answered 201 and leaves nothing half-written after kill -9', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-crash-'));
    folders.push(dataDir);
    const first = await startPlatform(dataDir);

    const applicant = await devBearer(first.address, 'giulia');
    const acknowledged: string[] = [];
    let killed = false;
    const client = async () => {
      while (!killed) {
        try {
          const response = await fetch(`${first.address}/api/applications`, {
            method: 'POST',
            headers: { ...applicant, 'content-type': 'application/json' },
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
      const operator = await devBearer(second.address, 'olivia');
      for (const id of answered) {
        const response = await fetch(`${second.address}/api/applications/${id}/events`, { headers: operator });
        assert.equal(response.status, 200, `application ${id} was answered 201 before the crash`);
        const events = (await response.json()) as { type: string; version: number }[];
        assert.deepEqual(
          events.map((e) => [e.type, e.version]),
          [['MortgageApplicationSubmitted', 1]],
        );
      }
      // The development provider's key is in the database: the applicant's token still holds.
      const after = await fetch(`${second.address}/api/applications`, {
        method: 'POST',
        headers: { ...applicant, 'content-type': 'application/json' },
        body: JSON.stringify(submission),
      });
      assert.equal(after.status, 201, 'the restarted platform takes new applications');
    } finally {
      await second.stop();
    }

    // Looking into the data folder itself: each application stream is one whole submission.
    const database = await createPgliteClient(join(dataDir, 'pglite'));
    try {
      const streams = await database.query<{ n: number; versions: number }>(
        `SELECT count(*)::int AS n, max(versions)::int AS versions
           FROM (SELECT stream_id, count(*) AS versions FROM mutuo_events WHERE stream_id LIKE 'application-%' GROUP BY stream_id) s`,
      );
      assert.equal(streams[0]!.versions, 1);
      assert.ok(streams[0]!.n >= answered.length + 1);
    } finally {
      await database.close();
    }
  });
});
