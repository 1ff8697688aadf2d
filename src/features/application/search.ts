import { createHmac } from 'node:crypto';
import { invalidInput, type FieldError } from '../../domain/errors.ts';
import { centsToEuros } from '../../domain/money.ts';
import { canonicalRegion } from '../../domain/regions.ts';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import type { StoredEvent } from '../../platform/eventstore/types.ts';
import { erasedText } from '../../privacy/erased.ts';
import { purposeKey } from '../../privacy/digests.ts';
import type { Sealed } from '../../privacy/sealing.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import { byApplication, decodeApplicationEvents, erasedApplications, sealedApplicant } from './application-events.ts';
import { PersonalDataErased } from '../data-subjects/index.ts';
import { ApplicationApproved, ApplicationRejected, ApplicationWithdrawn, MortgageApplicationSubmitted, PropertyDetailsUpdated } from './events.ts';
import type { Projection } from '../../platform/projections/projector.ts';

/** What an application can be, as the back office filters it. */
export const applicationStatuses = ['processing', 'approved', 'rejected', 'withdrawn'] as const;
export type ApplicationStatus = (typeof applicationStatuses)[number];

/** The events that change what the search and the dashboard hold; the others are skipped by the projector. */
export const statusEvents = [MortgageApplicationSubmitted, PropertyDetailsUpdated, ApplicationApproved, ApplicationRejected, ApplicationWithdrawn] as const;

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

/**
 * The keyed digests the search finds an application by, so that the read model holds no
 * name nor tax code in the clear: each prefix of the surname's key (prefix search), each of
 * its trigrams as pg_trgm makes them (similarity), and the tax code (exact match), each an
 * HMAC under a key derived from the platform's digest secret, cut to 64 bits. Without the
 * secret they cannot be matched against a guess; an erasure clears them from the row.
 */
export type SearchKeys = {
  readonly nameDigests: (lastName: string) => { readonly prefixes: string[]; readonly trigrams: string[] };
  readonly taxCodeDigest: (taxCode: string) => string;
};

/** Longer prefixes than this are not indexed: a query that long matches by its first ones. */
const maxIndexedPrefix = 32;

/** The trigrams of a key as pg_trgm makes them for one word: two spaces before it, one after, each three characters (not bytes) once. */
export function trigramsOf(key: string): string[] {
  const characters = Array.from(`  ${key} `);
  const trigrams = new Set<string>();
  for (let i = 0; i + 3 <= characters.length; i++) trigrams.add(characters.slice(i, i + 3).join(''));
  return [...trigrams];
}

export function searchKeys(digestSecret: string): SearchKeys {
  const digest = (purpose: string) => {
    const key = purposeKey(digestSecret, purpose);
    // 64 bits as a signed bigint's text: what a bigint[] column and its GIN index hold.
    return (text: string) => createHmac('sha256', key).update(text, 'utf8').digest().readBigInt64BE(0).toString();
  };
  const prefixDigest = digest('search/surname-prefix');
  const trigramDigest = digest('search/surname-trigram');
  const taxCodeKeyed = purposeKey(digestSecret, 'search/tax-code');
  return {
    nameDigests(lastName) {
      const key = lastNameKey(lastName);
      const characters = Array.from(key);
      const prefixes = characters.slice(0, maxIndexedPrefix).map((_, i) => prefixDigest(characters.slice(0, i + 1).join('')));
      return { prefixes, trigrams: key === '' ? [] : trigramsOf(key).map(trigramDigest) };
    },
    taxCodeDigest: (taxCode) => createHmac('sha256', taxCodeKeyed).update(taxCodeKey(taxCode), 'utf8').digest('hex'),
  };
}

