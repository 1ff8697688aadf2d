import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { SqlQueryable } from '../../src/platform/sql/sql-client.ts';
import { devBearer, type AuthHeaders } from '../../src/security/testing.ts';
import type { ReceivedMail } from '../../src/features/notification/smtp-sink.ts';

/** Where the services of a running platform answer, and its database to look into their streams. */
export type FlowFixture = {
  readonly applicationUrl: string;
  readonly documentsUrl: string;
  readonly notificationUrl: string;
  /** The query API: the customer view. */
  readonly queryUrl: string;
  readonly database: SqlQueryable;
  /**
   * After a write to `database` behind the platform's back: its followers look now. Where only
   * the platform's own commits wake them (PGlite), they would otherwise wait for their safety net.
   */
  readonly wake?: () => void;
  /** Every email the SMTP server the services send to has received. */
  readonly mails: () => readonly ReceivedMail[];
  /** Moves the clock of every service forward (only where the fixture controls it; see FlowOptions.clockControl). */
  readonly advanceClock?: (ms: number) => void;
  /** Stops one service's process; the answer starts it again (only where each service is a process; see FlowOptions.processes). */
  readonly stopService?: (name: 'bank-gateway') => Promise<() => Promise<void>>;
  readonly close: () => Promise<void>;
};

