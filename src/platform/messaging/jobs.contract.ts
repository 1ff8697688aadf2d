import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { TestDatabase } from '../sql/testing.ts';
import type { UnitOfWork } from '../eventstore/session.ts';
import { testSessions } from '../eventstore/testing.ts';
import { cancelJob, JobSupersededError, scheduleJob, startJobWorker, type Job, type JobHandler, type JobWorker } from './jobs.ts';
import { waitUntil } from './messaging.contract.ts';

/** The job contract, written once and run on each database adapter. */
export function describeJobs(adapter: string, open: () => Promise<TestDatabase>): void {
  describe(`jobs: ${adapter}`, () => {
    let database: TestDatabase;
    let sessions: UnitOfWork;
    let workers: JobWorker[];

    beforeEach(async () => {
      database = await open();
      sessions = testSessions(database.client);
      workers = [];
    });
    afterEach(async () => {
      await Promise.all(workers.map((worker) => worker.stop()));
      await database.dispose();
    });

    const schedule = (key: string, payload: unknown, dueAt = new Date()) =>
      sessions.run((session) => scheduleJob(session, { queue: 'q', key, payload, dueAt }));
    const remaining = async () =>
      (await database.client.query<{ key: string }>(`SELECT key FROM mutuo_jobs WHERE queue = 'q' ORDER BY key`)).map((row) => row.key);
    const outcomes = async () => (await database.client.query<{ note: string }>('SELECT note FROM job_outcomes ORDER BY id')).map((row) => row.note);
    /** A handler that records each attempt's number and fails until attempt `succeedsAt`. */
    const failingUntil =
      (succeedsAt: number, attempts: number[]): JobHandler<unknown> =>
      async (job, outcome) => {
        attempts.push(job.attempts);
        if (job.attempts < succeedsAt) throw new Error('the bureau is down');
        await outcome.complete();
      };

    beforeEach(async () => {
      await database.client.exec('CREATE TABLE job_outcomes (id serial PRIMARY KEY, note text NOT NULL)');
    });

    it('runs a due job once and commits its outcome with its removal', async () => {
      await schedule('a', { n: 1 });
      await schedule('b', { n: 2 }, new Date(Date.now() + 3_600_000));
      const seen: Job<{ n: number }>[] = [];
      workers.push(
        startJobWorker<{ n: number }>({
          sessions,
          client: database.client,
          queue: 'q',
          pollMs: 20,
          handle: async (job, outcome) => {
            seen.push(job);
            await outcome.complete((session) =>
              session.tx.query('INSERT INTO job_outcomes (note) VALUES ($1)', [`done ${job.payload.n}`]).then(() => undefined),
            );
          },
        }),
      );
      await waitUntil(async () => (await outcomes()).length === 1, 'the due job is done');
      assert.deepEqual(await outcomes(), ['done 1']);
      assert.deepEqual(await remaining(), ['b'], 'the job that is not due yet waits');
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.attempts, 1);
    });

    it('retries a failing job with backoff, counting attempts, until its handler completes it', async () => {
      await schedule('a', {});
      const attempts: number[] = [];
      workers.push(
        startJobWorker({
          sessions,
          client: database.client,
          queue: 'q',
          pollMs: 10,
          firstRetryDelayMs: 10,
          handle: failingUntil(3, attempts),
          onError: () => undefined,
        }),
      );
      await waitUntil(async () => (await remaining()).length === 0, 'the job succeeds on its third attempt');
      assert.deepEqual(attempts, [1, 2, 3]);
    });

    it('commits nothing for a job cancelled or replaced while it ran', async () => {
      await schedule('cancelled', {});
      await schedule('replaced', { v: 1 });
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const claimed = new Set<string>();
      const results: string[] = [];
      workers.push(
        startJobWorker<{ v?: number }>({
          sessions,
          client: database.client,
          queue: 'q',
          pollMs: 10,
          handle: async (job, outcome) => {
            claimed.add(job.key);
            if (job.payload.v !== 2) await held;
            try {
              await outcome.complete((session) =>
                session.tx.query('INSERT INTO job_outcomes (note) VALUES ($1)', [`${job.key} ${job.payload.v ?? ''}`]).then(() => undefined),
              );
              results.push(`${job.key} committed`);
            } catch (error) {
              results.push(error instanceof JobSupersededError ? `${job.key} fenced` : String(error));
            }
          },
        }),
      );
      await waitUntil(async () => claimed.size === 2, 'both jobs are claimed');
      await sessions.run((session) => cancelJob(session, 'q', 'cancelled'));
      await schedule('replaced', { v: 2 });
      release();
      await waitUntil(async () => results.length === 3, 'the stale runs end and the replacement runs');
      assert.deepEqual([...results].sort(), ['cancelled fenced', 'replaced committed', 'replaced fenced']);
      assert.deepEqual(await outcomes(), ['replaced 2']);
      assert.deepEqual(await remaining(), []);
    });

    it('lets another worker take over a job whose claim lapsed, and fences the first one out', async () => {
      await schedule('a', {});
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const results: string[] = [];
      const slow = startJobWorker({
        sessions,
        client: database.client,
        queue: 'q',
        concurrency: 1,
        pollMs: 10,
        leaseMs: 50,
        handle: async (_job, outcome) => {
          await held;
          try {
            await outcome.complete((session) => session.tx.query(`INSERT INTO job_outcomes (note) VALUES ('slow')`).then(() => undefined));
            results.push('slow committed');
          } catch (error) {
            results.push(error instanceof JobSupersededError ? 'slow fenced' : String(error));
            throw error;
          }
        },
      });
      workers.push(slow);
      await waitUntil(async () => {
        const [row] = await database.client.query<{ attempts: number }>(`SELECT attempts FROM mutuo_jobs WHERE key = 'a'`);
        return row?.attempts === 1;
      }, 'the slow worker claims the job');
      await new Promise((resolve) => setTimeout(resolve, 80));
      const quick = startJobWorker({
        sessions,
        client: database.client,
        queue: 'q',
        pollMs: 10,
        handle: async (_job, outcome) => {
          await outcome.complete((session) => session.tx.query(`INSERT INTO job_outcomes (note) VALUES ('quick')`).then(() => undefined));
          results.push('quick committed');
        },
      });
      workers.push(quick);
      await waitUntil(async () => results.includes('quick committed'), 'the second worker takes the job over');
      release();
      await waitUntil(async () => results.length === 2, 'the first worker finishes');
      assert.deepEqual(results, ['quick committed', 'slow fenced']);
      assert.deepEqual(await outcomes(), ['quick']);
    });

    it('with maxIdleMs, sleeps until its next job falls due instead of looking every pollMs, and retries at the backoff', async () => {
      let claims = 0;
      const counted = {
        ...database.client,
        query: (async (text: string, params?: readonly unknown[]) => {
          if (text.includes('UPDATE mutuo_jobs j')) claims++;
          return database.client.query(text, params);
        }) as typeof database.client.query,
      };
      const runs: number[] = [];
      const worker = startJobWorker({
        sessions,
        client: counted,
        queue: 'q',
        pollMs: 10,
        maxIdleMs: 60_000,
        firstRetryDelayMs: 100,
        handle: failingUntil(2, runs),
        onError: () => undefined,
      });
      workers.push(worker);
      await waitUntil(async () => claims >= 1, 'the first look');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(claims, 1, 'no look while the queue is empty (pollMs alone would have looked about 30 times)');

      // Scheduled 300 ms ahead: the scheduling commit wakes the worker, which then waits for the due time by itself.
      await schedule('later', {}, new Date(Date.now() + 300));
      worker.wake();
      await waitUntil(async () => (await remaining()).length === 0, 'the job runs when due, fails once, and runs again after its backoff');
      assert.deepEqual(runs, [1, 2]);
      // About 8: the wake, each due time, after each claim and each run's end (a wake that comes
      // during a look adds one); looking every pollMs would have made some 70.
      assert.ok(claims <= 14, `a look per wake and per due time, not every pollMs: ${claims} claims`);
    });

    it('runs a job again later with retryAt, keeping its outcome so far', async () => {
      await schedule('a', {});
      const dueLater = new Date(Date.now() + 3_600_000);
      workers.push(
        startJobWorker({
          sessions,
          client: database.client,
          queue: 'q',
          pollMs: 10,
          handle: async (_job, outcome) => {
            await outcome.retryAt(dueLater, (session) => session.tx.query(`INSERT INTO job_outcomes (note) VALUES ('asked')`).then(() => undefined));
          },
        }),
      );
      await waitUntil(async () => (await outcomes()).length === 1, 'the first run commits');
      const [row] = await database.client.query<{ due_at: Date | string; locked_until: unknown }>(
        `SELECT due_at, locked_until FROM mutuo_jobs WHERE key = 'a'`,
      );
      assert.equal(new Date(row!.due_at).getTime(), dueLater.getTime());
      assert.equal(row!.locked_until, null);
    });
  });
}