type SearchRow = {
  application_id: string;
  applicant: Sealed;
  name_prefixes: string[];
  name_trigrams: string[];
  tax_code_digest: string | null;
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
 * by: the applicant as the submission carried them, sealed (opened for the page a query
 * answers), and keyed digests of their surname and tax code (SearchKeys). A batch loads
 * the rows of its applications in one query, evolves them in memory and writes them back
 * with one upsert. Each row keeps the stream version it holds, so an event already in it
 * is skipped (replaying a batch changes nothing).
 */
export function searchProjection(keys: SearchKeys): Projection {
  return {
    name: 'application-search',
    tables: ['rm_application_search'],
    events: [...statusEvents, PersonalDataErased],
    rowsPerStream: true,
    crossStreamEvents: [PersonalDataErased],
    async apply(tx, events, tables) {
      const table = tables.rm_application_search;
      if (!table) throw new Error('application-search: no physical name for rm_application_search');
      await applyApplicationEvents(tx, table, keys, events);
      // After the batch's own events: an erasure in it takes away what the row is found by.
      // The row stays, found by status and region; its sealed applicant reads as erased.
      const erased = erasedApplications(events);
      if (erased.length > 0) {
        await tx.query(`UPDATE ${table} SET name_prefixes = '{}', name_trigrams = '{}', tax_code_digest = NULL WHERE application_id = ANY($1::uuid[])`, [
          erased,
        ]);
      }
    },
  };
}

async function applyApplicationEvents(tx: SqlQueryable, table: string, keys: SearchKeys, events: readonly StoredEvent[]): Promise<void> {
  const groups = byApplication(decodeApplicationEvents(events));
  if (groups.size === 0) return;
  const loaded = await tx.query<LoadedSearchRow>(
    `SELECT application_id::text AS application_id, applicant, name_prefixes::text[] AS name_prefixes, name_trigrams::text[] AS name_trigrams,
            tax_code_digest, status, region, amount_cents::text AS amount_cents, submitted_at, updated_at, version
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
        const digests = keys.nameDigests(applicant.lastName);
        row = {
          application_id: applicationId,
          applicant: sealedApplicant(stored),
          name_prefixes: digests.prefixes,
          name_trigrams: digests.trigrams,
          tax_code_digest: keys.taxCodeDigest(applicant.taxCode),
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
    `INSERT INTO ${table} (application_id, applicant, name_prefixes, name_trigrams, tax_code_digest, status, region, amount_cents, submitted_at, updated_at, version)
     SELECT application_id, applicant, ARRAY(SELECT jsonb_array_elements_text(name_prefixes)::bigint), ARRAY(SELECT jsonb_array_elements_text(name_trigrams)::bigint),
            tax_code_digest, status, region, amount_cents, submitted_at, updated_at, version
       FROM jsonb_to_recordset($1::jsonb)
         AS r(application_id uuid, applicant jsonb, name_prefixes jsonb, name_trigrams jsonb, tax_code_digest text, status text, region text,
              amount_cents bigint, submitted_at timestamptz, updated_at timestamptz, version integer)
     ON CONFLICT (application_id) DO UPDATE
       SET applicant = EXCLUDED.applicant, name_prefixes = EXCLUDED.name_prefixes, name_trigrams = EXCLUDED.name_trigrams,
           tax_code_digest = EXCLUDED.tax_code_digest, status = EXCLUDED.status, region = EXCLUDED.region, amount_cents = EXCLUDED.amount_cents,
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
/** pg_trgm's own default threshold for `%`: the similarity a fuzzy match must reach. */
const similarityThreshold = 0.3;

type FoundRow = {
  application_id: string;
  applicant: Sealed;
  status: string;
  region: string;
  amount_cents: string;
  submitted_at: Date | string;
  total: string;
};

type SearchedApplicant = { readonly firstName: string; readonly lastName: string; readonly taxCode: string };

/** What a search needs: the keys its digests are made with, and the vault that opens the applicants of the page it answers. */
export type ApplicationSearch = { readonly keys: SearchKeys; readonly personalData: Pick<PersonalDataVault, 'open'> };

/**
 * The back office's search. `q` matches surnames that start with it, ignoring case,
 * accents and punctuation, or that are similar to it (trigram similarity ≥ 0.3, as
 * pg_trgm counts it, on the rows' digested trigrams): prefix matches first, then the most
 * similar, then the newest. A `q` with no letters or digits matches nothing. `taxCode`,
 * `status` and `region` match exactly. Every value the user typed reaches the database as
 * a bind parameter (a digest, for the name and the tax code); only fixed fragments of SQL
 * are put together here.
 */
export async function searchApplications(db: SqlQueryable, { keys, personalData }: ApplicationSearch, query: SearchQuery): Promise<SearchResult> {
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
  if ([query.status, query.region].some((value) => value?.includes('\u0000'))) return { items: [], total: 0, page, pageSize };
  let similarity = '';

  if (query.q !== undefined) {
    const { prefixes, trigrams } = keys.nameDigests(query.q);
    if (prefixes.length === 0) return { items: [], total: 0, page, pageSize };
    const prefix = `name_prefixes @> ARRAY[${bind(prefixes.at(-1))}]::bigint[]`;
    const wanted = bind(trigrams);
    // The trigrams the row shares with the query, over those either has: pg_trgm's similarity.
    similarity = `, LATERAL (SELECT count(*)::float8 / (cardinality(s.name_trigrams) + ${trigrams.length} - count(*)) AS similarity
                                FROM unnest(s.name_trigrams) AS t WHERE t = ANY(${wanted}::bigint[])) AS m`;
    where.push(`(${prefix} OR (name_trigrams && ${wanted}::bigint[] AND m.similarity >= ${similarityThreshold}))`);
    order.push(`(${prefix}) DESC`, 'm.similarity DESC');
  }
  if (query.taxCode !== undefined) where.push(`tax_code_digest = ${bind(keys.taxCodeDigest(query.taxCode))}`);
  if (query.status !== undefined) where.push(`status = ${bind(query.status)}`);
  if (query.region !== undefined) where.push(`region = ${bind(query.region)}`);
  // The id last: the same order on every call, so pages neither repeat nor skip rows.
  order.push('submitted_at DESC', 'application_id');

  const from = `rm_application_search s${similarity}`;
  const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  const rows = await db.query<FoundRow>(
    `SELECT application_id::text AS application_id, applicant, status, region,
            amount_cents::text AS amount_cents, submitted_at, count(*) OVER () AS total
       FROM ${from} ${filter}
      ORDER BY ${order.join(', ')}
      LIMIT ${bind(pageSize)} OFFSET ${bind((page - 1) * pageSize)}`,
    params,
  );
  let total = rows[0] ? Number(rows[0].total) : 0;
  if (rows.length === 0 && page > 1) {
    // Past the last page the window has no row to carry the count on.
    const [counted] = await db.query<{ total: string }>(`SELECT count(*) AS total FROM ${from} ${filter}`, params.slice(0, params.length - 2));
    total = Number(counted?.total ?? 0);
  }
  const applicants = (await personalData.open(rows.map((row) => row.applicant))) as (SearchedApplicant | undefined)[];
  return {
    items: rows.map((row, i) => {
      const applicant = applicants[i];
      return {
        applicationId: row.application_id,
        firstName: applicant?.firstName ?? erasedText,
        lastName: applicant?.lastName ?? erasedText,
        taxCode: applicant ? taxCodeKey(applicant.taxCode) : erasedText,
        status: row.status,
        region: row.region,
        amount: centsToEuros(Number(row.amount_cents)),
        submittedAt: iso(row.submitted_at),
      };
    }),
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
