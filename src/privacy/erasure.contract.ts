import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPlatform } from '../cli/platform.ts';
import type { Config } from '../config.ts';
import type { SqlQueryable } from '../eventstore/sql-client.ts';
import { devBearer, type AuthHeaders, type DemoUserId } from '../security/testing.ts';
import { otherValidTaxCode } from '../services/documents/sample-pdfs.ts';

/** A whole platform, its database to look into, and its clock to move. */
export type ErasureFixture = {
  readonly url: string;
  readonly database: SqlQueryable;
  /** Where the Document service keeps the files. */
  readonly documentsDirectory: string;
  readonly advanceClock: (ms: number) => void;
  readonly close: () => Promise<void>;
};

const yearMs = 366 * 86_400_000;

/** The whole platform of this configuration, listening, with a clock the test moves; `dispose` runs after it closed. */
export async function erasurePlatform(config: Config, dispose: () => Promise<void>): Promise<ErasureFixture> {
  let clockOffsetMs = 0;
  const platform = await openPlatform(config, false, { clock: () => new Date(Date.now() + clockOffsetMs) });
  const url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    database: platform.client,
    documentsDirectory: config.documents.directory,
    advanceClock: (ms) => {
      clockOffsetMs += ms;
      platform.wake();
    },
    close: async () => {
      await platform.close();
      await dispose();
    },
  };
}

const submission = JSON.parse(readFileSync(new URL('../../test/fixtures/submission.json', import.meta.url), 'utf8')) as {
  applicant: Record<string, string>;
  income: Record<string, unknown>;
  property: Record<string, unknown>;
  loan: Record<string, unknown>;
};

type Problem = { status: number; code: string; detail: string };

/**
 * Erasure end to end: a person's application, documents and emails are readable through
 * the API; after their erasure no API answer, no table and no file holds any of their
 * personal data, while the facts of the application still replay. The retention period
 * and a legal hold stand in the way first, with the reason in the answer.
 */