const submission = JSON.parse(readFileSync(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as {
  applicant: Record<string, string>;
  loan: Record<string, unknown>;
};

type Overrides = { readonly lastName?: string; readonly amount?: number };
type Defects = Partial<Record<'id_card' | 'payslip' | 'appraisal', string>>;

export const terminalStatuses = ['approved', 'rejected', 'withdrawn'] as const;

/** A client of the platform's HTTP API that drives applications through the flow, as an applicant would. */
export function flowClient(fixture: Pick<FlowFixture, 'applicationUrl' | 'documentsUrl' | 'notificationUrl' | 'queryUrl' | 'database'>) {
  // Every process of a development platform trusts the tokens of the one development provider.
  let applicant: Promise<AuthHeaders> | undefined;
  const authorized = () => (applicant ??= devBearer(fixture.applicationUrl, 'giulia'));

  async function call<T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(url, {
      method,
      headers: { ...(await authorized()), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  async function submit(overrides: Overrides = {}): Promise<string> {
    const body = {
      ...submission,
      applicant: { ...submission.applicant, ...(overrides.lastName ? { lastName: overrides.lastName } : {}) },
      loan: { ...submission.loan, ...(overrides.amount !== undefined ? { amount: overrides.amount } : {}) },
    };
    const response = await call<{ applicationId: string }>('POST', `${fixture.applicationUrl}/api/applications`, body);
    assert.equal(response.status, 201, JSON.stringify(response.body));
    return response.body.applicationId;
  }

  /**
   * The Document service learns of an application from the bus: under load a submission
   * may take longer to reach it than its routes wait (2 s), and it answers 404 until then.
   * A client tries again, as this one does, for up to 120 s.
   */
  async function untilKnown(request: () => Promise<Response>): Promise<Response> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const response = await request();
      if (response.status !== 404 || Date.now() > deadline) return response;
      await response.arrayBuffer();
    }
  }

  async function upload(applicationId: string, kind: string, defect = 'none'): Promise<number> {
    const headers = await authorized();
    const sample = await untilKnown(() =>
      fetch(`${fixture.documentsUrl}/api/sandbox/applications/${applicationId}/documents/${kind}?defect=${defect}`, { headers }),
    );
    assert.equal(sample.status, 200, await sample.clone().text());
    const pdf = await sample.arrayBuffer();
    const response = await untilKnown(() => {
      const form = new FormData();
      form.append('kind', kind);
      form.append('file', new Blob([pdf], { type: 'application/pdf' }), `${kind}.pdf`);
      return fetch(`${fixture.documentsUrl}/api/applications/${applicationId}/documents`, { method: 'POST', body: form, headers });
    });
    const text = await response.text();
    assert.ok(response.status === 202 || response.status === 422, `${response.status} ${text}`);
    return response.status;
  }

  async function uploadAll(applicationId: string, defects: Defects = {}): Promise<void> {
    for (const kind of ['id_card', 'payslip', 'appraisal'] as const) await upload(applicationId, kind, defects[kind]);
  }

  async function lockRate(applicationId: string): Promise<number> {
    return (await call('POST', `${fixture.applicationUrl}/api/applications/${applicationId}/rate-lock`, {})).status;
  }

  async function withdraw(applicationId: string, reason = 'changed my mind'): Promise<number> {
    return (await call('POST', `${fixture.applicationUrl}/api/applications/${applicationId}/withdrawal`, { reason })).status;
  }

  async function application(applicationId: string) {
    // The customer view is a read model: a submission a moment old may not be in it yet.
    const deadline = Date.now() + 60_000;
    let response = await call<{ status: string; reason?: string; contractNumber?: string }>('GET', `${fixture.queryUrl}/api/applications/${applicationId}`);
    while (response.status === 404 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      response = await call('GET', `${fixture.queryUrl}/api/applications/${applicationId}`);
    }
    assert.equal(response.status, 200);
    return response.body;
  }

  /** What may hold a flow up, for the message of a test that timed out: open dead letters, and jobs that keep failing. */
  async function whatIsStuck(): Promise<string> {
    const letters = await fixture.database.query<{ consumer: string; partition_key: string | null; event_type: string | null; reason: string; error: string }>(
      `SELECT consumer, partition_key, event_type, reason, error FROM mutuo_dead_letters WHERE status IN ('dead', 'redrive_requested', 'discard_requested') ORDER BY id LIMIT 10`,
    );
    const jobs = await fixture.database.query<{ queue: string; key: string; attempts: number; last_error: string | null }>(
      `SELECT queue, key, attempts, last_error FROM mutuo_jobs WHERE attempts > 0 ORDER BY attempts DESC LIMIT 10`,
    );
    return JSON.stringify({ deadLetters: letters, failingJobs: jobs });
  }

  // The bounds are for a flow that is stuck, not slow: test files run side by side here, and
  // a busy machine may take minutes over what takes seconds alone.
  async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${await whatIsStuck()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  const waitForTerminal = (applicationId: string, timeoutMs?: number) =>
    waitFor(
      `application ${applicationId} to be decided`,
      async () => {
        const view = await application(applicationId);
        return (terminalStatuses as readonly string[]).includes(view.status) ? view : undefined;
      },
      timeoutMs,
    );

  async function streamTypes(streamId: string): Promise<string[]> {
    const rows = await fixture.database.query<{ event_type: string }>('SELECT event_type FROM mutuo_events WHERE stream_id = $1 ORDER BY stream_version', [
      streamId,
    ]);
    return rows.map((row) => row.event_type);
  }

  /** Every event about one application, in order: what a failing test shows. */
  async function history(applicationId: string): Promise<string[]> {
    const rows = await fixture.database.query<{ stream_id: string; event_type: string }>(
      `SELECT stream_id, event_type FROM mutuo_events WHERE stream_id LIKE '%' || $1 ORDER BY position`,
      [applicationId],
    );
    const dead = await fixture.database.query<{ consumer: string; event_type: string; error: string }>(
      `SELECT consumer, event_type, error FROM mutuo_dead_letters WHERE partition_key = $1 ORDER BY id`,
      [applicationId],
    );
    const parked = await fixture.database.query<{ consumer: string }>(`SELECT consumer FROM mutuo_parked WHERE partition_key = $1 ORDER BY id`, [
      applicationId,
    ]);
    return [
      ...rows.map((row) => `${row.stream_id.slice(0, -applicationId.length - 1)}:${row.event_type}`),
      ...dead.map((row) => `dead letter of ${row.consumer}: ${row.event_type}: ${row.error}`),
      ...parked.map((row) => `parked for ${row.consumer}`),
    ];
  }

  async function notifications(applicationId: string): Promise<{ template: string; recipient: string; answersEventType: string }[]> {
    const response = await call<{ items: { template: string; recipient: string; answersEventType: string }[] }>(
      'GET',
      `${fixture.notificationUrl}/api/notifications?applicationId=${applicationId}`,
    );
    assert.equal(response.status, 200);
    return response.body.items.reverse();
  }

  /**
   * Waits until exactly these emails (in any order: each is a job of its own, retried on
   * its own) were sent about the application; fails naming what was sent instead.
   */
  async function expectSent(applicationId: string, ...templates: string[]): Promise<void> {
    const expected = JSON.stringify([...templates].sort());
    let seen: string[] = [];
    try {
      await waitFor(
        `the emails ${expected}`,
        async () => {
          seen = (await notifications(applicationId)).map((notification) => notification.template).sort();
          return JSON.stringify(seen) === expected ? true : undefined;
        },
        120_000,
      );
    } catch {
      assert.fail(`the emails about ${applicationId}: ${JSON.stringify(seen)}, expected ${expected}`);
    }
  }

  /** Waits until the applicant was told the final outcome, then gives every notification sent. */
  const finalNotifications = (applicationId: string) =>
    waitFor(`the final notification of ${applicationId}`, async () => {
      const sent = await notifications(applicationId);
      return sent.some((notification) => ['application-approved', 'application-rejected', 'application-withdrawn'].includes(notification.template))
        ? sent
        : undefined;
    });

  const documentsChecked = (applicationId: string, type: 'DocumentsValidated' | 'DocumentsRejected', count = 1) =>
    waitFor(`${count} × ${type} for ${applicationId}`, async () => {
      const types = await streamTypes(`documents-${applicationId}`);
      return types.filter((t) => t === type).length >= count ? types : undefined;
    });

  return {
    submit,
    upload,
    uploadAll,
    lockRate,
    withdraw,
    application,
    waitFor,
    waitForTerminal,
    streamTypes,
    history,
    notifications,
    expectSent,
    finalNotifications,
    documentsChecked,
  };
}

const finalTemplates = new Set(['application-approved', 'application-rejected', 'application-withdrawn']);

/** The processing flow, written once and run on the embedded platform and on separate processes over RabbitMQ. */
export type FlowOptions = {
  /** How many applications the crowd test sends at once. */
  readonly crowd: number;
  /**
   * The setup makes the bureaus and the mainframe fail at random on top of the sandbox's
   * planned failures: an application planned to be approved may then be rejected, but
   * only because the mainframe never answered any of its attempts.
   */
  readonly randomFailures?: boolean;
  /** The fixture can move the services' clock (advanceClock): the rate lock's expiry is tested then. */
  readonly clockControl?: boolean;
  /** Each service is a process the fixture can stop and start again (stopService). */
  readonly processes?: boolean;
};

export function describeFlow(setup: string, open: () => Promise<FlowFixture>, options: FlowOptions): void {
  describe(`the processing flow: ${setup}`, () => {
    let fixture: FlowFixture;
    let flow: ReturnType<typeof flowClient>;

    before(async () => {
      fixture = await open();
      flow = flowClient(fixture);
    });
    after(async () => {
      await fixture.close();
    });

    it('approves an application once credit, documents and the rate lock are in, and tells the applicant', async () => {
      const id = await flow.submit();
      await flow.uploadAll(id);
      assert.equal(await flow.lockRate(id), 200);
      const decided = await flow.waitForTerminal(id);
      assert.equal(decided.status, 'approved', JSON.stringify(decided));
      assert.match(decided.contractNumber ?? '', /^MU\d{10}$/);
      assert.deepEqual(await flow.streamTypes(`credit-check-${id}`), ['CreditScoreApproved', 'CreditHoldPlaced']);
      assert.deepEqual(await flow.streamTypes(`finalization-${id}`), ['MortgageFinalizationRequested', 'MortgageFinalized']);
      await flow.expectSent(id, 'application-received', 'application-approved');
      assert.deepEqual(new Set((await flow.notifications(id)).map((n) => n.recipient)), new Set(['giulia@example.com']));
    });

    it('rejects an application the credit bureaus score too low, with the reason, and places no hold', async () => {
      const id = await flow.submit({ lastName: 'Lowscore' });
      const decided = await flow.waitForTerminal(id);
      assert.equal(decided.status, 'rejected');
      assert.match(decided.reason ?? '', /credit check: .*risk band E/);
      assert.deepEqual(await flow.streamTypes(`credit-check-${id}`), ['CreditScoreRejected']);
      const sent = await flow.finalNotifications(id);
      assert.deepEqual(
        sent.filter((n) => finalTemplates.has(n.template)).map((n) => n.template),
        ['application-rejected'],
      );
    });

    it('rejects an application once no bureau has answered by the scoring deadline, and tells the applicant', async () => {
      const id = await flow.submit({ lastName: 'Bureausdown' });
      const decided = await flow.waitForTerminal(id);
      assert.equal(decided.status, 'rejected');
      assert.match(decided.reason ?? '', /credit check: no credit bureau answered within \d+ s/);
      const [row] = await fixture.database.query<{ code: string; bureau: string | null }>(
        `SELECT data->'reasons'->0->>'code' AS code, data->>'bureau' AS bureau FROM mutuo_events WHERE stream_id = $1`,
        [`credit-check-${id}`],
      );
      assert.deepEqual(row, { code: 'BUREAU_UNAVAILABLE', bureau: null });
      const sent = await flow.finalNotifications(id);
      assert.deepEqual(
        sent.filter((n) => finalTemplates.has(n.template)).map((n) => n.template),
        ['application-rejected'],
      );
    });

    it('asks the other bureau when the first one is down', async () => {
      const id = await flow.submit({ lastName: 'Crifdown' });
      await flow.waitFor('the credit decision', async () => ((await flow.streamTypes(`credit-check-${id}`)).length > 0 ? true : undefined));
      const [row] = await fixture.database.query<{ bureau: string }>(
        `SELECT data->>'bureau' AS bureau FROM mutuo_events WHERE stream_id = $1 AND event_type = 'CreditScoreApproved'`,
        [`credit-check-${id}`],
      );
      assert.equal(row?.bureau, 'experian');
      assert.equal(await flow.withdraw(id), 200);
    });

    it('takes corrected documents after a rejection, tells the applicant, then approves', async () => {
      const id = await flow.submit();
      await flow.uploadAll(id, { payslip: 'low-income' });
      await flow.documentsChecked(id, 'DocumentsRejected');
      assert.equal((await flow.application(id)).status, 'processing', 'a first rejection is not final');
      await flow.upload(id, 'payslip');
      await flow.documentsChecked(id, 'DocumentsValidated');
      assert.equal(await flow.lockRate(id), 200);
      assert.equal((await flow.waitForTerminal(id)).status, 'approved');
      await flow.expectSent(id, 'application-received', 'documents-rejected', 'application-approved');
    });

    it('compensates a mainframe refusal: the hold is released, the application rejected, the applicant told once', async () => {
      const id = await flow.submit({ amount: 200_000.51 });
      await flow.uploadAll(id);
      await flow.lockRate(id);
      const decided = await flow.waitForTerminal(id);
      assert.equal(decided.status, 'rejected');
      assert.match(decided.reason ?? '', /insufficient funds/i);
      await flow.waitFor('the hold to be released', async () =>
        (await flow.streamTypes(`credit-check-${id}`)).includes('CreditHoldReleased') ? true : undefined,
      );
      assert.deepEqual(await flow.streamTypes(`credit-check-${id}`), ['CreditScoreApproved', 'CreditHoldPlaced', 'CreditHoldReleased']);
      assert.deepEqual(await flow.streamTypes(`finalization-${id}`), ['MortgageFinalizationRequested', 'MortgageFinalizationFailed']);
      const sent = await flow.finalNotifications(id);
      assert.deepEqual(
        sent.filter((n) => finalTemplates.has(n.template)).map((n) => n.template),
        ['application-rejected'],
      );
    });

    it('books once when the first answer of the mainframe is lost and the call is retried', async () => {
      const id = await flow.submit({ amount: 200_000.54 });
      await flow.uploadAll(id);
      await flow.lockRate(id);
      const decided = await flow.waitForTerminal(id);
      assert.equal(decided.status, 'approved');
      const [row] = await fixture.database.query<{ attempts: number }>(
        `SELECT (data->>'attempts')::int AS attempts FROM mutuo_events WHERE stream_id = $1 AND event_type = 'MortgageFinalized'`,
        [`finalization-${id}`],
      );
      assert.ok((row?.attempts ?? 0) >= 2, 'the booking took a retry');
    });

    it('compensates a withdrawal in mid-flow: the hold is released and nothing is booked', async () => {
      const id = await flow.submit();
      await flow.waitFor('the credit hold', async () => ((await flow.streamTypes(`credit-check-${id}`)).includes('CreditHoldPlaced') ? true : undefined));
      await flow.uploadAll(id);
      assert.equal(await flow.withdraw(id, 'found a better offer'), 200);
      assert.equal((await flow.waitForTerminal(id)).status, 'withdrawn');
      await flow.waitFor('the hold to be released', async () =>
        (await flow.streamTypes(`credit-check-${id}`)).includes('CreditHoldReleased') ? true : undefined,
      );
      assert.equal(await flow.lockRate(id), 422, 'a withdrawn application takes no rate lock');
      assert.deepEqual(await flow.streamTypes(`finalization-${id}`), []);
      const sent = await flow.finalNotifications(id);
      assert.deepEqual(
        sent.filter((n) => finalTemplates.has(n.template)).map((n) => n.template),
        ['application-withdrawn'],
      );
    });

    it(`brings ${options.crowd} applications at once, with failures injected, each to one outcome, compensated and told once`, async () => {
      // Deterministic failures, chosen at random: each application's outcome is known in advance.
      const scenarios = ['approve', 'lowscore', 'documents', 'refusal', 'timeout', 'withdraw'] as const;
      const planned = Array.from({ length: options.crowd }, (_, i) => scenarios[(i * 7 + Math.floor(Math.random() * 6)) % scenarios.length]!);
      const expected = {
        approve: 'approved',
        lowscore: 'rejected',
        documents: 'rejected',
        refusal: 'rejected',
        timeout: 'rejected',
        withdraw: 'withdrawn',
      } as const;
      const amountFor = { refusal: 200_000.52, timeout: 200_000.53 } as Partial<Record<(typeof scenarios)[number], number>>;
      const ids = await Promise.all(
        planned.map(async (scenario) => {
          const id = await flow.submit({
            ...(scenario === 'lowscore' ? { lastName: 'Lowscore' } : {}),
            ...(amountFor[scenario] !== undefined ? { amount: amountFor[scenario] } : {}),
          });
          if (scenario === 'lowscore') return id;
          if (scenario === 'withdraw') {
            await flow.lockRate(id);
            await flow.withdraw(id);
            return id;
          }
          if (scenario === 'documents') {
            // Three rejections in a row: each corrected upload brings a new defect (the same files are not checked twice); the third is final.
            try {
              await flow.uploadAll(id, { id_card: 'wrong-tax-code' });
              await flow.documentsChecked(id, 'DocumentsRejected', 1);
              await flow.upload(id, 'payslip', 'low-income');
              await flow.documentsChecked(id, 'DocumentsRejected', 2);
              await flow.upload(id, 'appraisal', 'low-value');
              await flow.documentsChecked(id, 'DocumentsRejected', 3);
            } catch (error) {
              throw new Error(`${(error as Error).message}; its events: ${JSON.stringify(await flow.history(id))}`);
            }
            return id;
          }
          await flow.uploadAll(id);
          await flow.lockRate(id);
          return id;
        }),
      );
      const outcomes = await Promise.all(
        ids.map(async (id, i) => {
          try {
            return await flow.waitForTerminal(id, 300_000);
          } catch (error) {
            throw new Error(`${planned[i]} ${id}: ${(error as Error).message}; its events: ${JSON.stringify(await flow.history(id))}`);
          }
        }),
      );
      for (const [i, id] of ids.entries()) {
        const scenario = planned[i]!;
        if (options.randomFailures && scenario === 'approve' && outcomes[i]!.status === 'rejected') {
          assert.ok((await flow.streamTypes(`finalization-${id}`)).includes('MortgageFinalizationFailed'), `${id}: ${JSON.stringify(outcomes[i])}`);
          planned[i] = 'timeout';
        }
        assert.equal(outcomes[i]!.status, expected[planned[i]!], `${scenario} ${id}: ${JSON.stringify(outcomes[i])}`);
      }
      for (const [i, id] of ids.entries()) {
        const scenario = planned[i]!;
        const credit = await flow.waitFor(`the credit check of ${id} to settle`, async () => {
          const types = await flow.streamTypes(`credit-check-${id}`);
          const holds = types.filter((t) => t === 'CreditHoldPlaced').length;
          const released = types.filter((t) => t === 'CreditHoldReleased').length;
          // A check cancelled by an early withdrawal never writes anything: settled once no check is pending.
          const [pending] = await fixture.database.query(`SELECT 1 FROM mutuo_jobs WHERE queue = 'scoring.credit-check' AND key = $1`, [id]);
          const settled = scenario === 'approve' ? holds === 1 : holds === released;
          return !pending && settled ? types : undefined;
        });
        if (scenario !== 'approve')
          assert.ok(!credit.includes('CreditHoldPlaced') || credit.includes('CreditHoldReleased'), `${scenario} ${id} released its hold`);
        const sent = await flow.finalNotifications(id);
        assert.equal(sent.filter((n) => finalTemplates.has(n.template)).length, 1, `${scenario} ${id}: exactly one final notification`);
      }
    });

    it('sends no email again when every event is delivered to the Notification service again', async () => {
      const id = await flow.submit();
      await flow.uploadAll(id);
      assert.equal(await flow.lockRate(id), 200);
      assert.equal((await flow.waitForTerminal(id)).status, 'approved');
      await flow.finalNotifications(id);
      const emailsPending = async () => (await fixture.database.query(`SELECT 1 FROM mutuo_jobs WHERE queue = 'notification.email' LIMIT 1`)).length > 0;
      await flow.waitFor('every email to be sent', async () => ((await emailsPending()) ? undefined : true));
      const mailsBefore = fixture.mails().length;
      const handled = async () =>
        Number((await fixture.database.query<{ n: string }>(`SELECT count(*)::text AS n FROM mutuo_inbox WHERE consumer = 'notification'`))[0]!.n);
      const handledBefore = await handled();
      assert.ok(handledBefore > 0);

      // As an operator replaying the whole log would: the service forgets what it handled, and the relay publishes every event again.
      await fixture.database.query(`DELETE FROM mutuo_inbox WHERE consumer = 'notification'`);
      await fixture.database.query(`UPDATE mutuo_relay SET position = 0, holder = 'test: replay everything', lease_until = now()`);
      fixture.wake?.();
      // Each event handled again schedules its email in the same transaction as its inbox record, and the email job then finds it sent.
      await flow.waitFor('every event to be handled again and its email job done', async () =>
        (await handled()) >= handledBefore && !(await emailsPending()) ? true : undefined,
      );
      assert.equal(fixture.mails().length, mailsBefore, 'no email went out twice');
      await flow.expectSent(id, 'application-received', 'application-approved');
    });

    if (options.clockControl) {
      // Last: it moves the clock a month ahead for every service.
      it('lets a rate lock expire, tells the applicant, and books only once a new rate is locked', async () => {
        const id = await flow.submit();
        assert.equal(await flow.lockRate(id), 200);
        await flow.waitFor('the credit check', async () => ((await flow.streamTypes(`credit-check-${id}`)).includes('CreditHoldPlaced') ? true : undefined));
        // No job may be running when the clock jumps a month: its lease would lapse at once, and a
        // second run of the same email would be fenced off by the first one's ledger claim.
        await flow.expectSent(id, 'application-received');
        fixture.advanceClock!(31 * 86_400_000);
        await flow.waitFor('the lock to expire', async () =>
          (await flow.streamTypes(`application-${id}`)).includes('InterestRateLockExpired') ? true : undefined,
        );
        await flow.uploadAll(id);
        await flow.documentsChecked(id, 'DocumentsValidated');
        assert.equal((await flow.application(id)).status, 'processing', 'no booking without a lock');
        assert.equal(await flow.lockRate(id), 200);
        assert.equal((await flow.waitForTerminal(id)).status, 'approved');
        const history = await flow.history(id);
        const relocked = history.lastIndexOf('application:InterestRateLocked');
        assert.ok(history.indexOf('finalization:MortgageFinalizationRequested') > relocked, `booked after the new lock: ${history.join(', ')}`);
        assert.deepEqual(await flow.streamTypes(`finalization-${id}`), ['MortgageFinalizationRequested', 'MortgageFinalized']);
        await flow.expectSent(id, 'application-received', 'rate-lock-expired', 'application-approved');
      });
    }

    if (options.processes) {
      it("keeps the saga's state across a restart of the Bank Gateway, and books once it is back", async () => {
        const id = await flow.submit();
        await flow.uploadAll(id);
        const sagaKnows = async () => {
          const [row] = await fixture.database.query<{ credit: string; documents: string }>(
            `SELECT state->'facts'->>'credit' AS credit, state->'facts'->>'documents' AS documents FROM mutuo_gateway_sagas WHERE application_id = $1`,
            [id],
          );
          return row?.credit === 'approved' && row.documents === 'validated' ? true : undefined;
        };
        await flow.waitFor('the saga to know of the credit and the documents', sagaKnows);
        const startAgain = await fixture.stopService!('bank-gateway');
        // While it is away, the lock is taken: its event waits in the Bank Gateway's queues.
        assert.equal(await flow.lockRate(id), 200);
        assert.equal((await flow.application(id)).status, 'processing');
        await startAgain();
        const decided = await flow.waitForTerminal(id);
        assert.equal(decided.status, 'approved', JSON.stringify(decided));
        assert.deepEqual(await flow.streamTypes(`finalization-${id}`), ['MortgageFinalizationRequested', 'MortgageFinalized']);
      });
    }
  });
}
