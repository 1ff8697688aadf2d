import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildServer } from '../../platform/http/server.ts';
import { defaultRateTable } from '../../domain/rates.ts';
import { SqlEventStore } from '../../platform/eventstore/store.ts';
import type { TestDatabase } from '../../platform/sql/testing.ts';
import { deadLetterRoutes } from '../../platform/messaging/dead-letter-routes.ts';
import { createDeadLetters } from '../../platform/messaging/dead-letters.ts';
import { watchCheckpoints } from '../../platform/projections/checkpoints.ts';
import { customerViewProjection, memoryViewCache } from './customer-view.ts';
import { searchKeys } from './search.ts';
import { sqlSubjectKeys } from '../../privacy/subject-keys.ts';
import { createPersonalDataVault } from '../../privacy/vault.ts';
import { platformEventHistory } from '../../app/catalog.ts';
import { startLiveFeed } from './live.ts';
import { startProjector } from '../../platform/projections/projector.ts';
import { queryRoutes } from './query-routes.ts';
import { testHttpLimits, testIdentities, type DemoUserId, type TestIdentities } from '../../security/testing.ts';
import { applicationRoutes } from './routes.ts';
import { createApplicationService } from './service.ts';
import { accessTable } from '../../security/permissions.ts';

export const validSubmission = {
  applicant: { firstName: 'Giulia', lastName: 'Bianchi', taxCode: 'BNCGLI90C55F205Z', email: 'giulia@example.com', birthDate: '1990-03-15' },
  income: { monthlyNet: 3200.5, monthlyDebts: 150, employment: 'permanent' },
  property: { value: 300000, region: 'Lombardia', province: 'MI', energyClass: 'B' },
  loan: { amount: 200000, termYears: 25, rateType: 'fixed' },
};

type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { path: string; message: string }[];
  currentVersion?: number;
};

function problemOf(response: LightMyRequestResponse, status: number): Problem {
  assert.equal(response.statusCode, status, response.body);
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  const body = response.json<Problem>();
  assert.equal(body.status, status);
  assert.ok(body.type && body.title && body.detail && body.code);
  return body;
}

function errorPaths(problem: Problem): string[] {
  return (problem.errors ?? []).map((e) => e.path).sort();
}

