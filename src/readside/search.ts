import { invalidInput, type FieldError } from '../domain/errors.ts';
import { centsToEuros } from '../domain/money.ts';
import { canonicalRegion } from '../domain/regions.ts';
import type { SqlQueryable } from '../eventstore/sql-client.ts';
import type { StoredEvent } from '../eventstore/types.ts';
import { erasedText } from '../services/application/events.ts';
import { byApplication, decodeApplicationEvents, erasedApplications, erasureEventType } from './application-events.ts';
import type { Projection } from './projector.ts';

/** What an application can be, as the back office filters it. */
export const applicationStatuses = ['processing', 'approved', 'rejected', 'withdrawn'] as const;
export type ApplicationStatus = (typeof applicationStatuses)[number];

/** The events that change what the search and the dashboard hold; the others are skipped by the projector. */
export const statusEventTypes: readonly string[] = [
  'MortgageApplicationSubmitted',
  'PropertyDetailsUpdated',
  'ApplicationApproved',
  'ApplicationRejected',
  'ApplicationWithdrawn',
];

/**
 * The key a surname is searched by: lower case, accents stripped (NFD, then the
 * combining marks dropped), and everything but letters and digits removed. Dropping
 * apostrophes, spaces and dashes lets "D'Amico", "D Amico", "Dàmico" and "damico" all
 * find one another, and "De Luca" be found by "delu" as well as "de lu". The search
 * normalises its query the same way, in code, so the database only compares keys.
 */
export function lastNameKey(name: string): string {
  return name
    .toLowerCase()
    .normalize('NFD')
    .replace(/\p{M}+/gu, '')
    .replace(/[^\p{L}\p{N}]+/gu, '');
}

/** Tax codes are stored and searched upper case without spaces: the same code however it was typed. */
export function taxCodeKey(taxCode: string): string {
  return taxCode.replace(/\s+/g, '').toUpperCase();
}

type SearchRow = {
  application_id: string;
  last_name: string;
  first_name: string;
  last_name_key: string;
  tax_code: string;
  status: ApplicationStatus;
  region: string;
  amount_cents: number;
  submitted_at: string;
  updated_at: string;
  version: number;
};

type LoadedSearchRow = Omit<SearchRow, 'amount_cents' | 'submitted_at' | 'updated_at'> & {
  amount_cents: string;
  submitted_at: Date | string;
  updated_at: Date | string;
};

const iso = (value: Date | string) => new Date(value).toISOString();

/**
 * The operator search: one row per application with what the back office looks it up
 * by. A batch loads the rows of its applications in one query, evolves them in memory
 * and writes them back with one upsert. Each row keeps the stream version it holds, so
 * an event already in it is skipped (replaying a batch changes nothing).
 */
export const searchProjection: Projection = {
  name: 'application-search',
  tables: ['rm_application_search'],
  eventTypes: [...statusEventTypes, erasureEventType],
  rowsPerStream: true,
  crossStreamTypes: [erasureEventType],
  async apply(tx, events, tables) {
    const table = tables.rm_application_search;
    if (!table) throw new Error('application-search: no physical name for rm_application_search');
    await applyApplicationEvents(tx, table, events);
    // After the batch's own events: an erasure in it scrubs what they wrote. The row stays,
    // found by status and region, with no name nor tax code to find it by.
    const erased = erasedApplications(events);
    if (erased.length > 0) {
      await tx.query(`UPDATE ${table} SET first_name = $2, last_name = $2, last_name_key = '', tax_code = '' WHERE application_id = ANY($1::uuid[])`, [
        erased,
        erasedText,
      ]);
    }
  },
};

