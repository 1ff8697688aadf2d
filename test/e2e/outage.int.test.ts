import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startMutuo, type MutuoProcess } from './processes.ts';
import { flowClient } from './flow.contract.ts';
import { openTestPostgres, type TestDatabase } from '../../src/platform/sql/testing.ts';
import { openVirtualHost } from '../../src/platform/messaging/testing.ts';
import { startTcpProxy, type CutMode, type TcpProxy } from '../../src/platform/tcp-proxy.fixture.ts';
import { devBearer } from '../../src/security/testing.ts';

/**
 * A service process outlives an outage of its own database and of its broker (issue 22,
 * item 2b), with the platform's real processes: each service is a `mutuo <service>` process
 * on PostgreSQL and a RabbitMQ virtual host of their own, and the Scoring service (the first
 * to act on a submission: nothing is decided before its credit check) reaches both through
 * TCP proxies that the cases cut, while the others reach them directly. Applications are
 * submitted before and all through each cut. Once the way is back, the Scoring process has
 * never exited, every application reaches the outcome it reaches without a fault, nothing is
 * dead-lettered or parked by any consumer, and no effect happened twice (each application
 * scored once, booked once). A last case kills the process while its database is away: the
 * supervisor's next start fails on purpose, with its reason, and the one after resumes cleanly.
 *
 * Set MUTUO_TEST_PROCESS_LOGS=<folder> to keep every process's whole output; a failing case
 * shows the last of the Scoring process's output in any event.
 */

/** What each application is planned to go through, and the outcome and streams it ends with. */
const plans = {
  // Both bureaus answer band E: the credit check rejects it, and the application is rejected.
  lowscore: { status: 'rejected', credit: ['CreditScoreRejected'], finalization: [] },
  // Documents and a rate lock: approved once the credit check approves, then booked.
  approve: {
    status: 'approved',
    credit: ['CreditScoreApproved', 'CreditHoldPlaced'],
    finalization: ['MortgageFinalizationRequested', 'MortgageFinalized'],
  },
} as const;
type Plan = keyof typeof plans;

