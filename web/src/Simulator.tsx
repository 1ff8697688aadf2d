import { useMemo, useState, type FormEvent } from 'react';
import { euros } from './parts.tsx';
import { ApiError, call, type FieldError } from './api.ts';
import { Chart } from './Chart.tsx';

type Row = { period: number; installment: number; interest: number; principal: number; balance: number };
type Simulation = { annualRate: number; installment: number; totalInterest: number; totalCost: number; aprc: number; schedule: Row[] };

/**
 * The mortgage simulator: the public simulation API (no token needed), the published rate
 * for the term and loan-to-value unless a rate is given, and the amortization by year.
 */
export function Simulator() {
  const [values, setValues] = useState({ amount: '200000', termYears: '25', propertyValue: '300000', annualRate: '', upfront: '1500', perInstallment: '2', annual: '30' });
  const [result, setResult] = useState<Simulation>();
  const [errors, setErrors] = useState<FieldError[]>([]);

  async function simulate(event: FormEvent) {
    event.preventDefault();
    setErrors([]);
    try {
      const { body } = await call<Simulation>(undefined, 'POST', '/api/simulations', {
        amount: Number(values.amount),
        termYears: Number(values.termYears),
        ...(values.propertyValue ? { propertyValue: Number(values.propertyValue) } : {}),
        ...(values.annualRate ? { annualRate: Number(values.annualRate) } : {}),
        fees: { upfront: Number(values.upfront || 0), perInstallment: Number(values.perInstallment || 0), annual: Number(values.annual || 0) },
        schedule: true,
      });
      setResult(body);
    } catch (error) {
      setErrors(error instanceof ApiError ? (error.errors.length > 0 ? [...error.errors] : [{ path: '', message: error.message }]) : [{ path: '', message: String(error) }]);
      setResult(undefined);
    }
  }

  // The schedule by year: what each year pays in interest and in principal, and what is still owed.
  const years = useMemo(() => {
    const byYear: { year: number; interest: number; principal: number; balance: number }[] = [];
    for (const row of result?.schedule ?? []) {
      const year = Math.ceil(row.period / 12);
      const known = byYear[year - 1] ?? (byYear[year - 1] = { year, interest: 0, principal: 0, balance: 0 });
      known.interest += row.interest;
      known.principal += row.principal;
      known.balance = row.balance;
    }
    return byYear;
  }, [result]);

  const field = (name: keyof typeof values, label: string) => (
    <label key={name}>
      <span>{label}</span>
      <input name={name} type="number" value={values[name]} onChange={(event) => setValues({ ...values, [name]: event.target.value })} />
      {errors
        .filter((error) => error.path === name || error.path.startsWith(`${name}.`) || (name in { upfront: 1, perInstallment: 1, annual: 1 } && error.path === `fees.${name}`))
        .map((error) => (
          <small className="error" key={error.path}>
            {error.message}
          </small>
        ))}
    </label>
  );
  return (
    <div className="simulator">
      <form className="card form" onSubmit={simulate} noValidate>
        <h2>Simulate a mortgage</h2>
        {field('amount', 'Loan (€)')}
        {field('termYears', 'Term (years)')}
        {field('propertyValue', 'Property value (€)')}
        {field('annualRate', 'Rate (%; empty: the published one)')}
        {field('upfront', 'Fees at drawdown (€)')}
        {field('perInstallment', 'Fee per installment (€)')}
        {field('annual', 'Yearly fee (€)')}
        {errors.filter((error) => error.path === '').map((error) => (
          <p className="error" key="general">
            {error.message}
          </p>
        ))}
        <button type="submit" data-testid="simulate">
          Simulate
        </button>
      </form>
      {result ? (
        <section className="card">
          <div className="figures" data-testid="simulation">
            <div>
              <strong>{euros(result.installment)}</strong> a month
            </div>
            <div>
              <strong>{result.annualRate} %</strong> rate
            </div>
            <div>
              <strong>{result.aprc} %</strong> APRC (TAEG)
            </div>
            <div>
              <strong>{euros(result.totalInterest)}</strong> interest
            </div>
            <div>
              <strong>{euros(result.totalCost)}</strong> total cost of credit
            </div>
          </div>
          <Chart
            testId="chart-amortization"
            option={{
              tooltip: { trigger: 'axis' },
              legend: {},
              xAxis: { type: 'category', data: years.map(({ year }) => year) },
              yAxis: [{ type: 'value' }, { type: 'value' }],
              series: [
                { name: 'principal', type: 'bar', stack: 'paid', data: years.map(({ principal }) => Math.round(principal)) },
                { name: 'interest', type: 'bar', stack: 'paid', data: years.map(({ interest }) => Math.round(interest)) },
                { name: 'still owed', type: 'line', yAxisIndex: 1, data: years.map(({ balance }) => Math.round(balance)) },
              ],
            }}
          />
        </section>
      ) : null}
    </div>
  );
}