async function applyApplicationEvents(tx: SqlQueryable, table: string, events: readonly StoredEvent[]): Promise<void> {
  const groups = byApplication(decodeApplicationEvents(events));
  if (groups.size === 0) return;
  const loaded = await tx.query<LoadedSearchRow>(
    `SELECT application_id::text AS application_id, last_name, first_name, last_name_key, tax_code, status, region,
            amount_cents::text AS amount_cents, submitted_at, updated_at, version
       FROM ${table} WHERE application_id = ANY($1::uuid[])`,
    [[...groups.keys()]],
  );
  const known = new Map<string, SearchRow>(
    loaded.map((row) => [
      row.application_id,
      { ...row, amount_cents: Number(row.amount_cents), submitted_at: iso(row.submitted_at), updated_at: iso(row.updated_at) },
    ]),
  );
  const written: SearchRow[] = [];
  for (const [applicationId, facts] of groups) {
    let row = known.get(applicationId);
    let changed = false;
    for (const { event, stored } of facts) {
      if (row && stored.streamVersion <= row.version) continue;
      if (event.type === 'MortgageApplicationSubmitted') {
        const { applicant, property, loan, submittedAt } = event.data;
        row = {
          application_id: applicationId,
          last_name: applicant.lastName,
          first_name: applicant.firstName,
          last_name_key: lastNameKey(applicant.lastName),
          tax_code: taxCodeKey(applicant.taxCode),
          status: 'processing',
          region: property.region,
          amount_cents: loan.amountCents,
          submitted_at: submittedAt,
          updated_at: submittedAt,
          version: stored.streamVersion,
        };
      } else if (!row) {
        // Nothing to change before the application was submitted.
        continue;
      } else if (event.type === 'PropertyDetailsUpdated') {
        row = { ...row, region: event.data.property.region, updated_at: event.data.updatedAt, version: stored.streamVersion };
      } else if (event.type === 'ApplicationApproved') {
        row = { ...row, status: 'approved', updated_at: event.data.approvedAt, version: stored.streamVersion };
      } else if (event.type === 'ApplicationRejected') {
        row = { ...row, status: 'rejected', updated_at: event.data.rejectedAt, version: stored.streamVersion };
      } else if (event.type === 'ApplicationWithdrawn') {
        row = { ...row, status: 'withdrawn', updated_at: event.data.withdrawnAt, version: stored.streamVersion };
      } else {
        continue;
      }
      changed = true;
    }
    if (row && changed) written.push(row);
  }
  if (written.length === 0) return;
  await tx.query(
    `INSERT INTO ${table} (application_id, last_name, first_name, last_name_key, tax_code, status, region, amount_cents, submitted_at, updated_at, version)
     SELECT application_id, last_name, first_name, last_name_key, tax_code, status, region, amount_cents, submitted_at, updated_at, version
       FROM jsonb_to_recordset($1::jsonb)
         AS r(application_id uuid, last_name text, first_name text, last_name_key text, tax_code text, status text, region text,
              amount_cents bigint, submitted_at timestamptz, updated_at timestamptz, version integer)
     ON CONFLICT (application_id) DO UPDATE
       SET last_name = EXCLUDED.last_name, first_name = EXCLUDED.first_name, last_name_key = EXCLUDED.last_name_key,
           tax_code = EXCLUDED.tax_code, status = EXCLUDED.status, region = EXCLUDED.region, amount_cents = EXCLUDED.amount_cents,
           submitted_at = EXCLUDED.submitted_at, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version`,
    [JSON.stringify(written)],
  );
}

// ---- the query ----

export type SearchQuery = {
  readonly q?: string;
  readonly taxCode?: string;
  readonly status?: string;
  readonly region?: string;
  readonly page?: number;
  readonly pageSize?: number;
};

export type SearchItem = {
  readonly applicationId: string;
  readonly firstName: string;
  readonly lastName: string;
  readonly taxCode: string;
  readonly status: string;
  readonly region: string;
  /** The loan amount asked for, in euros. */
  readonly amount: number;
  readonly submittedAt: string;
};

export type SearchResult = {
  readonly items: SearchItem[];
  /** Every match, over all pages. */
  readonly total: number;
  readonly page: number;
  readonly pageSize: number;
};

export const defaultPageSize = 20;
export const maxPageSize = 100;
/** pg_trgm's own default threshold for `%`, spelled out so the filter does not hang on a setting. */
const similarityThreshold = 0.3;

/** Whether pg_trgm is installed where the search calls it (public), asked once per connection. */
const trigramsByDb = new WeakMap<SqlQueryable, Promise<boolean>>();

function hasTrigrams(db: SqlQueryable): Promise<boolean> {
  let known = trigramsByDb.get(db);
  if (!known) {
    known = db
      .query(
        `SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
          WHERE e.extname = 'pg_trgm' AND n.nspname = 'public'`,
      )
      .then((rows) => rows.length > 0);
    // A failed look-up is asked again next time rather than remembered.
    known.catch(() => trigramsByDb.delete(db));
    trigramsByDb.set(db, known);
  }
  return known;
}

/** The key's characters taken literally by LIKE (the key has none today; the escape keeps it so if that changes). */
const escapeLike = (text: string) => text.replace(/[\\%_]/g, (character) => `\\${character}`);

type FoundRow = {
  application_id: string;
  first_name: string;
  last_name: string;
  tax_code: string;
  status: string;
  region: string;
  amount_cents: string;
  submitted_at: Date | string;
  total: string;
};

/**
 * The back office's search. `q` matches surnames that start with it, ignoring case,
 * accents and punctuation, or (where pg_trgm is installed) that are similar to it
 * (trigram similarity ≥ 0.3): prefix matches first, then the most similar, then the
 * newest. A `q` with no letters or digits matches nothing. `taxCode`, `status` and
 * `region` match exactly. Every value the user typed reaches the database as a bind
 * parameter; only fixed fragments of SQL are put together here.
 */
