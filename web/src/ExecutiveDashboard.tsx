import { useEffect, useMemo, useState } from 'react';
import { euros, Head } from './parts.tsx';
import { call, type Session } from './api.ts';
import { Chart } from './Chart.tsx';

type Figures = {
  submitted: number;
  processing: number;
  approved: number;
  rejected: number;
  withdrawn: number;
  requested: number;
  disbursed: number;
  approvalRate: number | null;
  medianProcessingHours: number | null;
};
type Dashboard = { from: string; to: string; rows: (Figures & { region: string; month: string })[]; totals: Figures };

const percent = (value: number | null) => (value === null ? '—' : `${(100 * value).toFixed(1)} %`);

/** Volumes and amounts by month and region, approval rate and processing time: charts with the numbers beside them. */
export function ExecutiveDashboard({ session }: { session: Session }) {
  const [dashboard, setDashboard] = useState<Dashboard>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    call<Dashboard>(session, 'GET', '/api/dashboard')
      .then(({ body }) => setDashboard(body))
      .catch((failure: Error) => setError(failure.message));
  }, [session]);

  const byMonth = useMemo(() => {
    const months = new Map<string, Figures>();
    for (const row of dashboard?.rows ?? []) {
      const known = months.get(row.month);
      months.set(
        row.month,
        known
          ? {
              ...known,
              submitted: known.submitted + row.submitted,
              approved: known.approved + row.approved,
              rejected: known.rejected + row.rejected,
              requested: known.requested + row.requested,
              disbursed: known.disbursed + row.disbursed,
            }
          : row,
      );
    }
    return [...months].sort(([a], [b]) => (a < b ? -1 : 1));
  }, [dashboard]);
  const byRegion = useMemo(() => {
    const regions = new Map<string, { submitted: number; requested: number; disbursed: number }>();
    for (const row of dashboard?.rows ?? []) {
      const known = regions.get(row.region) ?? { submitted: 0, requested: 0, disbursed: 0 };
      regions.set(row.region, {
        submitted: known.submitted + row.submitted,
        requested: known.requested + row.requested,
        disbursed: known.disbursed + row.disbursed,
      });
    }
    return [...regions].sort(([, a], [, b]) => b.submitted - a.submitted);
  }, [dashboard]);

  if (error) return <p className="error">{error}</p>;
  if (!dashboard) return <p>Loading…</p>;
  const { totals } = dashboard;
  return (
    <div className="dashboard">
      <section className="card figures" data-testid="totals">
        <div>
          <strong>{totals.submitted}</strong> submitted
        </div>
        <div>
          <strong>{totals.approved}</strong> approved
        </div>
        <div>
          <strong>{totals.rejected}</strong> rejected
        </div>
        <div>
          <strong>{percent(totals.approvalRate)}</strong> approval rate
        </div>
        <div>
          <strong>{totals.medianProcessingHours === null ? '—' : `${totals.medianProcessingHours} h`}</strong> median processing
        </div>
        <div>
          <strong>{euros(totals.requested, true)}</strong> requested
        </div>
        <div>
          <strong>{euros(totals.disbursed, true)}</strong> disbursed
        </div>
      </section>
      <section className="card">
        <h3>
          By month, {dashboard.from} to {dashboard.to}
        </h3>
        <Chart
          testId="chart-months"
          option={{
            tooltip: { trigger: 'axis' },
            legend: {},
            xAxis: { type: 'category', data: byMonth.map(([month]) => month) },
            yAxis: { type: 'value', minInterval: 1 },
            series: [
              { name: 'submitted', type: 'bar', data: byMonth.map(([, figures]) => figures.submitted) },
              { name: 'approved', type: 'bar', data: byMonth.map(([, figures]) => figures.approved) },
              { name: 'rejected', type: 'bar', data: byMonth.map(([, figures]) => figures.rejected) },
            ],
          }}
        />
      </section>
      <section className="card split">
        <div>
          <h3>By region</h3>
          <Chart
            testId="chart-regions"
            option={{
              tooltip: { trigger: 'axis' },
              xAxis: { type: 'value' },
              yAxis: { type: 'category', data: byRegion.map(([region]) => region), inverse: true },
              series: [{ name: 'requested (€)', type: 'bar', data: byRegion.map(([, figures]) => figures.requested) }],
              grid: { left: 110 },
            }}
          />
        </div>
        <table data-testid="regions">
          <Head columns={['Region', 'Submitted', 'Requested', 'Disbursed']} />
          <tbody>
            {byRegion.map(([region, figures]) => (
              <tr key={region}>
                <td>{region}</td>
                <td>{figures.submitted}</td>
                <td>{euros(figures.requested, true)}</td>
                <td>{euros(figures.disbursed, true)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}
