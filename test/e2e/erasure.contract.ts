import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { openPlatform } from '../../src/app/platform.ts';
import { createLogger } from '../../src/platform/logger.ts';
import type { Config } from '../../src/app/config.ts';
import type { SqlQueryable } from '../../src/platform/sql/sql-client.ts';
import { devBearer, type AuthHeaders, type DemoUserId } from '../../src/security/testing.ts';
import { otherValidTaxCode } from '../../src/features/documents/sample-pdfs.ts';

/** A whole platform, its database to look into, everything it wrote, and its clock to move. */
export type ErasureFixture = {
  readonly url: string;
  readonly database: SqlQueryable;
  /** Where the Document service keeps the files. */
  readonly documentsDirectory: string;
  /** Every line the platform logged, at the debug level. */
  readonly logLines: () => readonly string[];
  /** The files that hold the database's pages, once written out (the WAL left out: see the README). */
  readonly databaseFiles: () => Promise<string[]>;
  /** Every value in Redis, where the platform keeps anything there. */
  readonly redisValues: () => Promise<string[]>;
  readonly advanceClock: (ms: number) => void;
  readonly close: () => Promise<void>;
};

const yearMs = 366 * 86_400_000;

/** Every file under a folder, but those in folders named `skip`. */
function filesUnder(folder: string, skip: readonly string[]): string[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return skip.includes(entry.name) ? [] : filesUnder(path, skip);
    return entry.isFile() ? [path] : [];
  });
}

/**
 * The files of the database's pages once PostgreSQL wrote them out (CHECKPOINT): on PGlite,
 * its whole folder; on a server, each file (every segment and fork) of every relation in the
 * test's schema, with their TOAST tables and indexes. The WAL is left out.
 */
export async function databaseFiles(database: SqlQueryable, pgliteFolder: string | undefined): Promise<string[]> {
  await database.query('CHECKPOINT');
  if (pgliteFolder) return filesUnder(pgliteFolder, ['pg_wal']);
  const [{ directory }] = (await database.query<{ directory: string }>(`SELECT current_setting('data_directory') AS directory`)) as [{ directory: string }];
  const relations = await database.query<{ path: string }>(
    `SELECT pg_relation_filepath(c.oid) AS path
       FROM pg_class c
      WHERE c.relnamespace = current_schema()::regnamespace
         OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = current_schema()::regnamespace)
         OR c.oid IN (SELECT i.indexrelid FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                       WHERE t.oid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = current_schema()::regnamespace))`,
  );
  return relations.flatMap(({ path }) => {
    if (!path) return [];
    const full = join(directory, path);
    const folder = dirname(full);
    const name = basename(full);
    // The main fork's segments (<oid>, <oid>.1, ...) and the other forks (<oid>_fsm, <oid>_vm, <oid>_init).
    return readdirSync(folder)
      .filter((file) => file === name || file.startsWith(`${name}.`) || file.startsWith(`${name}_`))
      .map((file) => join(folder, file));
  });
}

/** The whole platform of this configuration, listening, logging every line at the debug level, with a clock the test moves; `dispose` runs after it closed. */
export async function erasurePlatform(config: Config, dispose: () => Promise<void>): Promise<ErasureFixture> {
  let clockOffsetMs = 0;
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
  const platform = await openPlatform(config, logger, { clock: () => new Date(Date.now() + clockOffsetMs) });
  const url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
  const redis = config.redisUrl ? createClient({ url: config.redisUrl }) : undefined;
  await redis?.connect();
  return {
    url,
    database: platform.client,
    documentsDirectory: config.documents.directory,
    logLines: () => lines,
    databaseFiles: () => databaseFiles(platform.client, config.databaseUrl ? undefined : join(config.dataDir, 'pglite')),
    redisValues: async () => {
      if (!redis) return [];
      const values: string[] = [];
      for await (const keys of redis.scanIterator({ MATCH: '*', COUNT: 1_000 })) {
        for (const key of keys) {
          const type = await redis.type(key);
          if (type === 'string') values.push(`${key}=${(await redis.get(key)) ?? ''}`);
          else if (type === 'hash') values.push(`${key}=${JSON.stringify(await redis.hGetAll(key))}`);
          else values.push(`${key} (${type})`);
        }
      }
      return values;
    },
    advanceClock: (ms) => {
      clockOffsetMs += ms;
      platform.wake();
    },
    close: async () => {
      redis?.destroy();
      await platform.close();
      await dispose();
    },
  };
}