export async function searchApplications(db: SqlQueryable, query: SearchQuery): Promise<SearchResult> {
  const page = Math.max(1, Math.trunc(query.page ?? 1));
  const pageSize = Math.min(maxPageSize, Math.max(1, Math.trunc(query.pageSize ?? defaultPageSize)));
  const params: unknown[] = [];
  const bind = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const where: string[] = [];
  const order: string[] = [];
  // No stored value holds a NUL, and PostgreSQL refuses one in text: such a filter matches nothing.
  if ([query.taxCode, query.status, query.region].some((value) => value?.includes('\u0000'))) return { items: [], total: 0, page, pageSize };

  if (query.q !== undefined) {
    const key = lastNameKey(query.q);
    if (key === '') return { items: [], total: 0, page, pageSize };
    const prefix = `last_name_key LIKE ${bind(`${escapeLike(key)}%`)} ESCAPE '\\'`;
    if (await hasTrigrams(db)) {
      const keyParam = bind(key);
      // `%` lets the trigram index find the candidates; similarity() holds them to the threshold whatever the setting.
      where.push(
        `(${prefix} OR (last_name_key OPERATOR(public.%) ${keyParam} AND public.similarity(last_name_key, ${keyParam}) >= ${similarityThreshold}))`,
      );
      order.push(`(${prefix}) DESC`, `public.similarity(last_name_key, ${keyParam}) DESC`);
    } else {
      where.push(prefix);
    }
  }
  if (query.taxCode !== undefined) where.push(`tax_code = ${bind(taxCodeKey(query.taxCode))}`);
  if (query.status !== undefined) where.push(`status = ${bind(query.status)}`);
  if (query.region !== undefined) where.push(`region = ${bind(query.region)}`);
  // The id last: the same order on every call, so pages neither repeat nor skip rows.
  order.push('submitted_at DESC', 'application_id');

  const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  const rows = await db.query<FoundRow>(
    `SELECT application_id::text AS application_id, first_name, last_name, tax_code, status, region,
            amount_cents::text AS amount_cents, submitted_at, count(*) OVER () AS total
       FROM rm_application_search ${filter}
      ORDER BY ${order.join(', ')}
      LIMIT ${bind(pageSize)} OFFSET ${bind((page - 1) * pageSize)}`,
    params,
  );
  let total = rows[0] ? Number(rows[0].total) : 0;
  if (rows.length === 0 && page > 1) {
    // Past the last page the window has no row to carry the count on.
    const [counted] = await db.query<{ total: string }>(
      `SELECT count(*) AS total FROM rm_application_search ${filter}`,
      params.slice(0, params.length - 2),
    );
    total = Number(counted?.total ?? 0);
  }
  return {
    items: rows.map((row) => ({
      applicationId: row.application_id,
      firstName: row.first_name,
      lastName: row.last_name,
      taxCode: row.tax_code,
      status: row.status,
      region: row.region,
      amount: centsToEuros(Number(row.amount_cents)),
      submittedAt: iso(row.submitted_at),
    })),
    total,
    page,
    pageSize,
  };
}

// ---- the query string ----

const maxQueryLength = 100;

/** A value given once, as text (a number is taken as its text); undefined when absent or blank. */
function single(querystring: Record<string, unknown>, field: string, errors: FieldError[]): string | undefined {
  const value = querystring[field];
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) {
    errors.push({ path: field, message: 'must be given once' });
    return undefined;
  }
  if (typeof value !== 'string' && typeof value !== 'number') {
    errors.push({ path: field, message: 'must be text' });
    return undefined;
  }
  const text = String(value).trim();
  return text === '' ? undefined : text;
}

function positiveInteger(text: string | undefined, field: string, max: number, errors: FieldError[]): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1) errors.push({ path: field, message: 'must be a positive integer' });
  else if (n > max) errors.push({ path: field, message: `must be at most ${max}` });
  else return n;
  return undefined;
}

/** The search's query string, checked: the query, or a 400 naming each field that is wrong. */
export function parseSearchQuery(querystring: Record<string, unknown>): SearchQuery {
  const errors: FieldError[] = [];
  const q = single(querystring, 'q', errors);
  if (q !== undefined && q.length > maxQueryLength) errors.push({ path: 'q', message: `must be at most ${maxQueryLength} characters` });
  const taxCodeText = single(querystring, 'taxCode', errors);
  const taxCode = taxCodeText === undefined ? undefined : taxCodeKey(taxCodeText);
  if (taxCode !== undefined && !/^[A-Z0-9]{1,16}$/.test(taxCode)) errors.push({ path: 'taxCode', message: 'must be up to 16 letters and digits' });
  const status = single(querystring, 'status', errors);
  if (status !== undefined && !(applicationStatuses as readonly string[]).includes(status)) {
    errors.push({ path: 'status', message: `must be one of ${applicationStatuses.join(', ')}` });
  }
  const regionText = single(querystring, 'region', errors);
  const region = regionText === undefined ? undefined : canonicalRegion(regionText);
  if (regionText !== undefined && region === undefined) errors.push({ path: 'region', message: 'must be an Italian region' });
  const page = positiveInteger(single(querystring, 'page', errors), 'page', 1_000_000, errors);
  const pageSize = positiveInteger(single(querystring, 'pageSize', errors), 'pageSize', maxPageSize, errors);
  if (errors.length > 0) throw invalidInput(errors);
  return {
    ...(q !== undefined ? { q } : {}),
    ...(taxCode !== undefined ? { taxCode } : {}),
    ...(status !== undefined ? { status } : {}),
    ...(region !== undefined ? { region } : {}),
    ...(page !== undefined ? { page } : {}),
    ...(pageSize !== undefined ? { pageSize } : {}),
  };
}