/** The HTTP contract of the write side (API.md), run against each store adapter. */
export function describeApplicationApi(adapter: string, openDatabase: () => Promise<TestDatabase>): void {
  describe(`application command API on ${adapter}`, () => {
    let database: TestDatabase;
    let app: FastifyInstance;
    let readSide: { close: () => Promise<void> };
    let identities: TestIdentities;

    before(async () => {
      database = await openDatabase();
      // As the platform's: the applicant sealed with their key on the way in, revealed on the way out.
      const digestSecret = 'the application API contract: a secret of at least 32 characters';
      const personalData = createPersonalDataVault({ keys: sqlSubjectKeys(database.client, { digestSecret }), definitions: platformEventHistory });
      const store = new SqlEventStore(database.client, { personalData });
      // The customer view the GETs read, fed by a projector of its own.
      const viewCache = memoryViewCache();
      const projector = startProjector({ client: database.client, store, projections: [customerViewProjection(viewCache, personalData)] });
      store.onAppend(projector.wake);
      const checkpoints = watchCheckpoints(database.client);
      const live = startLiveFeed(store, database.client, { perCaller: 100, perProcess: 1_000 });
      readSide = {
        close: async () => {
          checkpoints.close();
          await live.close();
          await projector.stop();
        },
      };
      const applications = createApplicationService({
        store,
        clock: () => new Date(),
        newId: randomUUID,
        rateTable: () => defaultRateTable,
        limits: { minLoanCents: 3_000_000 },
      });
      identities = await testIdentities(database.client);
      app = await buildServer({
        routes: [
          (server) => server.register(applicationRoutes, { applications }),
          (server) => server.register(deadLetterRoutes, { deadLetters: createDeadLetters(database.client) }),
          (server) =>
            server.register(queryRoutes, {
              db: database.client,
              checkpoints,
              viewCache,
              live,
              maxWaitMs: 2_000,
              personalData,
              search: { keys: searchKeys(digestSecret), personalData },
            }),
        ],
        checkReady: async () => undefined,
        logger: false,
        verifyToken: identities.verifyToken,
        access: accessTable,
        http: testHttpLimits,
      });
    });
    after(async () => {
      await app.close();
      await readSide.close();
      await database.dispose();
    });

    /** A request as a demo user: the operator unless told otherwise. */
    const inject = async (options: InjectOptions, user: DemoUserId = 'olivia') =>
      app.inject({ ...options, headers: { ...(await identities.as(user)), ...options.headers } });
    const submit = (body: unknown = validSubmission, headers: Record<string, string> = {}, user: DemoUserId = 'giulia') =>
      inject({ method: 'POST', url: '/api/applications', payload: body as object, headers }, user);
    const submitted = async () => (await submit()).json<{ applicationId: string; version: number; position: number }>();
    const command = (method: 'POST' | 'PUT', url: string, payload?: object, headers: Record<string, string> = {}, user: DemoUserId = 'olivia') =>
      inject({ method, url, ...(payload ? { payload } : {}), headers }, user);

    it('accepts a valid application with 201, its id, version, position, Location and ETag', async () => {
      const response = await submit();
      assert.equal(response.statusCode, 201, response.body);
      const body = response.json<{ applicationId: string; version: number; position: number }>();
      assert.match(body.applicationId, /^[0-9a-f-]{36}$/);
      assert.equal(body.version, 1);
      assert.ok(Number.isSafeInteger(body.position) && body.position > 0);
      assert.equal(response.headers.location, `/api/applications/${body.applicationId}`);
      assert.equal(response.headers.etag, '"1"');

      const view = await inject({ method: 'GET', url: String(response.headers.location), headers: { 'x-min-position': String(body.position) } });
      assert.equal(view.statusCode, 200);
      const customer = view.json<{ status: string; loan: { amount: number }; applicant: Record<string, string> }>();
      assert.equal(customer.status, 'processing');
      assert.equal(customer.loan.amount, 200000);
      assert.deepEqual(customer.applicant, { firstName: 'Giulia', lastName: 'Bianchi' });
    });

    it('answers malformed JSON with 400 problem+json', async () => {
      const response = await inject(
        {
          method: 'POST',
          url: '/api/applications',
          payload: '{"applicant": ',
          headers: { 'content-type': 'application/json' },
        },
        'giulia',
      );
      assert.equal(problemOf(response, 400).code, 'MALFORMED_JSON');
    });

    it('names the tax code when its check character is wrong', async () => {
      const body = { ...validSubmission, applicant: { ...validSubmission.applicant, taxCode: 'BNCGLI90C55F205A' } };
      const problem = problemOf(await submit(body), 400);
      assert.equal(problem.code, 'INVALID_INPUT');
      assert.deepEqual(errorPaths(problem), ['applicant.taxCode']);
    });

    it('names every wrong, missing or unknown field at once', async () => {
      const body = {
        applicant: { firstName: 'Giulia', lastName: 7, taxCode: 'BNCGLI90C55F205Z', email: 'giulia@example.com', nickname: 'g' },
        income: { employment: 'permanent' },
        property: { value: '300000', region: 'Lombardia' },
        loan: { amount: 200000, termYears: 25, rateType: 'floating' },
      };
      const problem = problemOf(await submit(body), 400);
      assert.deepEqual(errorPaths(problem), ['applicant.lastName', 'applicant.nickname', 'income.monthlyNet', 'loan.rateType', 'property.value']);
    });

    it('refuses amounts with more than two decimals and domain-invalid fields, naming them', async () => {
      const body = {
        ...validSubmission,
        income: { ...validSubmission.income, monthlyNet: 3200.555 },
        loan: { ...validSubmission.loan, amount: 1000.001 },
      };
      assert.deepEqual(errorPaths(problemOf(await submit(body), 400)), ['income.monthlyNet', 'loan.amount']);
      const domainInvalid = {
        ...validSubmission,
        property: { ...validSubmission.property, region: 'Atlantis' },
        loan: { ...validSubmission.loan, termYears: 41 },
      };
      assert.deepEqual(errorPaths(problemOf(await submit(domainInvalid), 400)), ['loan.termYears', 'property.region']);
    });

    it('refuses a loan over 80 % of the property value with 422 unless publicly guaranteed', async () => {
      const tooMuch = { ...validSubmission, loan: { ...validSubmission.loan, amount: 240_000.01 } };
      const problem = problemOf(await submit(tooMuch), 422);
      assert.equal(problem.code, 'LOAN_TO_VALUE_EXCEEDED');
      assert.deepEqual(errorPaths(problem), ['loan.amount']);
      assert.equal((await submit({ ...validSubmission, loan: { ...validSubmission.loan, amount: 240_000 } })).statusCode, 201);
      const guaranteed = { ...validSubmission, loan: { ...validSubmission.loan, amount: 290_000, publicGuarantee: true } };
      assert.equal((await submit(guaranteed)).statusCode, 201);
    });

    it('gives exactly one of 20 concurrent conditional property updates a 2xx and the others 409 with the current version', async () => {
      const { applicationId } = await submitted();
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          command('PUT', `/api/applications/${applicationId}/property`, { value: 310_000 + i, region: 'Lombardia', energyClass: 'A1' }, { 'if-match': '"1"' }),
        ),
      );
      const ok = responses.filter((r) => r.statusCode === 200);
      assert.equal(ok.length, 1);
      for (const response of responses.filter((r) => r.statusCode !== 200)) {
        const problem = problemOf(response, 409);
        assert.equal(problem.code, 'VERSION_CONFLICT');
        assert.equal(problem.currentVersion, 2);
      }
      const events = (await inject({ method: 'GET', url: `/api/applications/${applicationId}/events` })).json<unknown[]>();
      assert.equal(events.length, 2);
    });

    it('applies unconditional concurrent commands one after the other', async () => {
      const { applicationId } = await submitted();
      const responses = await Promise.all(
        [2.8, 2.9, 3.0, 3.1].map((annualRate) => command('POST', `/api/applications/${applicationId}/rate`, { annualRate, reason: 'negotiated' })),
      );
      assert.deepEqual(
        responses.map((r) => r.statusCode),
        [200, 200, 200, 200],
      );
      assert.deepEqual(responses.map((r) => r.json<{ version: number }>().version).sort(), [2, 3, 4, 5]);
    });

    it('refuses a rate finer than 0.0001 %, above 20 % or below 0 with a 400 naming annualRate, and stores nothing', async () => {
      const { applicationId } = await submitted();
      for (const annualRate of [3.87501, 20.0001, -0.5, 1e-7]) {
        const problem = problemOf(await command('POST', `/api/applications/${applicationId}/rate`, { annualRate, reason: 'too fine' }), 400);
        assert.deepEqual(problem.errors, [{ path: 'annualRate', message: 'must be a percentage from 0 to 20 with at most 4 decimals' }], String(annualRate));
      }
      const events = (await inject({ method: 'GET', url: `/api/applications/${applicationId}/events` })).json<unknown[]>();
      assert.equal(events.length, 1);
    });

    it('checks If-Match: a stale version is 409, a malformed one 400', async () => {
      const { applicationId } = await submitted();
      const url = `/api/applications/${applicationId}/rate-lock`;
      assert.equal((await command('POST', url, {}, { 'if-match': '"1"' })).statusCode, 200);
      const stale = problemOf(await command('POST', url, { lockDays: 10 }, { 'if-match': '"1"' }), 409);
      assert.equal(stale.currentVersion, 2);
      assert.deepEqual(errorPaths(problemOf(await command('POST', url, {}, { 'if-match': 'yesterday' }), 400)), ['If-Match']);
    });

    it('runs every command route and refuses changes once the application is closed', async () => {
      const { applicationId } = await submitted();
      const base = `/api/applications/${applicationId}`;
      const expectVersion = async (response: LightMyRequestResponse, version: number) => {
        assert.equal(response.statusCode, 200, response.body);
        assert.equal(response.json<{ version: number }>().version, version);
        assert.equal(response.headers.etag, `"${version}"`);
        return response.json<{ position: number }>().position;
      };
      await expectVersion(await command('POST', `${base}/income-approval`, { verifiedMonthlyNet: 3100, note: 'payslips checked' }), 2);
      await expectVersion(await command('POST', `${base}/rate-lock`), 3);
      await expectVersion(await command('POST', `${base}/rate`, { annualRate: 2.875, reason: 'promotion' }), 4);
      await expectVersion(await command('PUT', `${base}/property`, { value: 320000, region: 'lombardia', energyClass: 'A2' }), 5);
      const state = (await inject({ method: 'GET', url: `${base}/state` })).json<{
        rate: { annualRate: number; lockExpiresAt: string };
        income: { verifiedMonthlyNet: number };
        property: { value: number; energyClass: string };
      }>();
      assert.equal(state.rate.annualRate, 2.875);
      assert.equal(state.income.verifiedMonthlyNet, 3100);
      assert.deepEqual([state.property.value, state.property.energyClass], [320000, 'A2']);
      const withdrawnAt = await expectVersion(await command('POST', `${base}/withdrawal`, { reason: 'found a better offer' }), 6);

      for (const [method, url, payload] of [
        ['POST', `${base}/rate`, { annualRate: 2.5, reason: 'late' }],
        ['POST', `${base}/rate-lock`, {}],
        ['PUT', `${base}/property`, { value: 1, region: 'Lazio' }],
        ['POST', `${base}/withdrawal`, {}],
      ] as const) {
        assert.equal(problemOf(await command(method, url, payload), 422).code, 'APPLICATION_CLOSED', url);
      }
      // The customer view is a read model: ask it for the position the withdrawal answered (read-your-writes).
      const view = (await inject({ method: 'GET', url: base, headers: { 'x-min-position': String(withdrawnAt) } })).json<{ status: string; reason: string }>();
      assert.deepEqual([view.status, view.reason], ['withdrawn', 'found a better offer']);
    });

    it('answers 404 for an unknown application, whatever the id looks like', async () => {
      for (const id of [randomUUID(), 'not-a-uuid']) {
        assert.equal(problemOf(await command('POST', `/api/applications/${id}/rate-lock`), 404).code, 'APPLICATION_NOT_FOUND');
        assert.equal(problemOf(await inject({ method: 'GET', url: `/api/applications/${id}/events` }), 404).code, 'APPLICATION_NOT_FOUND');
        assert.equal(problemOf(await inject({ method: 'GET', url: `/api/applications/${id}/state` }), 404).code, 'APPLICATION_NOT_FOUND');
      }
      assert.equal(problemOf(await inject({ method: 'GET', url: '/api/nothing-here' }), 404).code, 'ROUTE_NOT_FOUND');
    });

    it('lets an applicant reach only their own applications, the back office any', async () => {
      const { applicationId, position } = await submitted();
      const url = `/api/applications/${applicationId}`;
      const caughtUp = { 'x-min-position': String(position) };
      assert.equal((await inject({ method: 'GET', url, headers: caughtUp }, 'giulia')).statusCode, 200);
      assert.equal((await inject({ method: 'GET', url, headers: caughtUp }, 'ugo')).statusCode, 200);
      // Another applicant's application answers exactly as one that does not exist.
      const other = problemOf(await inject({ method: 'GET', url, headers: caughtUp }, 'marco'), 404);
      assert.equal(other.code, 'APPLICATION_NOT_FOUND');
      assert.equal(problemOf(await command('POST', `${url}/withdrawal`, {}, {}, 'marco'), 404).code, 'APPLICATION_NOT_FOUND');
      assert.equal(problemOf(await command('POST', `${url}/rate-lock`, {}, {}, 'marco'), 404).code, 'APPLICATION_NOT_FOUND');
      // Her own: she locks the rate herself.
      assert.equal((await command('POST', `${url}/rate-lock`, {}, {}, 'giulia')).statusCode, 200);
      // The back office's commands and the audit trail are not an applicant's.
      assert.equal(problemOf(await command('POST', `${url}/income-approval`, { verifiedMonthlyNet: 3000 }, {}, 'giulia'), 403).code, 'FORBIDDEN');
      assert.equal(problemOf(await inject({ method: 'GET', url: `${url}/events` }, 'giulia'), 403).code, 'FORBIDDEN');
      // An executive reads the dashboard, not the files; an operator does not submit.
      assert.equal(problemOf(await inject({ method: 'GET', url, headers: caughtUp }, 'elena'), 403).code, 'FORBIDDEN');
      assert.equal(problemOf(await submit(validSubmission, {}, 'olivia'), 403).code, 'FORBIDDEN');
      const trail = (await inject({ method: 'GET', url: `${url}/events` })).json<{ type: string; metadata: { actor: string } }[]>();
      assert.deepEqual(
        trail.map((event) => [event.type, event.metadata.actor]),
        [
          ['MortgageApplicationSubmitted', 'dev:giulia'],
          ['InterestRateLocked', 'dev:giulia'],
        ],
      );
    });

    it('answers 401 without a valid bearer token, and says which scheme it wants', async () => {
      const url = `/api/applications/${randomUUID()}`;
      const none = await app.inject({ method: 'GET', url });
      assert.equal(problemOf(none, 401).code, 'UNAUTHENTICATED');
      assert.equal(none.headers['www-authenticate'], 'Bearer realm="mutuo"');
      for (const authorization of ['Bearer not.a.token', 'Basic Z2l1bGlhOnNlY3JldA==', 'Bearer', `Bearer ${'x'.repeat(20)}`]) {
        const refused = await app.inject({ method: 'GET', url, headers: { authorization } });
        assert.equal(problemOf(refused, 401).code, 'UNAUTHENTICATED', authorization);
        assert.match(String(refused.headers['www-authenticate']), /invalid_token/);
      }
      // A command refused for want of a token stores nothing.
      const stored = async () => (await database.client.query<{ n: number }>('SELECT count(*)::int AS n FROM mutuo_events'))[0]!.n;
      const before = await stored();
      assert.equal((await app.inject({ method: 'POST', url: '/api/applications', payload: validSubmission })).statusCode, 401);
      assert.equal(await stored(), before);
    });

    it('answers every request with its correlation id: the one sent, or a new one', async () => {
      const refused = await submit({ ...validSubmission, loan: 'none' }, { 'x-correlation-id': 'bad-input-7' });
      assert.equal(refused.statusCode, 400);
      assert.equal(refused.headers['x-correlation-id'], 'bad-input-7');
      const missing = await inject({ method: 'GET', url: '/api/nothing-here', headers: { 'x-correlation-id': 'lost-8' } });
      assert.equal(missing.headers['x-correlation-id'], 'lost-8');
      // An id that is not of the allowed form is replaced rather than echoed.
      const fresh = await inject({ method: 'GET', url: '/api/nothing-here', headers: { 'x-correlation-id': 'no spaces <allowed>' } });
      assert.match(String(fresh.headers['x-correlation-id']), /^[0-9a-f-]{36}$/);
    });

    it('serves the audit trail with ids, versions, positions, data and metadata', async () => {
      const submitted = await submit(validSubmission, { 'x-correlation-id': 'journey-42' });
      assert.equal(submitted.headers['x-correlation-id'], 'journey-42');
      const { applicationId } = submitted.json<{ applicationId: string }>();
      await command('POST', `/api/applications/${applicationId}/rate-lock`, { lockDays: 45 });
      const response = await inject({ method: 'GET', url: `/api/applications/${applicationId}/events` });
      assert.equal(response.statusCode, 200);
      const events =
        response.json<
          {
            eventId: string;
            type: string;
            version: number;
            position: number;
            data: Record<string, unknown>;
            metadata: { correlationId: string; causationId: string | null; actor: string; occurredAt: string };
            recordedAt: string;
          }[]
        >();
      assert.deepEqual(
        events.map((e) => [e.type, e.version]),
        [
          ['MortgageApplicationSubmitted', 1],
          ['InterestRateLocked', 2],
        ],
      );
      assert.ok(events[0]!.position < events[1]!.position);
      assert.equal(events[0]!.metadata.correlationId, 'journey-42');
      assert.equal(events[0]!.metadata.actor, 'dev:giulia');
      assert.equal(events[1]!.metadata.actor, 'dev:olivia');
      assert.ok(!Number.isNaN(Date.parse(events[0]!.metadata.occurredAt)));
      assert.ok(!Number.isNaN(Date.parse(events[1]!.recordedAt)));
      assert.deepEqual(events[0]!.data.loan, { amountCents: 20_000_000, termYears: 25, rateType: 'fixed', publicGuarantee: false });
      assert.equal(events[1]!.data.lockDays, 45);
      // Fixed, 25 years, 66.7 % loan-to-value: the 30-year band's 3.25 % plus 0.20 % for LTV over 60 %.
      assert.equal(events[1]!.data.annualRate, '3.45');
    });

    it('replays the application as of a version or an instant', async () => {
      const { applicationId } = await submitted();
      const base = `/api/applications/${applicationId}`;
      await new Promise((resolve) => setTimeout(resolve, 5));
      await command('PUT', `${base}/property`, { value: 400000, region: 'Lazio' });
      await new Promise((resolve) => setTimeout(resolve, 5));
      await command('POST', `${base}/withdrawal`);
      const events = (await inject({ method: 'GET', url: `${base}/events` })).json<{ recordedAt: string }[]>();

      const first = (await inject({ method: 'GET', url: `${base}/state?version=1` })).json<{ version: number; status: string; property: { value: number } }>();
      assert.deepEqual([first.version, first.status, first.property.value], [1, 'processing', 300000]);
      const asOf = (await inject({ method: 'GET', url: `${base}/state?asOf=${events[1]!.recordedAt}` })).json<{
        version: number;
        property: { region: string };
      }>();
      assert.deepEqual([asOf.version, asOf.property.region], [2, 'Lazio']);
      const now = (await inject({ method: 'GET', url: `${base}/state` })).json<{ version: number; status: string }>();
      assert.deepEqual([now.version, now.status], [3, 'withdrawn']);

      const before = new Date(Date.parse(events[0]!.recordedAt) - 1000).toISOString();
      assert.equal(problemOf(await inject({ method: 'GET', url: `${base}/state?asOf=${before}` }), 404).code, 'APPLICATION_NOT_FOUND');
      assert.equal(problemOf(await inject({ method: 'GET', url: `${base}/state?version=7` }), 404).code, 'VERSION_NOT_FOUND');
      problemOf(await inject({ method: 'GET', url: `${base}/state?asOf=someday` }), 400);
      problemOf(await inject({ method: 'GET', url: `${base}/state?version=1&asOf=${before}` }), 400);
      problemOf(await inject({ method: 'GET', url: `${base}/state?version=0` }), 400);
    });

    it('serves health and the OpenAPI documentation', async () => {
      assert.deepEqual((await inject({ method: 'GET', url: '/health' })).json(), { status: 'ok', services: [] });
      const spec = (await inject({ method: 'GET', url: '/docs/json' })).json<{ openapi: string; paths: Record<string, unknown> }>();
      assert.match(spec.openapi, /^3\./);
      for (const path of ['/api/applications', '/api/applications/{id}/rate-lock', '/api/applications/{id}/state']) {
        assert.ok(path in spec.paths, path);
      }
      assert.equal((await inject({ method: 'GET', url: '/docs' })).statusCode < 400, true);
    });
  });
}
