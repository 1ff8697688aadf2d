import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { computeCheckCharacter } from '../../domain/codice-fiscale.ts';
import { DomainError } from '../../domain/errors.ts';
import type { SqlClient } from '../../platform/sql/sql-client.ts';
import { SqlEventStore } from '../../platform/eventstore/store.ts';
import type { TestDatabase } from '../../platform/sql/testing.ts';
import type { NewEvent, StoredEvent } from '../../platform/eventstore/types.ts';
import { applicationStreamId } from './events.ts';
import { dashboard, dashboardProjection, monthOf, parseDashboardQuery } from './dashboard.ts';
import { customerViewProjection } from './customer-view.ts';
import { sqlSubjectKeys } from '../../privacy/subject-keys.ts';
import { createPersonalDataVault, type PersonalDataVault } from '../../privacy/vault.ts';
import { platformEventHistory } from '../../app/catalog.ts';
import { rebuildSplit, type Projection, type TableNames } from '../../platform/projections/projector.ts';
import { lastNameKey, parseSearchQuery, searchApplications, searchKeys, searchProjection, type SearchQuery } from './search.ts';

// ---- events as the application service writes them ----

export const metadata = () => ({ correlationId: randomUUID(), causationId: null, actor: 'test', occurredAt: new Date().toISOString() });
export const event = (type: string, data: unknown, schemaVersion = 1): NewEvent => ({ eventId: randomUUID(), type, schemaVersion, data, metadata: metadata() });

export type Applicant = { firstName: string; lastName: string; region: string; amountCents: number; submittedAt: string };

/** A well-formed tax code made of the names, so each applicant has their own. */
function taxCodeOf(firstName: string, lastName: string, n: number): string {
  const letters = (text: string) =>
    `${lastNameKey(text)
      .toUpperCase()
      .replace(/[^A-Z]/g, '')}XXX`.slice(0, 3);
  const first15 = `${letters(lastName)}${letters(firstName)}${String(60 + (n % 40)).padStart(2, '0')}A${String(1 + (n % 28)).padStart(2, '0')}H501`;
  return first15 + computeCheckCharacter(first15);
}

let applicantCounter = 0;
export function submitted(applicationId: string, applicant: Applicant): NewEvent {
  return event('MortgageApplicationSubmitted', {
    applicationId,
    applicant: {
      firstName: applicant.firstName,
      lastName: applicant.lastName,
      taxCode: taxCodeOf(applicant.firstName, applicant.lastName, ++applicantCounter),
      email: 'someone@example.it',
    },
    income: { monthlyNetCents: 350_000, monthlyDebtsCents: 0, employment: 'permanent' },
    property: { valueCents: applicant.amountCents * 2, region: applicant.region, energyClass: 'B' },
    loan: { amountCents: applicant.amountCents, termYears: 25, rateType: 'fixed', publicGuarantee: false },
    submittedAt: applicant.submittedAt,
  });
}
export const approved = (at: string) => event('ApplicationApproved', { contractNumber: `C-${randomUUID().slice(0, 8)}`, approvedAt: at });
export const rejected = (at: string) => event('ApplicationRejected', { reason: 'income too low', rejectedAt: at });
export const withdrawn = (at: string) => event('ApplicationWithdrawn', { reason: null, withdrawnAt: at });
export const incomeApproved = (at: string) => event('IncomeApproved', { verifiedMonthlyNetCents: 350_000, note: null, approvedAt: at });
/** v1, as written before energy classes: read through the upcaster. */
export const propertyMovedV1 = (region: string, at: string) =>
  event('PropertyDetailsUpdated', { property: { valueCents: 40_000_000, region }, updatedAt: at }, 1);

export const hours = (h: number) => h * 3_600_000;
export const later = (instant: string, ms: number) => new Date(Date.parse(instant) + ms).toISOString();

type Fixture = Applicant & { id: string; then?: (submittedAt: string) => NewEvent[] };

