import { errorMessage, type SqlClient, type SqlQueryable } from '../sql/sql-client.ts';
import type { Session, UnitOfWork } from '../eventstore/session.ts';
import { backoffMs, startFollower, type Next } from '../runtime/follower.ts';

/**
 * A piece of work a service owes the outside world or the future: call a bureau, book
 * on the mainframe, send an email, act when a deadline passes. It is scheduled in the
 * transaction that decided it, so a crash cannot lose it, and its outcome is committed
 * in the transaction that removes it, so a crash before then runs it again. External
 * calls run between the two, outside any transaction: they must be safe to repeat
 * (a query, or a call carrying an idempotency key).
 */
export type Job<Payload = unknown> = {
  readonly queue: string;
  readonly key: string;
  readonly payload: Payload;
  readonly dueAt: Date;
  /** The fence: it grows with each schedule and each claim. */
  readonly version: number;
  /** Runs so far, this one included. */
  readonly attempts: number;
  /** When the job was (last) scheduled: the start of its deadlines. */
  readonly scheduledAt: Date;
};

export type JobToSchedule = {
  readonly queue: string;
  readonly key: string;
  readonly payload: unknown;
  readonly dueAt: Date;
};

/**
 * What a session that scheduled a job on `queue` signals: once it commits, that queue's
 * workers are woken, and only those (waking every worker after every commit costs a claim each).
 */
export const jobScheduled = (queue: string): string => `job:${queue}`;

/** Schedules a job, or replaces the one of the same queue and key (a worker running it then cannot commit). */
export async function scheduleJob(session: Session, job: JobToSchedule): Promise<void> {
  await session.tx.query(
    `INSERT INTO mutuo_jobs (queue, key, payload, due_at, created_at) VALUES ($1, $2, $3::jsonb, $4, now())
     ON CONFLICT (queue, key) DO UPDATE
       SET payload = EXCLUDED.payload, due_at = EXCLUDED.due_at, version = mutuo_jobs.version + 1,
           attempts = 0, locked_until = NULL, last_error = NULL, created_at = now()`,
    [job.queue, job.key, JSON.stringify(job.payload), job.dueAt.toISOString()],
  );
  session.signal(jobScheduled(job.queue));
}

/** Cancels a job if there is one; a worker running it then cannot commit its outcome. */
export async function cancelJob(session: Session, queue: string, key: string): Promise<void> {
  await session.tx.query('DELETE FROM mutuo_jobs WHERE queue = $1 AND key = $2', [queue, key]);
}

/** The job was replaced, cancelled or claimed by another worker: this run's outcome is not committed. */
export class JobSupersededError extends Error {
  constructor(job: Job) {
    super(`job ${job.queue}/${job.key} was replaced, cancelled or taken over while it ran`);
    this.name = 'JobSupersededError';
  }
}

export type JobOutcome = {
  /**
   * Commits the job's outcome: `work` runs in one session with the job's removal
   * (unless `work` schedules the same job again). Throws JobSupersededError, and
   * commits nothing, when the job is no longer this run's.
   */
  readonly complete: (work?: (session: Session) => Promise<void>) => Promise<void>;
  /** Runs the job again at `dueAt`, with `work` committed meanwhile; same fencing as complete. */
  readonly retryAt: (dueAt: Date, work?: (session: Session) => Promise<void>) => Promise<void>;
};

/**
 * Does the job. It ends with `complete` or `retryAt`; if it throws instead, the job
 * runs again after an exponential backoff, for as long as it exists: a handler that
 * must give up at some point looks at `attempts` or `scheduledAt` and completes with
 * the failure as its outcome.
 */
export type JobHandler<Payload> = (job: Job<Payload>, outcome: JobOutcome) => Promise<void>;

export type JobWorkerOptions<Payload> = {
  readonly client: SqlClient;
  /** The sessions outcomes commit in. */
  readonly sessions: UnitOfWork;
  readonly queue: string;
  readonly handle: JobHandler<Payload>;
  /** Jobs run at once by this worker (default 8). */
  readonly concurrency?: number;
  /** How often to look for due jobs when nothing wakes the worker (default 500 ms). */
  readonly pollMs?: number;
  /**
   * Where every job of the queue is scheduled in this process, which wakes the worker
   * (PGlite: no other process can write): instead of looking every `pollMs`, an idle
   * worker sleeps until its queue's next job falls due, at most this long. Unset: it
   * looks every `pollMs`, for the jobs other processes schedule.
   */
  readonly maxIdleMs?: number;
  /** How long a claim lasts before another worker may take the job over (default 60 s). */
  readonly leaseMs?: number;
  readonly firstRetryDelayMs?: number;
  readonly maxRetryDelayMs?: number;
  readonly clock?: () => Date;
  readonly onError?: (error: unknown, job?: Job) => void;
};

export type JobWorker = {
  readonly queue: string;
  /** Look for due jobs now. */
  readonly wake: () => void;
  /** Resolves when the worker has finished the jobs in hand. */
  readonly stop: () => Promise<void>;
};

type JobRow = {
  queue: string;
  key: string;
  payload: unknown;
  due_at: Date | string;
  version: number;
  attempts: number;
  created_at: Date | string;
};