describe('a service process outlives an outage of its database and of its broker', () => {
  let database: TestDatabase;
  let broker: { url: string; dispose: () => Promise<void> };
  let dataDir: string;
  let databaseProxy: TcpProxy;
  let brokerProxy: TcpProxy;
  const processes: MutuoProcess[] = [];
  let scoring: MutuoProcess;
  let scoringExit: string | undefined;
  /** Rejects once the Scoring process has exited: a wait for what it should do then fails at once, with its log. */
  let scoringExited: Promise<never>;
  let flow: ReturnType<typeof flowClient>;
  let applicationUrl: string;
  let scoringEnv: Record<string, string>;
  /** Scoring processes ended on purpose by the test: their exit is no failure. */
  const retired = new Set<MutuoProcess>();

  /** Follows a Scoring process: from now on, its exit fails the case at once. */
  function watch(started: MutuoProcess): void {
    scoring = started;
    scoringExit = undefined;
    scoringExited = new Promise<never>((_, reject) => {
      started.process.once('exit', (code, signal) => {
        if (retired.has(started)) return;
        scoringExit = `exited with ${code ?? signal}`;
        reject(new Error(scoringLog()));
      });
    });
    scoringExited.catch(() => undefined);
  }

  const start = async (service: string, env: Record<string, string>) => {
    const started = await startMutuo([service], env);
    processes.push(started);
    return started;
  };

  before(async () => {
    database = await openTestPostgres(4);
    broker = await openVirtualHost();
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-outage-'));
    databaseProxy = await startTcpProxy({ target: database.connectionString! });
    brokerProxy = await startTcpProxy({ target: broker.url });
    // The bureaus and the mainframe are the services' built-in simulators, without random failures: each outcome is known in advance.
    const direct = { MUTUO_DATA_DIR: dataDir, DATABASE_URL: database.connectionString!, AMQP_URL: broker.url, DATABASE_POOL_SIZE: '8' };
    const [application, documents, notification, query] = await Promise.all([
      start('application', direct),
      start('documents', direct),
      start('notification', direct),
      start('query', direct),
      start('projector', direct),
      start('bank-gateway', direct),
    ]);
    scoringEnv = { ...direct, DATABASE_URL: databaseProxy.url, AMQP_URL: brokerProxy.url };
    watch(await start('scoring', scoringEnv));
    applicationUrl = application!.address;
    flow = flowClient({
      applicationUrl,
      documentsUrl: documents!.address,
      notificationUrl: notification!.address,
      queryUrl: query!.address,
      database: database.client,
    });
  });

  after(async () => {
    await Promise.all(processes.map((started) => started.stop()));
    await databaseProxy?.close();
    await brokerProxy?.close();
    await Promise.all([database?.dispose(), broker?.dispose(), dataDir ? rm(dataDir, { recursive: true, force: true }) : undefined]);
  });

  /** The Scoring process's state and the last of what it wrote: for a failing assertion to show. */
  const scoringLog = () => `the Scoring process ${scoringExit ?? 'is running'}; the last of its output:\n${scoring.output().slice(-8_000)}`;

  /**
   * Submits applications before and all through a cut of `proxy` (the Scoring process's way
   * to its database or its broker), restores it, and checks what must hold after. With
   * `othersFlow`, the cut is held until the rest of the platform has taken every application
   * submitted during it (their documents checked, their applicants told of the submission):
   * one service's outage holds no other up, its relay included. `whileCut` runs at the end
   * of the cut, `afterRestore` once the way is back.
   */
  async function throughCut(
    proxy: TcpProxy,
    mode: CutMode,
    cutMs: number,
    { othersFlow = false, whileCut, afterRestore }: { othersFlow?: boolean; whileCut?: () => Promise<void>; afterRestore?: () => Promise<void> } = {},
  ): Promise<void> {
    assert.ok(proxy.connections() > 0, 'the Scoring process goes through the proxy');
    type Launched = { readonly plan: Plan; readonly duringCut: boolean; readonly id: Promise<string>; readonly done: Promise<void> };
    const launched: Launched[] = [];
    let cut = false;
    /** One application, submitted and (if planned) given its documents and a rate lock, in the background. */
    const launch = () => {
      const plan: Plan = launched.length % 2 === 0 ? 'approve' : 'lowscore';
      const id = flow.submit(plan === 'lowscore' ? { lastName: 'Lowscore' } : {});
      const done = id.then(async (applicationId) => {
        if (plan === 'approve') {
          await flow.uploadAll(applicationId);
          assert.equal(await flow.lockRate(applicationId), 200);
        }
      });
      // Both are awaited below; a failure meanwhile is not an unhandled rejection.
      done.catch(() => undefined);
      launched.push({ plan, duringCut: cut, id, done });
    };

    // Before the cut, some still in the Scoring service's hands when it comes.
    for (let i = 0; i < 3; i++) launch();
    await sleep(200);
    await proxy.cut(mode);
    cut = true;
    const cutEnds = Date.now() + cutMs;
    // All through the cut, the rest of the platform takes submissions, documents and rate locks.
    while (Date.now() < cutEnds) {
      launch();
      await sleep(Math.min(cutMs / 2, 10_000));
    }
    const duringCut = launched.filter((application) => application.duringCut);
    assert.ok(duringCut.length > 0, 'applications were submitted during the cut');
    const duringCutIds = await Promise.all(duringCut.map((application) => application.id));
    if (othersFlow) {
      await Promise.all(duringCut.map((application) => application.done));
      await Promise.all(
        duringCut.map(async ({ plan }, i) => {
          const id = duringCutIds[i]!;
          if (plan === 'approve') await flow.documentsChecked(id, 'DocumentsValidated');
          await flow.waitFor(`the applicant of ${id} to be told of the submission`, async () =>
            (await flow.notifications(id)).some((notification) => notification.template === 'application-received') ? true : undefined,
          );
        }),
      );
    }
    // None of those can have been scored yet: the Scoring service could not hear of them, or not write.
    for (const id of duringCutIds) {
      assert.deepEqual(await flow.streamTypes(`credit-check-${id}`), [], `${id}, submitted during the cut, was not scored during it: ${scoringLog()}`);
    }
    await whileCut?.();
    await proxy.restore();
    await afterRestore?.();
    launch();
    await Promise.all(launched.map((application) => application.done));
    const submitted = await Promise.all(launched.map(async ({ plan, id }) => ({ plan, id: await id })));

    await Promise.all(
      submitted.map(async ({ id, plan }) => {
        let decided: Awaited<ReturnType<typeof flow.waitForTerminal>>;
        try {
          decided = await Promise.race([flow.waitForTerminal(id), scoringExited]);
        } catch (error) {
          throw new Error(`${plan} ${id}: ${(error as Error).message}; its events: ${JSON.stringify(await flow.history(id))}\n${scoringLog()}`);
        }
        assert.equal(decided.status, plans[plan].status, `${plan} ${id}: ${JSON.stringify(decided)}; its events: ${JSON.stringify(await flow.history(id))}`);
      }),
    );
    assert.equal(scoringExit, undefined, `the Scoring process never exited: ${scoringLog()}`);

    // Each application scored once (and an approved one booked once): no effect twice.
    for (const { id, plan } of submitted) {
      assert.deepEqual(await flow.streamTypes(`credit-check-${id}`), plans[plan].credit, `${plan} ${id} was scored once`);
      assert.deepEqual(await flow.streamTypes(`finalization-${id}`), plans[plan].finalization, `${plan} ${id} was booked once, if at all`);
    }
    const ids = submitted.map((application) => application.id);
    const [checks] = await database.client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM mutuo_jobs WHERE queue = 'scoring.credit-check' AND key = ANY($1)`,
      [ids],
    );
    assert.equal(checks?.n, 0, 'no credit check is left to run');

    // Nothing was set aside by any consumer, and the outage was counted as no attempt.
    const admin = await devBearer(applicationUrl, 'ada');
    const response = await fetch(`${applicationUrl}/api/dead-letters?limit=500`, { headers: admin });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), [], `no dead letter: ${scoringLog()}`);
    assert.deepEqual(await database.client.query('SELECT consumer, partition_key FROM mutuo_parked'), [], 'nothing parked');
    // A message handed back by a broker cut is counted once when it comes back, until it is handled.
    const counted = () => database.client.query('SELECT consumer, event_id, attempts FROM mutuo_consumer_attempts');
    await flow
      .waitFor('no attempt left counted against a message', async () => ((await counted()).length === 0 ? true : undefined), 60_000)
      .catch(async () => assert.deepEqual(await counted(), [], 'no attempt left counted against a message'));
  }

  it('(1) scores every application, once, after its database is cut for 2 s as a network partition', async () => {
    await throughCut(databaseProxy, 'blackhole', 2_000);
  });

  it('(2) scores every application, once, after its database is cut for 60 s as a server gone', async () => {
    await throughCut(databaseProxy, 'refuse', 60_000, { othersFlow: true });
  });

  it('(3) scores every application, once, after its broker is cut for 60 s as a server gone', async () => {
    await throughCut(brokerProxy, 'refuse', 60_000, { othersFlow: true });
  });

  it('(4) ends a Scoring process that cannot start, with its reason, and one started once the database is back resumes cleanly', async () => {
    await throughCut(databaseProxy, 'refuse', 5_000, {
      // Killed (as out of memory, or by an operator) with messages in hand; the supervisor starts it again, the database still away.
      whileCut: async () => {
        const killed = scoring;
        retired.add(killed);
        const exited = once(killed.process, 'exit');
        killed.process.kill('SIGKILL');
        await exited;
        const failed = await start('scoring', scoringEnv).then(
          () => assert.fail('the Scoring process started without its database'),
          (error: Error) => error.message,
        );
        assert.match(failed, /exited with 1/);
        const fatal = failed.split('\n').filter((line) => line.includes('"level":60'));
        assert.equal(fatal.length, 1, `one fatal line: ${failed}`);
        assert.match(fatal[0]!, /could not start: /);
      },
      // The supervisor's next try, the database back: it takes the messages the killed one had in hand, and carries on.
      afterRestore: async () => watch(await start('scoring', scoringEnv)),
    });
  });
});
