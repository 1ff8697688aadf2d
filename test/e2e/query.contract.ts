import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { UsageError } from '../../src/app/cli/dlq.ts';
import type { Platform } from '../../src/app/platform.ts';
import { projectionsCommand } from '../../src/app/cli/projections.ts';
import { devBearer, type AuthHeaders, type DemoUserId } from '../../src/security/testing.ts';
import { applicationStreamId } from '../../src/features/application/events.ts';
import { storeApplicationOfUnknownVersion, unknownVersionFailure } from '../../src/platform/projections/projector.contract.ts';
import { sealingStore } from '../../src/platform/eventstore/testing.ts';

const submission = JSON.parse(readFileSync(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as {
  applicant: Record<string, string>;
  loan: Record<string, unknown>;
};

type Answer<T> = { status: number; headers: Headers; body: T };

/** A logger that keeps the warnings and errors it writes, for a test to read. */
export function keptLogs(): { logger: FastifyBaseLogger; lines: () => Record<string, unknown>[] } {
  const written: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void written.push(line) });
  return { logger, lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

type OpenedPlatform = { platform: Platform; url: string; close: () => Promise<void>; logs: () => Record<string, unknown>[] };

/** The query side of a running platform (application, projector and query services) over HTTP. */
export function describeQuerySide(setup: string, open: () => Promise<OpenedPlatform>): void {
  describe(`the query side: ${setup}`, () => {
    let platform: Platform;
    let url: string;
    let close: () => Promise<void>;
    let logs: () => Record<string, unknown>[];
    before(async () => {
      ({ platform, url, close, logs } = await open());
    });
    after(() => close());

    const tokens = new Map<DemoUserId, Promise<AuthHeaders>>();
    const as = (user: DemoUserId) => {
      if (!tokens.has(user)) tokens.set(user, devBearer(url, user));
      return tokens.get(user)!;
    };

    /** A request as a demo user: the operator unless told otherwise. */
    async function call<T>(
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
      user: DemoUserId = 'olivia',
    ): Promise<Answer<T>> {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { ...(await as(user)), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : undefined) as T };
    }

    const submit = async (lastName = 'Bianchi') => {
      const answer = await call<{ applicationId: string; position: number }>(
        'POST',
        '/api/applications',
        { ...submission, applicant: { ...submission.applicant, lastName } },
        {},
        'giulia',
      );
      assert.equal(answer.status, 201);
      return answer.body;
    };

    it('reads its own write at once with X-Min-Position, and says when the read model is behind', async () => {
      const { applicationId, position } = await submit();
      const view = await call<{ status: string; version: number }>('GET', `/api/applications/${applicationId}`, undefined, {
        'x-min-position': String(position),
      });
      assert.equal(view.status, 200);
      assert.equal(view.body.status, 'processing');
      assert.equal(view.headers.get('etag'), '"1"');
      assert.equal(view.headers.get('x-read-model-behind'), null);
      const locked = await call<{ position: number }>('POST', `/api/applications/${applicationId}/rate-lock`, {});
      const after = await call<{ version: number; steps: { rateLocked: boolean } }>(
        'GET',
        `/api/applications/${applicationId}?minPosition=${locked.body.position}`,
      );
      assert.deepEqual([after.body.version, after.body.steps.rateLocked], [2, true]);
      // A position no write has reached yet: the answer comes after the bound, with what there is.
      const ahead = await call<{ version: number }>('GET', `/api/applications/${applicationId}`, undefined, {
        'x-min-position': String(locked.body.position * 1000),
      });
      assert.equal(ahead.status, 200);
      assert.equal(ahead.headers.get('x-read-model-behind'), 'true');
      assert.equal(ahead.body.version, 2);
      assert.equal((await call('GET', `/api/applications/${applicationId}`, undefined, { 'x-min-position': 'soon' })).status, 400);
    });

    it('finds an application by surname prefix and by tax code, and counts it on the dashboard under its region', async () => {
      const surname = `Zanetti${Math.random().toString(36).slice(2, 8).replace(/\d/g, 'x')}`;
      const { applicationId, position } = await submit(surname);
      const wait = { 'x-min-position': String(position) };
      const byPrefix = await call<{ items: { applicationId: string }[]; total: number }>(
        'GET',
        `/api/applications?q=${surname.slice(0, 9).toLowerCase()}`,
        undefined,
        wait,
      );
      assert.equal(byPrefix.status, 200);
      assert.ok(byPrefix.body.items.some((item) => item.applicationId === applicationId));
      const byTaxCode = await call<{ items: { applicationId: string }[] }>(
        'GET',
        `/api/applications?taxCode=${submission.applicant.taxCode}&q=${surname}`,
        undefined,
        wait,
      );
      assert.deepEqual(
        byTaxCode.body.items.map((item) => item.applicationId),
        [applicationId],
      );
      const board = await call<{ rows: { region: string; submitted: number; processing: number }[] }>('GET', '/api/dashboard', undefined, wait, 'elena');
      assert.equal(board.status, 200);
      const region = board.body.rows.filter((row) => row.region === 'Lombardia');
      assert.ok(region.reduce((sum, row) => sum + row.submitted, 0) >= 1);
      assert.equal((await call('GET', '/api/applications?page=0')).status, 400);
    });

    it('streams each change of an application as Server-Sent Events, and resumes after Last-Event-ID without losing one', async () => {
      const { applicationId } = await submit();
      const events: { id: string; data: { type: string; status: string } }[] = [];
      const read = async (lastEventId: string | undefined, until: (count: number) => boolean) => {
        const abort = new AbortController();
        // The applicant follows her own application.
        const response = await fetch(`${url}/api/applications/${applicationId}/live`, {
          headers: { ...(await as('giulia')), ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
          signal: abort.signal,
        });
        assert.equal(response.status, 200);
        assert.match(String(response.headers.get('content-type')), /^text\/event-stream/);
        // The stream is written on the raw response, and carries the security headers all the same.
        assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
        assert.ok(response.headers.get('x-correlation-id'));
        const seen: typeof events = [];
        const decoder = new TextDecoder();
        let buffer = '';
        try {
          for await (const chunk of response.body!) {
            buffer += decoder.decode(chunk as Uint8Array, { stream: true });
            let end: number;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const frame = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const id = /^id: (.*)$/m.exec(frame)?.[1];
              const data = /^data: (.*)$/m.exec(frame)?.[1];
              if (id && data) seen.push({ id, data: JSON.parse(data) });
            }
            if (until(seen.length)) break;
          }
        } finally {
          abort.abort();
        }
        return seen;
      };
      // First connection: the submission, then the rate lock as it happens.
      const first = read(undefined, (n) => n >= 2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal((await call('POST', `/api/applications/${applicationId}/rate-lock`, {})).status, 200);
      events.push(...(await first));
      assert.deepEqual(
        events.map((e) => e.data.type),
        ['MortgageApplicationSubmitted', 'InterestRateLocked'],
      );
      // Disconnected, the applicant withdraws elsewhere; the reconnection gets only what it missed.
      assert.equal((await call('POST', `/api/applications/${applicationId}/withdrawal`, { reason: 'changed my mind' })).status, 200);
      const resumed = await read(events.at(-1)!.id, (n) => n >= 1);
      assert.deepEqual(
        resumed.map((e) => [e.data.type, e.data.status]),
        [['ApplicationWithdrawn', 'withdrawn']],
      );
      assert.ok(Number(resumed[0]!.id) > Number(events.at(-1)!.id));
    });

    it('publishes a new rate table that the rate table query and the next rate lock both use', async () => {
      const before = await call<{ version: number; fixed: { maxTermYears: number; maxLtv: number; annualRate: number }[] }>('GET', '/api/rates');
      assert.equal(before.status, 200);
      const fixed = before.body.fixed.map((band) => ({ ...band, annualRate: band.annualRate + 1 }));
      const variable = before.body.fixed;
      const published = await call<{ version: number; position: number }>('PUT', '/api/rates', { fixed, variable, reason: 'the ECB moved' });
      assert.equal(published.status, 200, JSON.stringify(published.body));
      const after = await call<{ version: number; fixed: { annualRate: number }[] }>('GET', `/api/rates?minPosition=${published.body.position}`);
      assert.equal(after.body.version, published.body.version);
      assert.deepEqual(
        after.body.fixed.map((band) => band.annualRate),
        fixed.map((band) => band.annualRate),
      );
      const { applicationId } = await submit();
      const locked = await call<{ position: number }>('POST', `/api/applications/${applicationId}/rate-lock`, {});
      const view = await call<{ rate: { annualRate: number } }>('GET', `/api/applications/${applicationId}?minPosition=${locked.body.position}`);
      // 25 years, 200,000 on 300,000 (67 %): the band up to 30 years and 80 %.
      const band = fixed.find((b) => b.maxTermYears >= 25 && b.maxLtv >= 66.67)!;
      assert.equal(view.body.rate.annualRate, band.annualRate);
      const stale = await call('PUT', '/api/rates', { fixed, variable, reason: 'again' }, { 'if-match': `"${published.body.version - 1}"` });
      assert.equal(stale.status, 409);
      const bad = await call<{ errors: { path: string }[] }>('PUT', '/api/rates', { fixed: [{ maxTermYears: 50, maxLtv: 80, annualRate: 3 }], reason: '' });
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.body.errors.map((e) => e.path).sort(), ['fixed', 'fixed[0].maxTermYears', 'reason', 'variable']);
    });

    it('simulates a mortgage to the cent, with its APRC, and names a bad field', async () => {
      const answer = await call<{ installment: number; totalInterest: number; aprc: number; schedule: { principal: number }[] }>('POST', '/api/simulations', {
        amount: 200000,
        termYears: 30,
        annualRate: 2.5,
        fees: { upfront: 1800, perInstallment: 2, annual: 100 },
        schedule: true,
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.installment, 790.24);
      assert.equal(answer.body.totalInterest, 84487.35);
      assert.equal(answer.body.aprc, 2.7);
      assert.equal(answer.body.schedule.length, 360);
      assert.equal(Math.round(answer.body.schedule.reduce((sum, row) => sum + row.principal * 100, 0)), 20_000_000);
      const published = await call<{ annualRate: number }>('POST', '/api/simulations', { amount: 200000, termYears: 25, propertyValue: 300000 });
      assert.equal(published.status, 200);
      assert.ok(published.body.annualRate > 0);
      const bad = await call<{ errors: { path: string }[] }>('POST', '/api/simulations', { amount: -1, termYears: 30, annualRate: 2.5 });
      assert.equal(bad.status, 400);
      assert.deepEqual(
        bad.body.errors.map((e) => e.path),
        ['amount'],
      );
    });

    it('reports each projection with its position and lag, and as Prometheus metrics', async () => {
      const { position } = await submit();
      await call('GET', `/api/applications?minPosition=${position}`);
      const status = await call<{ items: { name: string; position: number; lagMs: number }[] }>('GET', '/api/projections', undefined, {}, 'ada');
      assert.deepEqual(status.body.items.map((item) => item.name).sort(), ['application-search', 'customer-view', 'dashboard', 'rates']);
      const metrics = await fetch(`${url}/metrics`, { headers: await as('prometheus') });
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /mutuo_projection_position\{projection="customer-view"\} \d+/);
      void platform;
    });

    it('rebuilds a read model into a shadow copy and swaps it in while queries are answered throughout', async () => {
      const ids = await Promise.all(Array.from({ length: 30 }, () => submit()));
      const last = Math.max(...ids.map((s) => s.position));
      await call('GET', `/api/applications/${ids[0]!.applicationId}?minPosition=${last}`);
      const started = await call<{ state: string }>('POST', '/api/projections/customer-view/rebuild', undefined, {}, 'ada');
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const failures: number[] = [];
      let progress: { state: string; applied: number; total: number } = { state: 'running', applied: 0, total: 0 };
      while (progress.state === 'running' || progress.state === 'swapping') {
        for (const { applicationId } of ids.slice(0, 5)) {
          const answer = await call('GET', `/api/applications/${applicationId}`);
          if (answer.status !== 200) failures.push(answer.status);
        }
        progress = (await call<typeof progress>('GET', '/api/projections/customer-view/rebuild', undefined, {}, 'ada')).body;
      }
      assert.equal(progress.state, 'done', JSON.stringify(progress));
      assert.deepEqual(failures, [], 'every query was answered during the rebuild');
      for (const { applicationId } of ids) assert.equal((await call('GET', `/api/applications/${applicationId}`)).status, 200);
      // And it keeps following the log after the swap.
      const fresh = await submit();
      assert.equal((await call('GET', `/api/applications/${fresh.applicationId}?minPosition=${fresh.position}`)).status, 200);
    });

    it('mutuo projections lists the read models and rebuilds one, printing its progress', async () => {
      const listed = await projectionsCommand(['list'], { baseUrl: url }, () => undefined);
      assert.match(listed, /^customer-view\s+position \d+/m);
      const lines: string[] = [];
      const done = await projectionsCommand(['rebuild', 'dashboard'], { baseUrl: url }, (text) => lines.push(text), { interactive: false, pollMs: 20 });
      assert.match(done, /^dashboard rebuilt: \d+ events$/);
      assert.match(lines.at(-1)!, /\[#+\] 100 % .* done/);
      await assert.rejects(
        projectionsCommand(['rebuild', 'nothing'], { baseUrl: url }, () => undefined),
        /no projection named nothing/,
      );
      await assert.rejects(
        projectionsCommand(['rebuilt'], { baseUrl: url }, () => undefined),
        UsageError,
      );
      const all = await projectionsCommand(['rebuild'], { baseUrl: url }, () => undefined, { interactive: false, pollMs: 20 });
      assert.deepEqual(
        all
          .split('\n')
          .map((line) => line.split(' ')[0])
          .sort(),
        ['application-search', 'customer-view', 'dashboard', 'rates'],
      );
    });

    it('parks an application its read models cannot apply, serves every other one, and shows the operator what it parked', async () => {
      const poisoned = await storeApplicationOfUnknownVersion(sealingStore(platform.client));
      const stream = applicationStreamId(poisoned);
      platform.wake();
      // Another applicant's application, submitted after it, is read and found at once.
      const surname = `Dopo${Math.random().toString(36).slice(2, 8).replace(/\d/g, 'x')}`;
      const { applicationId, position } = await submit(surname);
      const wait = { 'x-min-position': String(position) };
      const view = await call('GET', `/api/applications/${applicationId}`, undefined, wait);
      assert.equal(view.status, 200);
      assert.equal(view.headers.get('x-read-model-behind'), null);
      const found = await call<{ items: { applicationId: string }[] }>('GET', `/api/applications?q=${surname.toLowerCase()}`, undefined, wait);
      assert.deepEqual(
        found.body.items.map((item) => item.applicationId),
        [applicationId],
      );
      assert.equal((await call('GET', `/api/applications/${poisoned}`, undefined, wait)).status, 404);

      const status = await call<{ items: { name: string; parkedEvents: number; parkedStreams: number; behindEvents: number }[] }>(
        'GET',
        '/api/projections',
        undefined,
        {},
        'ada',
      );
      const byName = new Map(status.body.items.map((item) => [item.name, item]));
      assert.deepEqual([byName.get('customer-view')?.parkedEvents, byName.get('customer-view')?.parkedStreams], [1, 1]);
      assert.deepEqual([byName.get('application-search')?.parkedEvents, byName.get('dashboard')?.parkedEvents], [1, 1]);
      const parked = await call<{ items: { streamId: string; streamVersion: number; eventType: string; errorCode: string; error: string }[]; total: number }>(
        'GET',
        '/api/projections/customer-view/parked',
        undefined,
        {},
        'ada',
      );
      assert.equal(parked.status, 200);
      assert.deepEqual(
        parked.body.items.map((item) => [item.streamId, item.streamVersion, item.eventType, item.errorCode, item.error]),
        [[stream, 1, 'MortgageApplicationSubmitted', ...unknownVersionFailure]],
      );
      assert.equal((await call('GET', '/api/projections/customer-view/parked')).status, 403, 'an operator does not operate projections');
      assert.equal((await call('GET', '/api/projections/nothing/parked', undefined, {}, 'ada')).status, 404);
      const badStream = await call<{ errors: { path: string }[] }>(
        'POST',
        '/api/projections/customer-view/parked/discard?streamId=a%00b',
        undefined,
        {},
        'ada',
      );
      assert.equal(badStream.status, 400);
      assert.deepEqual(
        badStream.body.errors.map((e) => e.path),
        ['querystring.streamId'],
      );
      const metrics = await (await fetch(`${url}/metrics`, { headers: await as('prometheus') })).text();
      assert.match(metrics, /^mutuo_projection_parked_events\{projection="customer-view"\} 1$/m);
      assert.match(metrics, /^mutuo_projection_parked_events\{projection="dashboard"\} 1$/m);
      assert.match(metrics, /^mutuo_projection_parked_events\{projection="rates"\} 0$/m);

      // One log line per event parked, by each read model that parked it: where it is and why, never its data.
      const lines = logs().filter((line) => line.streamId === stream);
      assert.deepEqual(lines.map((line) => line.projection).sort(), ['application-search', 'customer-view', 'dashboard']);
      for (const line of lines) {
        assert.equal(line.level, 50);
        assert.equal(line.errorCode, unknownVersionFailure[0]);
        assert.equal(typeof line.position, 'number');
        assert.equal(typeof line.eventId, 'string');
        assert.match(String(line.msg), /cannot apply event \d+ \(MortgageApplicationSubmitted, version 1 of application-/);
      }
      const written = JSON.stringify(logs());
      assert.ok(!written.includes('Futuro'), "nothing of the event's data in the logs");

      const target = { baseUrl: url };
      assert.match(await projectionsCommand(['list'], target, () => undefined), /^customer-view\s+position \d+ .* parked 1 events$/m);
      assert.match(
        await projectionsCommand(['parked', 'customer-view'], target, () => undefined),
        new RegExp(
          `^customer-view\\s+\\d+\\s+${stream}\\s+1\\s+MortgageApplicationSubmitted\\s+${unknownVersionFailure.join(': ').replace(/[()]/g, '\\$&')}$`,
          'm',
        ),
      );
      assert.equal(
        await projectionsCommand(['redrive', 'customer-view'], target, () => undefined),
        'customer-view: 0 parked events applied, 1 parked again (see mutuo projections parked customer-view)',
      );
      assert.equal(
        await projectionsCommand(['discard', 'customer-view', stream], target, () => undefined),
        `customer-view, stream ${stream}: 1 parked events discarded`,
      );
      for (const name of ['application-search', 'dashboard']) {
        assert.equal(await projectionsCommand(['discard', name], target, () => undefined), `${name}: 1 parked events discarded`);
      }
      assert.equal(await projectionsCommand(['parked'], target, () => undefined), 'no parked events');
      await assert.rejects(
        projectionsCommand(['redrive'], target, () => undefined),
        UsageError,
      );
    });
  });
}
