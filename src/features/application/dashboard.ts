import { invalidInput, type FieldError } from '../../domain/errors.ts';
import { centsToEuros } from '../../domain/money.ts';
import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { byApplication, decodeApplicationEvents } from './application-events.ts';
import type { Projection } from '../../platform/projections/projector.ts';
import { statusEvents, type ApplicationStatus } from './search.ts';

/**
 * Months are counted in Italian time: an application submitted at 00:30 on 1 April in
 * Rome (22:30 UTC on 31 March) belongs to April, as the people reading the dashboard
 * see it.
 */
export const dashboardTimeZone = 'Europe/Rome';

const monthFormat = new Intl.DateTimeFormat('en-US', { timeZone: dashboardTimeZone, year: 'numeric', month: '2-digit' });

/** 'YYYY-MM' of an instant, in the dashboard's time zone. */
export function monthOf(instant: Date | string | number): string {
  const date = new Date(instant);
  // Rome is one or two hours ahead of UTC, so before 22:00 UTC it is in UTC's month; the
  // shortcut spares the (slow) time zone formatting for nearly every event of a rebuild.
  if (date.getUTCHours() < 22) {
    return `${String(date.getUTCFullYear()).padStart(4, '0')}-${String(date.getUTCMonth() + 1).padStart(2, '0')}`;
  }
  let year = '';
  let month = '';
  for (const part of monthFormat.formatToParts(date)) {
    if (part.type === 'year') year = part.value;
    else if (part.type === 'month') month = part.value;
  }
  return `${year.padStart(4, '0')}-${month}`;
}

/** Where an application is counted and what it adds there. */
type Counted = {
  region: string;
  /** 'YYYY-MM' */
  month: string;
  status: ApplicationStatus;
  requestedCents: number;
  submittedMs: number;
  /** Decision time − submission time, for approved and rejected applications only. */
  processingMs: number | null;
  version: number;
};

type LoadedRow = {
  application_id: string;
  region: string;
  month: string;
  status: ApplicationStatus;
  requested_cents: string;
  submitted_at: Date | string;
  processing_ms: string | null;
  version: number;
};

type Delta = {
  region: string;
  month: string;
  submitted: number;
  processing: number;
  approved: number;
  rejected: number;
  withdrawn: number;
  requested_cents: number;
  disbursed_cents: number;
};

const decided = (counted: Counted, status: 'approved' | 'rejected', at: string, version: number): Counted => ({
  ...counted,
  status,
  // A decision stamped before the submission (clocks apart) took no time, not negative time.
  processingMs: Math.max(0, Date.parse(at) - counted.submittedMs),
  version,
});

/**
 * The executive dashboard, aggregated by region and month of submission. Each
 * application's row in rm_dashboard_applications says where it is counted; a batch
 * loads the rows of its applications once, evolves them in memory, and turns each
 * change into deltas (its old contribution taken away, its new one added), which one
 * upsert adds to the aggregates. Rows keep the stream version they hold, so an event
 * already counted is never counted twice.
 */