const claimSql = `
  UPDATE mutuo_jobs j
     SET locked_until = $2::timestamptz + $4 * interval '1 millisecond', attempts = j.attempts + 1, version = j.version + 1
   WHERE (j.queue, j.key) IN (
         SELECT queue, key FROM mutuo_jobs
          WHERE queue = $1 AND due_at <= $2 AND (locked_until IS NULL OR locked_until <= $2)
          ORDER BY due_at
          LIMIT $3
            FOR UPDATE SKIP LOCKED)
  RETURNING j.queue, j.key, j.payload, j.due_at, j.version, j.attempts, j.created_at`;

/** When the queue's next job may be claimed: when it falls due, or its lease lapses; null when the queue is empty. */
const nextClaimSql = `SELECT min(GREATEST(due_at, COALESCE(locked_until, due_at))) AS next FROM mutuo_jobs WHERE queue = $1`;

/** Claims up to `limit` due jobs of a queue for `leaseMs`. */
export async function claimJobs<Payload>(client: SqlQueryable, queue: string, now: Date, limit: number, leaseMs: number): Promise<Job<Payload>[]> {
  const rows = await client.query<JobRow>(claimSql, [queue, now.toISOString(), limit, leaseMs]);
  return rows.map((row) => ({
    queue: row.queue,
    key: row.key,
    payload: row.payload as Payload,
    dueAt: new Date(row.due_at),
    version: row.version,
    attempts: row.attempts,
    scheduledAt: new Date(row.created_at),
  }));
}

export function startJobWorker<Payload>(options: JobWorkerOptions<Payload>): JobWorker {
  const { client, queue } = options;
  const concurrency = options.concurrency ?? 8;
  const pollMs = options.pollMs ?? 500;
  const leaseMs = options.leaseMs ?? 60_000;
  const firstRetryDelayMs = options.firstRetryDelayMs ?? 1_000;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 60_000;
  const clock = options.clock ?? (() => new Date());
  const running = new Set<Promise<void>>();

  /** Runs `work` and moves the job on, if the job is still this run's; the row's lock orders it with consumers. */
  async function settle(job: Job, work: ((session: Session) => Promise<void>) | undefined, nextDueAt: Date | undefined) {
    await options.sessions.run(async (session) => {
      const { tx } = session;
      const [row] = await tx.query<{ version: number }>('SELECT version FROM mutuo_jobs WHERE queue = $1 AND key = $2 FOR UPDATE', [job.queue, job.key]);
      if (row?.version !== job.version) throw new JobSupersededError(job);
      await work?.(session);
      if (nextDueAt) {
        await tx.query('UPDATE mutuo_jobs SET due_at = $4, locked_until = NULL WHERE queue = $1 AND key = $2 AND version = $3', [
          job.queue,
          job.key,
          job.version,
          nextDueAt.toISOString(),
        ]);
      } else {
        await tx.query('DELETE FROM mutuo_jobs WHERE queue = $1 AND key = $2 AND version = $3', [job.queue, job.key, job.version]);
      }
    });
  }

  async function run(job: Job<Payload>): Promise<void> {
    try {
      await options.handle(job, {
        complete: (work) => settle(job, work, undefined),
        retryAt: (dueAt, work) => settle(job, work, dueAt),
      });
    } catch (error) {
      if (error instanceof JobSupersededError) return;
      options.onError?.(error, job);
      // Jittered, so that the jobs a bureau's outage failed together do not all come back at once.
      const delayMs = backoffMs(job.attempts - 1, { firstMs: firstRetryDelayMs, maxMs: maxRetryDelayMs }, Math.random);
      const message = errorMessage(error);
      // If this fails too (the database is away), the lease lapses and the job runs again anyway.
      await client
        .query(`UPDATE mutuo_jobs SET due_at = $4, locked_until = NULL, last_error = $5 WHERE queue = $1 AND key = $2 AND version = $3`, [
          job.queue,
          job.key,
          job.version,
          new Date(clock().getTime() + delayMs).toISOString(),
          message.slice(0, 2_000),
        ])
        .catch((cause: unknown) => options.onError?.(cause, job));
    }
  }

  /**
   * How long an idle worker waits before it looks again. With `maxIdleMs`, until the next
   * job falls due: a job scheduled meanwhile wakes it (the scheduling session's signal),
   * and so does one of its own runs ending; a run that fails leaves its job due again.
   */
  async function idleMs(): Promise<number> {
    if (options.maxIdleMs === undefined) return pollMs;
    const [row] = await client.query<{ next: Date | string | null }>(nextClaimSql, [queue]);
    if (!row?.next) return options.maxIdleMs;
    // At least a few milliseconds: a due job another transaction holds for the moment is not spun on.
    return Math.min(Math.max(new Date(row.next).getTime() - clock().getTime(), 5), options.maxIdleMs);
  }

  /** Claims what due jobs it has room for and starts them; sleeps while it is full or nothing is due. */
  async function claimDue(): Promise<Next> {
    const free = concurrency - running.size;
    const jobs = free > 0 ? await claimJobs<Payload>(client, queue, clock(), free, leaseMs) : [];
    for (const job of jobs) {
      const task = run(job).finally(() => {
        running.delete(task);
        follower.wake();
      });
      running.add(task);
    }
    if (running.size >= concurrency) return { sleepMs: pollMs };
    if (jobs.length === 0) return { sleepMs: await idleMs() };
    return 'again';
  }

  const follower = startFollower({ step: claimDue, backoff: { firstMs: pollMs, maxMs: Math.max(pollMs, 10_000) }, onError: options.onError });
  return {
    queue,
    wake: follower.wake,
    stop: async () => {
      await follower.stop();
      await Promise.all(running);
    },
  };
}