const submission = JSON.parse(readFileSync(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as {
  applicant: Record<string, string>;
  income: Record<string, unknown>;
  property: Record<string, unknown>;
  loan: Record<string, unknown>;
};

type Problem = { status: number; code: string; detail: string };

/**
 * Erasure end to end, through the whole flow: a person's application, its three documents
 * checked, the credit check, an operator's note and rate change naming them, emails, a
 * withdrawal and a legal hold with reasons naming them. While the application is open the
 * API shows them to those who may see them, and no table holds anything of them in the
 * clear. After their erasure, no API answer, no table, no page of the database's files, no
 * file, no Redis value and no log line holds their name, email or tax code, their key is
 * gone from the database's files, and the facts of the application still replay. The
 * retention period and a legal hold stand in the way first, with the reason in the answer.
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
    /** Free text that names her, as operators and applicants write it. */
    const naming = (what: string) => `${what}: ${person.firstName} ${person.lastName}, ${person.taxCode}`;
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

    /** Where the database's files, the documents' folder, Redis or the log hold any of these byte strings. */
    async function tracesOnDisk(needles: readonly Buffer[]): Promise<string[]> {
      const traces: string[] = [];
      const files = [...(await fixture.databaseFiles()), ...filesIn(fixture.documentsDirectory)];
      assert.ok(files.length > 10, `the database's files are there to look through: ${files.length}`);
      for (const file of files) {
        const bytes = readFileSync(file);
        for (const needle of needles)
          if (bytes.includes(needle) || bytes.includes(Buffer.from(needle.toString('utf8').toLowerCase()))) traces.push(`${file}: ${needle.toString('utf8')}`);
      }
      for (const value of await fixture.redisValues()) {
        for (const needle of needles) if (value.toLowerCase().includes(needle.toString('utf8').toLowerCase())) traces.push(`Redis ${value.slice(0, 200)}`);
      }
      for (const line of fixture.logLines()) {
        for (const needle of needles) if (line.toLowerCase().includes(needle.toString('utf8').toLowerCase())) traces.push(`log: ${line.slice(0, 300)}`);
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
      // Her three documents (the sandbox's samples print her name and tax code), uploaded once the Document service knows of her application, and checked.
      const headers = await as('giulia');
      for (const kind of ['id_card', 'payslip', 'appraisal']) {
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
      await eventually('the documents to be checked', async () => {
        const documents = await call<{ lastCheck?: { outcome: string } }>('olivia', 'GET', `/api/applications/${applicationId}/documents`);
        return documents.body.lastCheck?.outcome === 'validated' ? true : undefined;
      });
      await eventually('the credit check', async () => {
        const decided = await fixture.database.query('SELECT 1 FROM mutuo_events WHERE stream_id = $1', [`credit-check-${applicationId}`]);
        return decided.length > 0 ? true : undefined;
      });
      // An operator's note and rate change that name her.
      const note = await call('olivia', 'POST', `/api/applications/${applicationId}/income-approval`, {
        verifiedMonthlyNet: 3200,
        note: naming('payslip checked by phone with'),
      });
      assert.equal(note.status, 200, note.text);
      const rate = await call('olivia', 'POST', `/api/applications/${applicationId}/rate`, { annualRate: 2.95, reason: naming('loyal customer') });
      assert.equal(rate.status, 200, rate.text);
      await eventually('the submission email', async () => {
        const sent = await call<{ items: { recipient: string }[] }>('olivia', 'GET', `/api/notifications?applicationId=${applicationId}`);
        return sent.body.items?.some((item) => item.recipient === person.email) ? true : undefined;
      });
    });

    after(async () => {
      await fixture?.close();
    });

    it('shows the person to those who may see them while the application is open, keeps nothing of them in the clear, and refuses to erase them', async () => {
      const said = await eventually('the read models to have the application', async () => {
        const text = await everythingTheApiSays();
        return text.includes(person.taxCode) && text.includes(person.lastName) ? text : undefined;
      });
      assert.ok(said.includes(person.email), 'the audit trail and the notifications name her email');
      assert.ok(said.includes(naming('payslip checked by phone with')), "the audit trail shows the operator's note");
      // Every copy the read models and the services keep is sealed with her key, as her events are.
      assert.deepEqual(await tracesInDatabase(), []);
      const folder = join(fixture.documentsDirectory, applicationId);
      const files = readdirSync(folder);
      assert.equal(files.length, 3, 'her documents are on disk');
      for (const file of files)
        assert.ok(readFileSync(join(folder, file)).subarray(0, 16).equals(Buffer.from('MUTUO-SEALED-v1\n')), `${file} is sealed with her key`);
      const status = await call<{ relationship: { ongoing: boolean }; erasable: boolean; streams: string[] }>(
        'ada',
        'GET',
        `/api/applicants/${person.taxCode}/personal-data`,
      );
      assert.equal(status.status, 200, status.text);
      assert.deepEqual(status.body.relationship, { ongoing: true });
      assert.equal(status.body.erasable, false);
      assert.ok(status.body.streams.includes(`application-${applicationId}`));
      const refused = await call<Problem>('ada', 'POST', `/api/applicants/${person.taxCode}/erasure`);
      assert.equal(refused.status, 422, refused.text);
      assert.equal(refused.body.code, 'RELATIONSHIP_ONGOING');
    });

    it('keeps the records for the retention period after the relationship ended, and says until when', async () => {
      const withdrawn = await call('giulia', 'POST', `/api/applications/${applicationId}/withdrawal`, { reason: naming('bought elsewhere, says') });
      assert.equal(withdrawn.status, 200, withdrawn.text);
      const refused = await call<Problem>('ada', 'POST', `/api/applicants/${person.taxCode}/erasure`);
      assert.equal(refused.status, 422, refused.text);
      assert.equal(refused.body.code, 'RETENTION_PERIOD');
      assert.match(refused.body.detail, /10 years .* until \d{4}-/);
      const status = await call<{ retainedUntil: string; refusal: { code: string } }>('ada', 'GET', `/api/applicants/${person.taxCode}/personal-data`);
      assert.equal(status.body.refusal.code, 'RETENTION_PERIOD');
      assert.ok(Date.parse(status.body.retainedUntil) - Date.now() > 9 * yearMs);
      await eventually('the withdrawal email', async () => {
        const sent = await call<{ items: { template: string }[] }>('olivia', 'GET', `/api/notifications?applicationId=${applicationId}`);
        return sent.body.items?.some((item) => item.template === 'application-withdrawn') ? true : undefined;
      });
      assert.deepEqual(await tracesInDatabase(), [], "the withdrawal's reason is sealed too");
    });

    it('keeps them under a legal hold, whatever the retention says, until it is released', async () => {
      fixture.advanceClock(11 * yearMs);
      const held = await call('ada', 'POST', `/api/applicants/${person.taxCode}/legal-hold`, { reason: naming('litigation 42/2036 against') });
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
      assert.deepEqual(await tracesInDatabase(), [], "the hold's reason is sealed too");
    });

    it('erases: no API answer, table, database page, file, Redis value or log line holds anything of the person, their key is gone from disk, and the facts still replay', async () => {
      const eventsBefore = (await call<unknown[]>('olivia', 'GET', `/api/applications/${applicationId}/events`)).body;
      const { subjectId } = (await call<{ subjectId: string }>('ada', 'GET', `/api/applicants/${person.taxCode}/personal-data`)).body;
      const [held] = await fixture.database.query<{ data_key: Uint8Array }>('SELECT data_key FROM mutuo_subject_keys WHERE subject_id = $1', [subjectId]);
      const key = Buffer.from(held!.data_key);
      assert.equal(key.length, 32);
      const erased = await call<{ subjectId: string; streams: string[]; position: number }>('ada', 'POST', `/api/applicants/${person.taxCode}/erasure`);
      assert.equal(erased.status, 200, erased.text);
      assert.ok(erased.body.streams.includes(`application-${applicationId}`));

      // The Document service deletes the files (unreadable already); the key's old row version is shredded by a job.
      await eventually('the files to go and the key to be shredded', async () => {
        const shredding = await fixture.database.query('SELECT 1 FROM mutuo_jobs WHERE queue = $1', ['privacy.shred-keys']);
        return shredding.length === 0 && !existsSync(join(fixture.documentsDirectory, applicationId)) ? true : undefined;
      });
      assert.deepEqual(await tracesInDatabase(), []);
      const view = await call<{ applicant: unknown }>('olivia', 'GET', `/api/applications/${applicationId}?minPosition=${erased.body.position}`);
      assert.deepEqual(view.body.applicant, { firstName: '[erased]', lastName: '[erased]' });
      const said = await everythingTheApiSays();
      for (const datum of personal) assert.ok(!said.toLowerCase().includes(datum.toLowerCase()), `the API still says ${datum}`);
      // Not in the database's pages (old row versions included: the WAL and backups are left out, see the README), the files, Redis, the log.
      assert.deepEqual(await tracesOnDisk([...personal.map((datum) => Buffer.from(datum, 'utf8')), key]), []);

      // The facts: every event is still there, in order, with its non-personal data.
      const eventsAfter = (
        await call<{ type: string; version: number; data: Record<string, unknown> }[]>('olivia', 'GET', `/api/applications/${applicationId}/events`)
      ).body;
      assert.deepEqual(
        eventsAfter.map((event) => [event.type, event.version]),
        (eventsBefore as typeof eventsAfter).map((event) => [event.type, event.version]),
      );
      const submitted = eventsAfter[0]!.data as { applicant: Record<string, string>; loan: unknown; property: { region: string } };
      assert.deepEqual(submitted.applicant, { firstName: '[erased]', lastName: '[erased]', taxCode: '[erased]', email: '[erased]' });
      assert.deepEqual(submitted.loan, (eventsBefore as typeof eventsAfter)[0]!.data.loan);
      const notes = eventsAfter.filter(
        (event) => event.type === 'IncomeApproved' || event.type === 'InterestRateChanged' || event.type === 'ApplicationWithdrawn',
      );
      assert.deepEqual(
        notes.map((event) => event.data.note ?? event.data.reason),
        ['[erased]', '[erased]', '[erased]'],
      );
      const state = await call<{ status: string; reason: string }>('olivia', 'GET', `/api/applications/${applicationId}/state`);
      assert.deepEqual([state.body.status, state.body.reason], ['withdrawn', '[erased]']);

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

/** Every file under a folder (none when it does not exist). */
const filesIn = (folder: string) => filesUnder(folder, []);