export const dashboardProjection: Projection = {
  name: 'dashboard',
  tables: ['rm_dashboard_applications', 'rm_dashboard'],
  events: statusEvents,
  async apply(tx, events, tables) {
    const applications = tables.rm_dashboard_applications;
    const aggregates = tables.rm_dashboard;
    if (!applications || !aggregates) throw new Error('dashboard: no physical name for its tables');
    const groups = byApplication(decodeApplicationEvents(events));
    if (groups.size === 0) return;
    const loaded = await tx.query<LoadedRow>(
      `SELECT application_id::text AS application_id, region, to_char(month, 'YYYY-MM') AS month, status,
              requested_cents::text AS requested_cents, submitted_at, processing_ms::text AS processing_ms, version
         FROM ${applications} WHERE application_id = ANY($1::uuid[])`,
      [[...groups.keys()]],
    );
    const known = new Map<string, Counted>(
      loaded.map((row) => [
        row.application_id,
        {
          region: row.region,
          month: row.month,
          status: row.status,
          requestedCents: Number(row.requested_cents),
          submittedMs: new Date(row.submitted_at).getTime(),
          processingMs: row.processing_ms === null ? null : Number(row.processing_ms),
          version: row.version,
        },
      ]),
    );

    const deltas = new Map<string, Delta>();
    const add = (counted: Counted, sign: 1 | -1) => {
      const key = `${counted.month}|${counted.region}`;
      let delta = deltas.get(key);
      if (!delta) {
        delta = {
          region: counted.region,
          month: counted.month,
          submitted: 0,
          processing: 0,
          approved: 0,
          rejected: 0,
          withdrawn: 0,
          requested_cents: 0,
          disbursed_cents: 0,
        };
        deltas.set(key, delta);
      }
      delta.submitted += sign;
      delta[counted.status] += sign;
      delta.requested_cents += sign * counted.requestedCents;
      if (counted.status === 'approved') delta.disbursed_cents += sign * counted.requestedCents;
    };

    const written: Record<string, unknown>[] = [];
    for (const [applicationId, facts] of groups) {
      const before = known.get(applicationId);
      let after = before;
      for (const { event, stored } of facts) {
        if (after && stored.streamVersion <= after.version) continue;
        const version = stored.streamVersion;
        if (event.type === 'MortgageApplicationSubmitted') {
          const submittedMs = Date.parse(event.data.submittedAt);
          after = {
            region: event.data.property.region,
            month: monthOf(submittedMs),
            status: 'processing',
            requestedCents: event.data.loan.amountCents,
            submittedMs,
            processingMs: null,
            version,
          };
          // Before its submission, an application has nothing counted to change.
        } else if (!after) {
        } else if (event.type === 'PropertyDetailsUpdated') {
          // Counted where the property is now: a move takes its counts to the other region.
          after = { ...after, region: event.data.property.region, version };
        } else if (event.type === 'ApplicationApproved') {
          after = decided(after, 'approved', event.data.approvedAt, version);
        } else if (event.type === 'ApplicationRejected') {
          after = decided(after, 'rejected', event.data.rejectedAt, version);
        } else if (event.type === 'ApplicationWithdrawn') {
          after = { ...after, status: 'withdrawn', processingMs: null, version };
        }
      }
      if (!after || after === before) continue;
      if (before) add(before, -1);
      add(after, 1);
      written.push({
        application_id: applicationId,
        region: after.region,
        month: `${after.month}-01`,
        status: after.status,
        requested_cents: after.requestedCents,
        submitted_at: new Date(after.submittedMs).toISOString(),
        processing_ms: after.processingMs,
        version: after.version,
      });
    }
    if (written.length === 0) return;

    await tx.query(
      `INSERT INTO ${applications} (application_id, region, month, status, requested_cents, submitted_at, processing_ms, version)
       SELECT application_id, region, month, status, requested_cents, submitted_at, processing_ms, version
         FROM jsonb_to_recordset($1::jsonb)
           AS r(application_id uuid, region text, month date, status text, requested_cents bigint, submitted_at timestamptz,
                processing_ms bigint, version integer)
       ON CONFLICT (application_id) DO UPDATE
         SET region = EXCLUDED.region, month = EXCLUDED.month, status = EXCLUDED.status, requested_cents = EXCLUDED.requested_cents,
             submitted_at = EXCLUDED.submitted_at, processing_ms = EXCLUDED.processing_ms, version = EXCLUDED.version`,
      [JSON.stringify(written)],
    );

    const changes = [...deltas.values()]
      .filter((d) => d.submitted || d.processing || d.approved || d.rejected || d.withdrawn || d.requested_cents || d.disbursed_cents)
      .map((d) => ({ ...d, month: `${d.month}-01` }));
    if (changes.length === 0) return;
    const json = JSON.stringify(changes);
    await tx.query(
      `INSERT INTO ${aggregates} AS d (region, month, submitted, processing, approved, rejected, withdrawn, requested_cents, disbursed_cents)
       SELECT region, month, submitted, processing, approved, rejected, withdrawn, requested_cents, disbursed_cents
         FROM jsonb_to_recordset($1::jsonb)
           AS r(region text, month date, submitted integer, processing integer, approved integer, rejected integer, withdrawn integer,
                requested_cents bigint, disbursed_cents bigint)
       ON CONFLICT (month, region) DO UPDATE
         SET submitted = d.submitted + EXCLUDED.submitted, processing = d.processing + EXCLUDED.processing,
             approved = d.approved + EXCLUDED.approved, rejected = d.rejected + EXCLUDED.rejected,
             withdrawn = d.withdrawn + EXCLUDED.withdrawn, requested_cents = d.requested_cents + EXCLUDED.requested_cents,
             disbursed_cents = d.disbursed_cents + EXCLUDED.disbursed_cents`,
      [json],
    );
    if (changes.some((d) => d.submitted < 0)) {
      // An application moved away and left its old cell empty: drop it, so the table is
      // the same however the events were split into batches.
      await tx.query(
        `DELETE FROM ${aggregates} d USING jsonb_to_recordset($1::jsonb) AS r(region text, month date)
          WHERE d.region = r.region AND d.month = r.month AND d.submitted = 0`,
        [json],
      );
    }
  },
};

// ---- the query ----

export type DashboardQuery = { readonly from?: string; readonly to?: string };

export type DashboardFigures = {
  readonly submitted: number;
  readonly processing: number;
  readonly approved: number;
  readonly rejected: number;
  readonly withdrawn: number;
  /** Euros asked for by the applications submitted. */
  readonly requested: number;
  /** Euros of the approved ones. */
  readonly disbursed: number;
  /** approved / (approved + rejected), 4 decimals; null when none is decided. */
  readonly approvalRate: number | null;
  /** Median hours from submission to approval or rejection, 2 decimals; null when none is decided. */
  readonly medianProcessingHours: number | null;
};

export type DashboardRow = DashboardFigures & { readonly region: string; readonly month: string };

export type Dashboard = {
  readonly from: string;
  readonly to: string;
  readonly rows: DashboardRow[];
  readonly totals: DashboardFigures;
};