/** Varied names (accents, apostrophes, two words), regions, months and outcomes. */
function fixtures(): Fixture[] {
  const list: Omit<Fixture, 'id'>[] = [
    {
      firstName: 'Mario',
      lastName: 'Rossi',
      region: 'Lazio',
      amountCents: 20_000_000,
      submittedAt: '2024-01-15T09:00:00.000Z',
      then: (s) => [incomeApproved(later(s, hours(1))), approved(later(s, hours(48)))],
    },
    {
      firstName: 'Anna',
      lastName: 'Rossini',
      region: 'Lazio',
      amountCents: 15_000_000,
      submittedAt: '2024-01-20T10:00:00.000Z',
      then: (s) => [rejected(later(s, hours(24)))],
    },
    { firstName: 'Luca', lastName: "D'Amico", region: 'Campania', amountCents: 10_000_000, submittedAt: '2024-02-03T08:00:00.000Z' },
    {
      firstName: 'Giulia',
      lastName: 'Dàmico',
      region: 'Campania',
      amountCents: 12_500_050,
      submittedAt: '2024-02-05T08:00:00.000Z',
      then: (s) => [withdrawn(later(s, hours(5)))],
    },
    {
      firstName: 'Paolo',
      lastName: 'De Luca',
      region: 'Lombardia',
      amountCents: 30_000_000,
      submittedAt: '2024-02-10T12:00:00.000Z',
      then: (s) => [approved(later(s, hours(72)))],
    },
    {
      firstName: 'Sofia',
      lastName: 'Russo',
      region: 'Lombardia',
      amountCents: 18_000_000,
      submittedAt: '2024-01-05T12:00:00.000Z',
      then: (s) => [approved(later(s, hours(12)))],
    },
    {
      firstName: 'Elena',
      lastName: 'Ferrari',
      region: 'Veneto',
      amountCents: 22_000_000,
      submittedAt: '2024-03-01T12:00:00.000Z',
      then: (s) => [rejected(later(s, hours(6)))],
    },
    { firstName: 'Marco', lastName: 'Nicolò', region: 'Toscana', amountCents: 9_000_000, submittedAt: '2024-03-10T12:00:00.000Z' },
    { firstName: 'Chiara', lastName: 'Rossi', region: 'Lazio', amountCents: 25_000_000, submittedAt: '2024-03-15T12:00:00.000Z' },
    {
      firstName: 'Ugo',
      lastName: 'Bianchi',
      region: "Valle d'Aosta",
      amountCents: 11_000_000,
      submittedAt: '2024-03-20T12:00:00.000Z',
      then: (s) => [approved(later(s, hours(30)))],
    },
    // Moves before the decision: counted (and searched) where the property is now.
    {
      firstName: 'Rosa',
      lastName: 'Greco',
      region: 'Puglia',
      amountCents: 14_000_000,
      submittedAt: '2024-02-20T12:00:00.000Z',
      then: (s) => [propertyMovedV1('Sicilia', later(s, hours(2)))],
    },
    // 22:30 UTC on 31 March is already April in Rome.
    {
      firstName: 'Ciro',
      lastName: 'Esposito',
      region: 'Campania',
      amountCents: 16_000_000,
      submittedAt: '2024-03-31T22:30:00.000Z',
      then: (s) => [approved(later(s, hours(10)))],
    },
  ];
  return list.map((fixture) => ({ ...fixture, id: randomUUID() }));
}

// ---- running projections as the projector does ----

export const identity = (projection: Projection): TableNames => Object.fromEntries(projection.tables.map((table) => [table, table]));
export const suffixed = (projection: Projection, suffix: string): TableNames =>
  Object.fromEntries(projection.tables.map((table) => [table, `${table}${suffix}`]));

/** Every event after `position`, read in pages as the projector reads them. */
export async function readLog(store: SqlEventStore, position = 0): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (;;) {
    const page = await store.readAll(position, 1_000);
    if (page.length === 0) return all;
    all.push(...page);
    position = page.at(-1)!.position;
  }
}

/**
 * Hands the events to the projection in batches of the given sizes (cycled), each in a
 * transaction of its own; or, for a projection whose rows are per stream, as a rebuild
 * does: each batch split into `parts` by stream, applied in concurrent transactions.
 */
async function applyInBatches(
  client: SqlClient,
  projection: Projection,
  events: readonly StoredEvent[],
  tables: TableNames,
  sizes: readonly number[],
  parts = 1,
): Promise<void> {
  const rebuilding = Object.entries(tables).some(([name, physical]) => name !== physical);
  let start = 0;
  for (let i = 0; start < events.length; i++) {
    const batch = events.slice(start, start + (sizes[i % sizes.length] ?? events.length));
    start += batch.length;
    // The projector hands over only the projection's own events, and never an empty batch.
    const mine = projection.events ? batch.filter((e) => projection.events!.some((followed) => followed.type === e.type)) : batch;
    if (mine.length === 0) continue;
    const split = rebuildSplit(projection, mine, parts);
    await Promise.all(split.parts.map((part) => client.transaction((tx) => projection.apply(tx, part, tables, rebuilding))));
    if (split.after.length > 0) await client.transaction((tx) => projection.apply(tx, split.after, tables, rebuilding));
  }
}