export function describeErasure(name: string, open: () => Promise<ErasureFixture>): void {
  describe(`erasure of a person's data: ${name}`, () => {
    let fixture: ErasureFixture;
    const tokens = new Map<DemoUserId, Promise<AuthHeaders>>();
    const as = (user: DemoUserId) => {
      if (!tokens.has(user)) tokens.set(user, devBearer(fixture.url, user));
      return tokens.get(user)!;
    };

    async function call<T = unknown>(user: DemoUserId, method: string, path: string, body?: unknown): Promise<{ status: number; body: T; text: string }> {
      const response = await fetch(`${fixture.url}${path}`, {
        method,
        headers: { ...(await as(user)), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T, text };
    }

    async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const value = await probe();
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }

    // A person of this test's own: every trace of them can be looked for by these strings.
    const tag = randomUUID().slice(0, 8);
    const person = {
      firstName: `Erminia${tag}`,
      lastName: `Cancellieri${tag}`,
      taxCode: otherValidTaxCode(submission.applicant.taxCode!),
      email: `erminia.${tag}@example.it`,
    };
    const personal = [person.firstName, person.lastName, person.taxCode, person.email];
    let applicationId: string;

    /** Every table's rows that hold any of the person's data, as `<table>: <row>`. */
    async function tracesInDatabase(): Promise<string[]> {
      const tables = await fixture.database.query<{ name: string }>(
        `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`,
      );
      assert.ok(tables.length > 10, 'the platform has its tables in this schema');
      const traces: string[] = [];
      for (const { name: table } of tables) {
        const rows = await fixture.database.query<{ row: string }>(
          `SELECT t::text AS row FROM ${table} t WHERE ${personal.map((_, i) => `strpos(lower(t::text), lower($${i + 1})) > 0`).join(' OR ')}`,
          personal,
        );
        for (const { row } of rows) traces.push(`${table}: ${row.slice(0, 300)}`);
      }
      return traces;
    }

    /** What the API tells of the application to each role that may read it. */
    async function everythingTheApiSays(): Promise<string> {
      const encoded = encodeURIComponent(person.lastName);
      const answers = await Promise.all([
        call('olivia', 'GET', `/api/applications/${applicationId}`),
        call('olivia', 'GET', `/api/applications/${applicationId}/events`),
        call('olivia', 'GET', `/api/applications/${applicationId}/state?version=1`),
        call('olivia', 'GET', `/api/applications/${applicationId}/state`),
        call('olivia', 'GET', `/api/applications/${applicationId}/documents`),
        call('olivia', 'GET', `/api/applications?q=${encoded}`),
        call('olivia', 'GET', `/api/applications?taxCode=${person.taxCode}`),
        call('olivia', 'GET', `/api/applications?region=Lombardia&pageSize=100`),
        call('olivia', 'GET', `/api/notifications?applicationId=${applicationId}`),
        call('ada', 'GET', `/api/notifications`),
        call('ada', 'GET', `/api/dead-letters`),
        call('elena', 'GET', `/api/dashboard`),
        call('giulia', 'GET', `/api/applications/${applicationId}`),
      ]);
      return answers.map((answer) => answer.text).join('\n');
    }

    before(async () => {
      fixture = await open();
      const submitted = await call<{ applicationId: string }>('giulia', 'POST', '/api/applications', { ...submission, applicant: person });
      assert.equal(submitted.status, 201, submitted.text);
      applicationId = submitted.body.applicationId;
      // Her documents (the sandbox's samples quote her tax code), uploaded once the Document service knows of her application.
      const headers = await as('giulia');
      for (const kind of ['id_card', 'payslip']) {
        const sample = await eventually('the Document service to know the application', async () => {
          const response = await fetch(`${fixture.url}/api/sandbox/applications/${applicationId}/documents/${kind}`, { headers });
          return response.status === 200 ? response.arrayBuffer() : undefined;
        });
        const form = new FormData();
        form.append('kind', kind);
        form.append('file', new Blob([sample], { type: 'application/pdf' }), `${person.lastName}-${kind}.pdf`);
        const uploaded = await fetch(`${fixture.url}/api/applications/${applicationId}/documents`, { method: 'POST', body: form, headers });
        assert.equal(uploaded.status, 202, await uploaded.text());
      }
      await eventually('the submission email', async () => {
        const sent = await call<{ items?: unknown[] } | unknown[]>('olivia', 'GET', `/api/notifications?applicationId=${applicationId}`);
        return sent.text.includes(person.email) ? true : undefined;
      });
    });

    after(async () => {
      await fixture?.close();
    });

    it('shows the person to those who may see them, while the application is open, and refuses to erase them', async () => {
      const said = await eventually('the read models to have the application', async () => {
        const text = await everythingTheApiSays();
        return text.includes(person.taxCode) && text.includes(person.lastName) ? text : undefined;
      });
      assert.ok(said.includes(person.email), 'the audit trail and the notifications name her email');
      // The look through the database finds her where the services keep their copies (never in the events: they are sealed).
      const traces = (await tracesInDatabase()).map((trace) => trace.slice(0, trace.indexOf(':')));
      for (const table of ['rm_applications', 'rm_application_search', 'mutuo_documents_applications', 'mutuo_notification_recipients', 'mutuo_gateway_sagas']) {
        assert.ok(traces.some((found) => found.endsWith(table)), `${table} holds her data: ${traces.join(', ')}`);
      }
      assert.ok(!traces.some((found) => found.endsWith('mutuo_events')), 'the events hold her data sealed');
      const folder = join(fixture.documentsDirectory, applicationId);
      const files = readdirSync(folder);
      assert.equal(files.length, 2, 'her documents are on disk');
      for (const file of files) assert.ok(readFileSync(join(folder, file)).subarray(0, 16).equals(Buffer.from('MUTUO-SEALED-v1\n')), `${file} is sealed with her key`);
      const status = await call<{ relationship: { ongoing: boolean }; erasable: boolean; streams: string[] }>('ada', 'GET', `/api/applicants/${person.taxCode}/personal-data`);
      assert.equal(status.status, 200, status.text);
      assert.deepEqual(status.body.relationship, { ongoing: true });
      assert.equal(status.body.erasable, false);
      assert.ok(status.body.streams.includes(`application-${applicationId}`));
      const refused = await call<Problem>('ada', 'POST', `/api/applicants/${person.taxCode}/erasure`);
      assert.equal(refused.status, 422, refused.text);
      assert.equal(refused.body.code, 'RELATIONSHIP_ONGOING');
    });

    it('keeps the records for the retention period after the relationship ended, and says until when', async () => {
      const withdrawn = await call('giulia', 'POST', `/api/applications/${applicationId}/withdrawal`, { reason: 'bought elsewhere' });
      assert.equal(withdrawn.status, 200, withdrawn.text);
      const refused = await call<Problem>('ada', 'POST', `/api/applicants/${person.taxCode}/erasure`);
      assert.equal(refused.status, 422, refused.text);
      assert.equal(refused.body.code, 'RETENTION_PERIOD');
      assert.match(refused.body.detail, /10 years .* until \d{4}-/);
      const status = await call<{ retainedUntil: string; refusal: { code: string } }>('ada', 'GET', `/api/applicants/${person.taxCode}/personal-data`);
      assert.equal(status.body.refusal.code, 'RETENTION_PERIOD');
      assert.ok(Date.parse(status.body.retainedUntil) - Date.now() > 9 * yearMs);
    });

    it('keeps them under a legal hold, whatever the retention says, until it is released', async () => {
      fixture.advanceClock(11 * yearMs);
      const held = await call('ada', 'POST', `/api/applicants/${person.taxCode}/legal-hold`, { reason: 'litigation 42/2036' });
      assert.equal(held.status, 201, held.text);
      const refused = await call<Problem>('ada', 'POST', `/api/applicants/${person.taxCode}/erasure`);
      assert.equal(refused.status, 422, refused.text);
      assert.equal(refused.body.code, 'LEGAL_HOLD');
      assert.match(refused.body.detail, /litigation 42\/2036/);
      assert.equal((await call<Problem>('ada', 'POST', `/api/applicants/${person.taxCode}/legal-hold`, { reason: 'again' })).status, 422);
      const released = await call('ada', 'POST', `/api/applicants/${person.taxCode}/legal-hold/release`, { reason: 'settled' });
      assert.equal(released.status, 200, released.text);
      const status = await call<{ erasable: boolean; status: string }>('ada', 'GET', `/api/applicants/${person.taxCode}/personal-data`);
      assert.deepEqual([status.body.status, status.body.erasable], ['active', true]);
    });

    it('erases: no API answer, no table and no file holds anything of the person, and the facts still replay', async () => {
      const eventsBefore = (await call<unknown[]>('olivia', 'GET', `/api/applications/${applicationId}/events`)).body;
      const erased = await call<{ subjectId: string; streams: string[]; position: number }>('ada', 'POST', `/api/applicants/${person.taxCode}/erasure`);
      assert.equal(erased.status, 200, erased.text);
      assert.ok(erased.body.streams.includes(`application-${applicationId}`));

      // The read models and every service drop their copies as the erasure's event reaches them.
      const traces = await eventually('every copy to be dropped', async () => {
        const found = await tracesInDatabase();
        return found.length === 0 && !existsSync(join(fixture.documentsDirectory, applicationId)) ? found : undefined;
      }).catch(async (error: Error) => {
        throw new Error(`${error.message}; still there: ${(await tracesInDatabase()).join('\n')}`);
      });
      assert.deepEqual(traces, []);
      const view = await call<{ applicant: unknown }>('olivia', 'GET', `/api/applications/${applicationId}?minPosition=${erased.body.position}`);
      assert.deepEqual(view.body.applicant, { firstName: '[erased]', lastName: '[erased]' });
      const said = await everythingTheApiSays();
      for (const datum of personal) assert.ok(!said.toLowerCase().includes(datum.toLowerCase()), `the API still says ${datum}`);

      // The facts: every event is still there, in order, with its non-personal data.
      const eventsAfter = (await call<{ type: string; version: number; data: Record<string, unknown> }[]>('olivia', 'GET', `/api/applications/${applicationId}/events`)).body;
      assert.deepEqual(
        eventsAfter.map((event) => [event.type, event.version]),
        (eventsBefore as typeof eventsAfter).map((event) => [event.type, event.version]),
      );
      const submitted = eventsAfter[0]!.data as { applicant: Record<string, string>; loan: unknown; property: { region: string } };
      assert.deepEqual(submitted.applicant, { firstName: '[erased]', lastName: '[erased]', taxCode: '[erased]', email: '[erased]' });
      assert.deepEqual(submitted.loan, (eventsBefore as typeof eventsAfter)[0]!.data.loan);
      const state = await call<{ status: string }>('olivia', 'GET', `/api/applications/${applicationId}/state`);
      assert.equal(state.body.status, 'withdrawn');

      // Gone for good: the tax code names no one now, and a second request finds nothing to erase.
      assert.equal((await call('ada', 'GET', `/api/applicants/${person.taxCode}/personal-data`)).status, 404);
      assert.equal((await call('ada', 'POST', `/api/applicants/${person.taxCode}/erasure`)).status, 404);
    });

    it('stays erased when the read models are rebuilt from the events', async () => {
      const started = await call('ada', 'POST', '/api/projections/customer-view/rebuild');
      assert.ok(started.status === 202 || started.status === 200, started.text);
      await eventually('the rebuild', async () => {
        const progress = await call<{ state: string }>('ada', 'GET', '/api/projections/customer-view/rebuild');
        return progress.body.state === 'done' ? true : undefined;
      });
      const view = await call<{ applicant: unknown; status: string }>('olivia', 'GET', `/api/applications/${applicationId}`);
      assert.equal(view.status, 200, view.text);
      assert.deepEqual([view.body.status, view.body.applicant], ['withdrawn', { firstName: '[erased]', lastName: '[erased]' }]);
      assert.deepEqual(await tracesInDatabase(), []);
    });
  });
}