/** How many months the dashboard shows when not told: the last year, this month included. */
export const defaultMonths = 12;

const monthPattern = /^[1-9]\d{3}-(0[1-9]|1[0-2])$/;

function shiftMonth(month: string, by: number): string {
  const [year, number] = month.split('-').map(Number) as [number, number];
  const index = year * 12 + (number - 1) + by;
  return `${String(Math.floor(index / 12)).padStart(4, '0')}-${String((index % 12) + 1).padStart(2, '0')}`;
}

const round = (value: number, decimals: number) => {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
};

function figures(
  counts: { submitted: number; processing: number; approved: number; rejected: number; withdrawn: number; requestedCents: number; disbursedCents: number },
  medianMs: number | null,
): DashboardFigures {
  const decidedCount = counts.approved + counts.rejected;
  return {
    submitted: counts.submitted,
    processing: counts.processing,
    approved: counts.approved,
    rejected: counts.rejected,
    withdrawn: counts.withdrawn,
    requested: centsToEuros(counts.requestedCents),
    disbursed: centsToEuros(counts.disbursedCents),
    approvalRate: decidedCount === 0 ? null : round(counts.approved / decidedCount, 4),
    medianProcessingHours: medianMs === null ? null : round(medianMs / 3_600_000, 2),
  };
}

type AggregateRow = {
  region: string;
  month: string;
  submitted: number;
  processing: number;
  approved: number;
  rejected: number;
  withdrawn: number;
  requested_cents: string;
  disbursed_cents: string;
};

type MedianRow = { region: string | null; month: string | null; median_ms: number | string | null; overall: number };

/**
 * The dashboard between two months, both included: `to` defaults to this month (or
 * `from`, if later), `from` to a year before `to`. Everything comes from the read model:
 * the counts from rm_dashboard, the medians from rm_dashboard_applications in one
 * grouped query (per cell and over the whole range: medians do not add up).
 */
export async function dashboard(db: SqlQueryable, query: DashboardQuery = {}): Promise<Dashboard> {
  let to = query.to ?? monthOf(Date.now());
  if (query.to === undefined && query.from !== undefined && query.from > to) to = query.from;
  const from = query.from ?? shiftMonth(to, -(defaultMonths - 1));
  const range = [`${from}-01`, `${to}-01`];

  const aggregates = await db.query<AggregateRow>(
    `SELECT region, to_char(month, 'YYYY-MM') AS month, submitted, processing, approved, rejected, withdrawn,
            requested_cents::text AS requested_cents, disbursed_cents::text AS disbursed_cents
       FROM rm_dashboard
      WHERE month BETWEEN $1::date AND $2::date AND submitted > 0
      ORDER BY month, region COLLATE "C"`,
    range,
  );
  const medians = await db.query<MedianRow>(
    `SELECT region, to_char(month, 'YYYY-MM') AS month,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY processing_ms) AS median_ms,
            GROUPING(month, region) AS overall
       FROM rm_dashboard_applications
      WHERE processing_ms IS NOT NULL AND month BETWEEN $1::date AND $2::date
      GROUP BY GROUPING SETS ((month, region), ())`,
    range,
  );
  const medianOf = new Map<string, number>();
  let overallMedian: number | null = null;
  for (const row of medians) {
    if (row.median_ms === null) continue;
    if (Number(row.overall) !== 0) overallMedian = Number(row.median_ms);
    else medianOf.set(`${row.month}|${row.region}`, Number(row.median_ms));
  }

  const totals = { submitted: 0, processing: 0, approved: 0, rejected: 0, withdrawn: 0, requestedCents: 0, disbursedCents: 0 };
  const rows = aggregates.map((row): DashboardRow => {
    const counts = {
      submitted: Number(row.submitted),
      processing: Number(row.processing),
      approved: Number(row.approved),
      rejected: Number(row.rejected),
      withdrawn: Number(row.withdrawn),
      requestedCents: Number(row.requested_cents),
      disbursedCents: Number(row.disbursed_cents),
    };
    for (const field of Object.keys(totals) as (keyof typeof totals)[]) totals[field] += counts[field];
    return { region: row.region, month: row.month, ...figures(counts, medianOf.get(`${row.month}|${row.region}`) ?? null) };
  });
  return { from, to, rows, totals: figures(totals, overallMedian) };
}

/** The dashboard's query string, checked: from and to as YYYY-MM, from not after to; a 400 naming the field otherwise. */
export function parseDashboardQuery(querystring: Record<string, unknown>): DashboardQuery {
  const errors: FieldError[] = [];
  const month = (field: 'from' | 'to'): string | undefined => {
    const value = querystring[field];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' || !monthPattern.test(value.trim())) {
      errors.push({ path: field, message: 'must be a month as YYYY-MM' });
      return undefined;
    }
    return value.trim();
  };
  const from = month('from');
  const to = month('to');
  if (from !== undefined && to !== undefined && from > to) errors.push({ path: 'from', message: 'must not be after to' });
  if (errors.length > 0) throw invalidInput(errors);
  return { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
}