const orderBy: Record<string, string> = {
  rm_applications: 'application_id',
  rm_application_search: 'application_id',
  rm_dashboard_applications: 'application_id',
  rm_dashboard: 'month, region',
};

/** A table's whole content as comparable text. */
async function contents(client: SqlClient, logical: string, physical: string): Promise<unknown[]> {
  const rows = await client.query<{ row: string }>(`SELECT to_jsonb(t)::text AS row FROM ${physical} t ORDER BY ${orderBy[logical]}`);
  return rows.map((row) => JSON.parse(row.row));
}

export async function snapshot(client: SqlClient, projection: Projection, tables: TableNames): Promise<Record<string, unknown[]>> {
  const result: Record<string, unknown[]> = {};
  for (const table of projection.tables) result[table] = await contents(client, table, tables[table]!);
  return result;
}

const digestSecret = 'the read models contract: a digest secret of at least 32 characters';
const keys = searchKeys(digestSecret);

/** The read models' contract, written once and run against every database the platform runs on. */
export type ContractOptions = {
  /** fast-check runs of the batch-split property. */
  readonly splitRuns?: number;
};

export function describeReadModelsContract(adapter: string, openDatabase: () => Promise<TestDatabase>, options: ContractOptions = {}): void {
  describe(`read models: ${adapter}`, () => {
    let database: TestDatabase;
    let client: SqlClient;
    let store: SqlEventStore;
    let vault: PersonalDataVault;
    let projections: readonly Projection[];
    let position = 0;
    /** The operator search, as the query API makes it. */
    const searchApplicationsFor = (query: SearchQuery) => searchApplications(client, { keys, personalData: vault }, query);
    const apps = fixtures();
    const byName = (lastName: string, firstName?: string) => apps.find((a) => a.lastName === lastName && (!firstName || a.firstName === firstName))!;

    /** Projects whatever was appended since the last call, in one batch per projection. */
    async function catchUp(): Promise<void> {
      const events = await readLog(store, position);
      if (events.length === 0) return;
      for (const projection of projections) await applyInBatches(client, projection, events, identity(projection), [events.length]);
      position = events.at(-1)!.position;
    }

    before(async () => {
      database = await openDatabase();
      client = database.client;
      // As the platform's store: the applicants sealed with their keys, and revealed (with their sealed form) when read.
      vault = createPersonalDataVault({ keys: sqlSubjectKeys(client, { digestSecret }), definitions: platformEventHistory });
      store = new SqlEventStore(client, { personalData: vault });
      projections = [customerViewProjection(undefined, vault), searchProjection(keys), dashboardProjection];
      await Promise.all(
        apps.map((app) => store.appendToStream(applicationStreamId(app.id), [submitted(app.id, app), ...(app.then?.(app.submittedAt) ?? [])], 'no_stream')),
      );
      // Something else in the log, which the read models must pass over.
      await store.appendToStream(`customer-${randomUUID()}`, [event('SomethingElseHappened', { n: 1 })], 'no_stream');
      await catchUp();
    });
    after(() => database.dispose());

    const names = (items: { lastName: string; firstName: string }[]) => items.map((item) => `${item.firstName} ${item.lastName}`);

    describe('search', () => {
      it('finds surnames by prefix, prefix matches first, then the most similar, then the newest', async () => {
        const result = await searchApplicationsFor({ q: 'ros' });
        // "ros" is nearer to "rossi" (similarity 3/7) than to "rossini" (3/9).
        assert.deepEqual(names(result.items), ['Chiara Rossi', 'Mario Rossi', 'Anna Rossini']);
        assert.equal(result.total, 3);
        assert.equal(result.page, 1);
        assert.equal(result.pageSize, 20);
      });

      it('ignores case, accents, apostrophes and spaces', async () => {
        for (const q of ['DAMICO', "d'amico", 'Dàmico', 'dam', "D'A"]) {
          const result = await searchApplicationsFor({ q });
          assert.deepEqual(new Set(names(result.items)), new Set(["Luca D'Amico", 'Giulia Dàmico']), q);
        }
        assert.deepEqual(names((await searchApplicationsFor({ q: 'NICOLO' })).items), ['Marco Nicolò']);
        assert.deepEqual(names((await searchApplicationsFor({ q: 'nicolò' })).items), ['Marco Nicolò']);
        assert.deepEqual(names((await searchApplicationsFor({ q: 'de lu' })).items), ['Paolo De Luca']);
        assert.deepEqual(names((await searchApplicationsFor({ q: 'delu' })).items), ['Paolo De Luca']);
      });

      it('finds similar surnames, by the similarity pg_trgm would give their keys', async () => {
        const rosi = await searchApplicationsFor({ q: 'Rosi' });
        const ferari = await searchApplicationsFor({ q: 'Feràri' });
        // Rossi is the nearest (4/7); Rossini sits on the threshold (3/10), so only its place is checked.
        assert.deepEqual(new Set(names(rosi.items).slice(0, 2)), new Set(['Mario Rossi', 'Chiara Rossi']));
        assert.ok(names(rosi.items).every((name) => name.includes('Ross')));
        assert.deepEqual(names(ferari.items), ['Elena Ferrari']);
        assert.equal((await searchApplicationsFor({ q: 'Xyzzy' })).total, 0);
        // A prefix ranks above a closer fuzzy match: "rossin" is a prefix of Rossini only.
        const rossin = await searchApplicationsFor({ q: 'rossin' });
        assert.equal(names(rossin.items)[0], 'Anna Rossini');
      });

      it('answers with the fields of the list, amounts in euros', async () => {
        const rossi = byName('Rossi', 'Mario');
        const { items } = await searchApplicationsFor({ q: 'rossi', status: 'approved' });
        assert.equal(items.length, 1);
        const [item] = items;
        assert.deepEqual(item, {
          applicationId: rossi.id,
          firstName: 'Mario',
          lastName: 'Rossi',
          taxCode: item!.taxCode,
          status: 'approved',
          region: 'Lazio',
          amount: 200_000,
          submittedAt: '2024-01-15T09:00:00.000Z',
        });
        assert.match(item!.taxCode, /^ROSMAR\d{2}A\d{2}H501[A-Z]$/);
        const damico = await searchApplicationsFor({ q: 'dàmico', status: 'withdrawn' });
        assert.equal(damico.items[0]?.amount, 125_000.5);
      });

      it('matches a tax code exactly, whatever its case', async () => {
        const { items } = await searchApplicationsFor({ q: 'ferrari' });
        const taxCode = items[0]!.taxCode;
        assert.deepEqual(names((await searchApplicationsFor({ taxCode })).items), ['Elena Ferrari']);
        assert.deepEqual(names((await searchApplicationsFor({ taxCode: taxCode.toLowerCase() })).items), ['Elena Ferrari']);
        assert.equal((await searchApplicationsFor({ taxCode: taxCode.slice(0, 15) })).total, 0);
      });

      it('filters by status and region, alone or together', async () => {
        const approvedOnes = await searchApplicationsFor({ status: 'approved' });
        assert.deepEqual(new Set(names(approvedOnes.items)), new Set(['Mario Rossi', 'Paolo De Luca', 'Sofia Russo', 'Ugo Bianchi', 'Ciro Esposito']));
        assert.deepEqual(names((await searchApplicationsFor({ region: 'Lazio' })).items), ['Chiara Rossi', 'Anna Rossini', 'Mario Rossi']);
        assert.deepEqual(names((await searchApplicationsFor({ region: 'Lazio', status: 'processing' })).items), ['Chiara Rossi']);
        assert.deepEqual(names((await searchApplicationsFor({ region: "Valle d'Aosta" })).items), ['Ugo Bianchi']);
        assert.deepEqual(names((await searchApplicationsFor({ region: 'Sicilia' })).items), ['Rosa Greco']);
        assert.equal((await searchApplicationsFor({ region: 'Puglia' })).total, 0);
        assert.deepEqual(names((await searchApplicationsFor({ q: 'ros', status: 'rejected' })).items), ['Anna Rossini']);
      });

      it('pages through every match once, newest first, with the total on every page', async () => {
        const all = await searchApplicationsFor({ pageSize: 100 });
        assert.equal(all.total, apps.length);
        const submittedAts = all.items.map((item) => item.submittedAt);
        assert.deepEqual(submittedAts, [...submittedAts].sort().reverse());
        const seen: string[] = [];
        for (let page = 1; page <= Math.ceil(apps.length / 5); page++) {
          const result = await searchApplicationsFor({ page, pageSize: 5 });
          assert.equal(result.total, apps.length);
          assert.equal(result.page, page);
          assert.equal(result.pageSize, 5);
          seen.push(...result.items.map((item) => item.applicationId));
        }
        assert.deepEqual(
          seen,
          all.items.map((item) => item.applicationId),
        );
        const past = await searchApplicationsFor({ page: 99, pageSize: 5, region: 'Lazio' });
        assert.deepEqual(past.items, []);
        assert.equal(past.total, 3);
        // The page size is held to its bounds.
        assert.equal((await searchApplicationsFor({ pageSize: 1_000 })).pageSize, 100);
      });

      it('answers injection attempts and LIKE wildcards as ordinary text', async () => {
        const attempts = ["' OR 1=1 --", "'; DROP TABLE rm_application_search; --", '%', '_', '\\', '%%', '\\%', "%' OR '1'='1", 'rossi\u0000'];
        for (const text of attempts) {
          for (const query of [{ q: text }, { taxCode: text }, { status: text }, { region: text }]) {
            const result = await searchApplicationsFor(query);
            const expected = 'q' in query && lastNameKey(text).startsWith('rossi') ? 3 : 0;
            assert.equal(result.total, expected, `${JSON.stringify(query)}`);
          }
        }
        assert.equal((await searchApplicationsFor({})).total, apps.length, 'the table is still there, whole');
      });

      it('checks the query string, naming each wrong field', () => {
        assert.deepEqual(
          parseSearchQuery({ q: '  Rossi ', taxCode: 'rssmra80a01h501u', status: 'approved', region: 'emilia romagna', page: '2', pageSize: '50' }),
          {
            q: 'Rossi',
            taxCode: 'RSSMRA80A01H501U',
            status: 'approved',
            region: 'Emilia-Romagna',
            page: 2,
            pageSize: 50,
          },
        );
        assert.deepEqual(parseSearchQuery({}), {});
        assert.deepEqual(parseSearchQuery({ q: '', page: 3 }), { page: 3 });
        const fields = (querystring: Record<string, unknown>) => {
          try {
            parseSearchQuery(querystring);
          } catch (error) {
            assert.ok(error instanceof DomainError);
            assert.equal(error.kind, 'invalid');
            return error.errors.map((e) => e.path);
          }
          return [];
        };
        for (const page of ['0', '-1', '1.5', 'abc', '1e3', ' ']) assert.deepEqual(fields({ page }), page.trim() === '' ? [] : ['page'], page);
        assert.deepEqual(fields({ pageSize: '101' }), ['pageSize']);
        assert.deepEqual(fields({ status: 'open' }), ['status']);
        assert.deepEqual(fields({ region: 'Atlantide' }), ['region']);
        assert.deepEqual(fields({ taxCode: 'RSS-MRA' }), ['taxCode']);
        assert.deepEqual(fields({ taxCode: 'RSSMRA80A01H501UX' }), ['taxCode']);
        assert.deepEqual(fields({ q: 'x'.repeat(101) }), ['q']);
        assert.deepEqual(fields({ q: 'x'.repeat(100) }), []);
        assert.deepEqual(fields({ q: ['a', 'b'] }), ['q']);
        assert.deepEqual(fields({ page: '0', status: 'nope', region: 'Nowhere' }), ['status', 'region', 'page']);
      });
    });

    describe('dashboard', () => {
      const cell = <Row extends { region: string; month: string }>(rows: Row[], month: string, region: string) =>
        rows.find((row) => row.month === month && row.region === region);

      it('counts by region and month of submission, with amounts, approval rate and median', async () => {
        const result = await dashboard(client, { from: '2024-01', to: '2024-04' });
        assert.equal(result.from, '2024-01');
        assert.equal(result.to, '2024-04');
        assert.deepEqual(cell(result.rows, '2024-01', 'Lazio'), {
          region: 'Lazio',
          month: '2024-01',
          submitted: 2,
          processing: 0,
          approved: 1,
          rejected: 1,
          withdrawn: 0,
          requested: 350_000,
          disbursed: 200_000,
          approvalRate: 0.5,
          medianProcessingHours: 36,
        });
        assert.deepEqual(cell(result.rows, '2024-02', 'Campania'), {
          region: 'Campania',
          month: '2024-02',
          submitted: 2,
          processing: 1,
          approved: 0,
          rejected: 0,
          withdrawn: 1,
          requested: 225_000.5,
          disbursed: 0,
          approvalRate: null,
          medianProcessingHours: null,
        });
        // Submitted at 22:30 UTC on 31 March: April in Rome.
        assert.equal(cell(result.rows, '2024-04', 'Campania')?.approved, 1);
        assert.equal(cell(result.rows, '2024-03', 'Campania'), undefined);
        // Moved from Puglia to Sicilia: counted only where it is now.
        assert.equal(cell(result.rows, '2024-02', 'Sicilia')?.processing, 1);
        assert.equal(cell(result.rows, '2024-02', 'Puglia'), undefined);
        assert.equal(cell(result.rows, '2024-03', 'Veneto')?.approvalRate, 0);
        assert.equal(cell(result.rows, '2024-03', "Valle d'Aosta")?.medianProcessingHours, 30);
        // Ordered by month, then region.
        const order = result.rows.map((row) => `${row.month} ${row.region}`);
        assert.deepEqual(order, [...order].sort());
        assert.equal(result.rows.length, 10);
        // Totals over every row; the median over every decided application (6, 10, 12, 24, 30, 48, 72 hours).
        assert.deepEqual(result.totals, {
          submitted: 12,
          processing: 4,
          approved: 5,
          rejected: 2,
          withdrawn: 1,
          requested: 2_025_000.5,
          disbursed: 950_000,
          approvalRate: 0.7143,
          medianProcessingHours: 24,
        });
      });

      it('limits the rows and the totals to the months asked for', async () => {
        const february = await dashboard(client, { from: '2024-02', to: '2024-02' });
        assert.ok(february.rows.every((row) => row.month === '2024-02'));
        assert.deepEqual(
          february.rows.map((row) => row.region),
          ['Campania', 'Lombardia', 'Sicilia'],
        );
        assert.equal(february.totals.submitted, 4);
        assert.equal(february.totals.medianProcessingHours, 72);
        const none = await dashboard(client, { from: '2020-01', to: '2020-12' });
        assert.deepEqual(none.rows, []);
        assert.deepEqual(none.totals, {
          submitted: 0,
          processing: 0,
          approved: 0,
          rejected: 0,
          withdrawn: 0,
          requested: 0,
          disbursed: 0,
          approvalRate: null,
          medianProcessingHours: null,
        });
      });

      it('shows the last twelve months when not told which', async () => {
        const result = await dashboard(client);
        const now = monthOf(Date.now());
        assert.equal(result.to, now);
        const [year, month] = now.split('-').map(Number) as [number, number];
        const expectedFrom = month === 12 ? `${year}-01` : `${year - 1}-${String(month + 1).padStart(2, '0')}`;
        assert.equal(result.from, expectedFrom);
        assert.equal((await dashboard(client, { to: '2024-03' })).from, '2023-04');
      });

      it('moves an application from one count to another as its status changes', async () => {
        const id = randomUUID();
        const submittedAt = '2023-06-10T10:00:00.000Z';
        const stream = applicationStreamId(id);
        const umbria = async () => cell((await dashboard(client, { from: '2023-06', to: '2023-06' })).rows, '2023-06', 'Umbria');
        await store.appendToStream(
          stream,
          [submitted(id, { firstName: 'Ada', lastName: 'Verdi', region: 'Umbria', amountCents: 10_000_000, submittedAt })],
          'no_stream',
        );
        await catchUp();
        assert.deepEqual(await umbria(), {
          region: 'Umbria',
          month: '2023-06',
          submitted: 1,
          processing: 1,
          approved: 0,
          rejected: 0,
          withdrawn: 0,
          requested: 100_000,
          disbursed: 0,
          approvalRate: null,
          medianProcessingHours: null,
        });
        assert.equal((await searchApplicationsFor({ q: 'verdi' })).items[0]?.status, 'processing');
        await store.appendToStream(stream, [approved(later(submittedAt, hours(7.5)))], 1);
        await catchUp();
        assert.deepEqual(await umbria(), {
          region: 'Umbria',
          month: '2023-06',
          submitted: 1,
          processing: 0,
          approved: 1,
          rejected: 0,
          withdrawn: 0,
          requested: 100_000,
          disbursed: 100_000,
          approvalRate: 1,
          medianProcessingHours: 7.5,
        });
        assert.equal((await searchApplicationsFor({ q: 'verdi' })).items[0]?.status, 'approved');
        // Whatever comes after a decision, the last word counts.
        await store.appendToStream(stream, [withdrawn(later(submittedAt, hours(9)))], 2);
        await catchUp();
        assert.deepEqual(await umbria(), {
          region: 'Umbria',
          month: '2023-06',
          submitted: 1,
          processing: 0,
          approved: 0,
          rejected: 0,
          withdrawn: 1,
          requested: 100_000,
          disbursed: 0,
          approvalRate: null,
          medianProcessingHours: null,
        });
        assert.equal((await searchApplicationsFor({ q: 'verdi' })).items[0]?.status, 'withdrawn');
      });

      it('takes the month in Italian time', () => {
        assert.equal(monthOf('2024-03-31T21:59:59.999Z'), '2024-03');
        assert.equal(monthOf('2024-03-31T22:00:00.000Z'), '2024-04'); // CEST, UTC+2
        assert.equal(monthOf('2024-10-31T22:30:00.000Z'), '2024-10'); // CET, UTC+1
        assert.equal(monthOf('2024-10-31T23:00:00.000Z'), '2024-11');
        assert.equal(monthOf('2023-12-31T23:00:00.000Z'), '2024-01');
        assert.equal(monthOf('2024-02-15T23:30:00.000Z'), '2024-02');
      });

      it('checks the query string, naming each wrong field', () => {
        assert.deepEqual(parseDashboardQuery({ from: '2024-01', to: '2024-12' }), { from: '2024-01', to: '2024-12' });
        assert.deepEqual(parseDashboardQuery({}), {});
        assert.deepEqual(parseDashboardQuery({ to: '2024-02' }), { to: '2024-02' });
        const fields = (querystring: Record<string, unknown>) => {
          try {
            parseDashboardQuery(querystring);
          } catch (error) {
            assert.ok(error instanceof DomainError);
            return error.errors.map((e) => e.path);
          }
          return [];
        };
        for (const bad of ['2024-13', '2024-00', '24-01', '2024-1', '2024/01', '0000-01', "2024-01' OR 1=1"])
          assert.deepEqual(fields({ from: bad }), ['from'], bad);
        assert.deepEqual(fields({ to: 'soon' }), ['to']);
        assert.deepEqual(fields({ from: '2024-05', to: '2024-04' }), ['from']);
        assert.deepEqual(fields({ from: '2024-04', to: '2024-04' }), []);
      });
    });

    describe('batches', () => {
      /** Empty copies of the projection's tables, as the rebuild makes its shadows. */
      async function copies(projection: Projection, suffix: string): Promise<TableNames> {
        const tables = suffixed(projection, suffix);
        for (const table of projection.tables) {
          await client.exec(`DROP TABLE IF EXISTS ${tables[table]}; CREATE TABLE ${tables[table]} (LIKE ${table} INCLUDING ALL)`);
        }
        return tables;
      }
      async function drop(tables: TableNames): Promise<void> {
        for (const table of Object.values(tables)) await client.exec(`DROP TABLE IF EXISTS ${table}`);
      }

      it('fills shadow tables in a rebuild, touching the live ones not at all', async () => {
        const log = await readLog(store);
        for (const projection of projections) {
          const live = await snapshot(client, projection, identity(projection));
          for (const [table, rows] of Object.entries(live)) assert.ok(rows.length > 0, `${projection.name}: ${table} has rows to compare`);
          const shadows = await copies(projection, '__shadow');
          await applyInBatches(client, projection, log, shadows, [5_000]);
          assert.deepEqual(await snapshot(client, projection, shadows), live, projection.name);
          assert.deepEqual(await snapshot(client, projection, identity(projection)), live, projection.name);
          await drop(shadows);
        }
      });

      it('ends with the same tables whether the events come one by one, seven at a time or all at once', async () => {
        const log = await readLog(store);
        for (const projection of projections) {
          const expected = await snapshot(client, projection, identity(projection));
          for (const size of [1, 7, log.length]) {
            const tables = await copies(projection, '__split');
            await applyInBatches(client, projection, log, tables, [size]);
            assert.deepEqual(await snapshot(client, projection, tables), expected, `${projection.name}, batches of ${size}`);
            await drop(tables);
          }
        }
      });

      it('counts nothing twice when a batch is handed over again', async () => {
        const log = await readLog(store);
        for (const projection of projections) {
          const expected = await snapshot(client, projection, identity(projection));
          const tables = await copies(projection, '__again');
          await applyInBatches(client, projection, log, tables, [3]);
          await applyInBatches(client, projection, log, tables, [5]);
          assert.deepEqual(await snapshot(client, projection, tables), expected, projection.name);
          await drop(tables);
        }
      });

      it('an erasure takes away what the search finds the applicant by, however the log is split, and leaves the sealed copies as they are', async () => {
        const log = await readLog(store);
        const target = log.find((stored) => stored.type === 'MortgageApplicationSubmitted')!;
        const applicationId = target.streamId.slice('application-'.length);
        const subjectId = randomUUID();
        const last = log.at(-1)!;
        const erasure: StoredEvent = {
          ...last,
          eventId: randomUUID(),
          streamId: `subject-${subjectId}`,
          streamVersion: 1,
          position: last.position + 1,
          type: 'PersonalDataErased',
          schemaVersion: 1,
          data: { subjectId, streams: [target.streamId, `application-${randomUUID()}`, 'elsewhere-1'], erasedAt: new Date().toISOString() },
        };
        const erasedLog = [...log, erasure];
        type SearchRow = { name_prefixes: string[]; name_trigrams: string[]; tax_code_digest: string | null; applicant: unknown };
        for (const projection of projections.filter((candidate) => candidate.name !== 'dashboard')) {
          const expected = await snapshot(client, projection, identity(projection));
          for (const [sizes, parts] of [
            [[erasedLog.length], 1],
            [[erasedLog.length], 4],
            [[7], 3],
            [[1], 2],
            [[log.length, 1], 4],
          ] as const) {
            const tables = await copies(projection, '__erased');
            await applyInBatches(client, projection, erasedLog, tables, sizes, parts);
            const after = await snapshot(client, projection, tables);
            for (const table of projection.tables) {
              const rows = after[table] as { application_id: string }[];
              const others = (expected[table] as { application_id: string }[]).filter((row) => row.application_id !== applicationId);
              assert.deepEqual(
                rows.filter((row) => row.application_id !== applicationId),
                others,
                `${projection.name}: nobody else changes`,
              );
              const row = rows.find((candidate) => candidate.application_id === applicationId)!;
              const before = (expected[table] as { application_id: string }[]).find((candidate) => candidate.application_id === applicationId)!;
              if (table === 'rm_application_search') {
                const { name_prefixes, name_trigrams, tax_code_digest, applicant } = row as unknown as SearchRow;
                assert.deepEqual([name_prefixes, name_trigrams, tax_code_digest], [[], [], null], 'nothing left to find the applicant by');
                assert.deepEqual(applicant, (before as unknown as SearchRow).applicant, 'the sealed applicant, unreadable once their key is gone');
              } else {
                assert.deepEqual(row, before, `${table}: the sealed copy needs no scrub`);
              }
            }
            await drop(tables);
          }
        }
      });

      it('holds no name, email nor tax code in the clear, in any table of any read model', async () => {
        const submissions = (await readLog(store)).filter((stored) => stored.type === 'MortgageApplicationSubmitted');
        const personal = submissions.flatMap((stored) => {
          const { applicant } = stored.data as { applicant: { firstName: string; lastName: string; taxCode: string; email: string } };
          // Long enough not to turn up by chance in the base64 of a sealed value or in a uuid.
          return [applicant.firstName, applicant.lastName, applicant.taxCode, applicant.email].filter((value) => value.length >= 5);
        });
        assert.ok(
          personal.includes('Rossini') && personal.some((value) => /^ROSMAR/.test(value)),
          'the fixtures are revealed, so there is something to look for',
        );
        for (const projection of projections) {
          for (const [table, rows] of Object.entries(await snapshot(client, projection, identity(projection)))) {
            const text = JSON.stringify(rows);
            for (const value of personal) assert.ok(!text.includes(value), `${table} holds ${value}`);
          }
        }
      });

      it('property: any split of the log into batches, and of batches into parts by stream, gives the same tables', async () => {
        const log = await readLog(store);
        const expected = new Map<string, Record<string, unknown[]>>();
        const tables = new Map<string, TableNames>();
        for (const projection of projections) {
          expected.set(projection.name, await snapshot(client, projection, identity(projection)));
          tables.set(projection.name, await copies(projection, '__property'));
        }
        try {
          await fc.assert(
            fc.asyncProperty(
              fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 10 }),
              fc.integer({ min: 1, max: 4 }),
              async (sizes, parts) => {
                for (const projection of projections) {
                  const mine = tables.get(projection.name)!;
                  await client.exec(`TRUNCATE ${Object.values(mine).join(', ')}`);
                  await applyInBatches(client, projection, log, mine, sizes, parts);
                  assert.deepEqual(await snapshot(client, projection, mine), expected.get(projection.name));
                }
              },
            ),
            { numRuns: options.splitRuns ?? 20 },
          );
        } finally {
          for (const mine of tables.values()) await drop(mine);
        }
      });
    });
  });
}
