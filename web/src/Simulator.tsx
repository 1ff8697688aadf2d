import { useMemo, useState, type FormEvent } from 'react';
import { euros } from './parts.tsx';
import { ApiError, call, type FieldError } from './api.ts';
import { Chart } from './Chart.tsx';
import { ReadAs, readAmount, readRate, numberOf, type Reading } from './typed-values.tsx';

type Row = { period: number; installment: number; interest: number; principal: number; balance: number };
type Simulation = { annualRate: number; installment: number; totalInterest: number; totalCost: number; aprc: number; schedule: Row[] };

type Values = { amount: string; termYears: string; propertyValue: string; annualRate: string; upfront: string; perInstallment: string; annual: string };

/** How each field but the term is read: as an amount in euros, or as the rate. */
const readers: Readonly<Record<Exclude<keyof Values, 'termYears'>, (text: string) => Reading>> = {
  amount: readAmount,
  propertyValue: readAmount,
  annualRate: readRate,
  upfront: readAmount,
  perInstallment: readAmount,
  annual: readAmount,
};

/** The number a field's text reads as; an empty one is 0. */
const numberIn = (text: string, read: (text: string) => Reading): number => (text.trim() === '' ? 0 : numberOf(read(text)));

/**
 * The mortgage simulator: the public simulation API (no token needed), the published rate
 * for the term and loan-to-value unless a rate is given, and the amortization by year.
 */
export function Simulator() {
  const [values, setValues] = useState<Values>({
    amount: '200.000',
    termYears: '25',
    propertyValue: '300.000',
    annualRate: '',
    upfront: '1.500',
    perInstallment: '2',
    annual: '30',
  });
  const [result, setResult] = useState<Simulation>();
  const [errors, setErrors] = useState<FieldError[]>([]);

  async function simulate(event: FormEvent) {
    event.preventDefault();
    setErrors([]);
    // A field that does not read as a value already says why, beside it.
    const names = Object.keys(readers) as (keyof typeof readers)[];
    if (names.some((name) => values[name].trim() !== '' && 'problem' in readers[name](values[name]))) return;
    try {
      const { body } = await call<Simulation>(undefined, 'POST', '/api/simulations', {
        amount: numberIn(values.amount, readAmount),
        termYears: Number(values.termYears),
        ...(values.propertyValue.trim() ? { propertyValue: numberIn(values.propertyValue, readAmount) } : {}),
        ...(values.annualRate.trim() ? { annualRate: numberIn(values.annualRate, readRate) } : {}),
        fees: {
          upfront: numberIn(values.upfront, readAmount),
          perInstallment: numberIn(values.perInstallment, readAmount),
          annual: numberIn(values.annual, readAmount),
        },
        schedule: true,
      });
      setResult(body);
    } catch (error) {
      setErrors(
        error instanceof ApiError
          ? error.errors.length > 0
            ? [...error.errors]
            : [{ path: '', message: error.message }]
          : [{ path: '', message: String(error) }],
      );
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

  const field = (name: keyof Values, label: string) => {
    const read = name === 'termYears' ? undefined : readers[name];
    return (
      <label key={name}>
        <span>{label}</span>
        <input
          name={name}
          type={read ? 'text' : 'number'}
          {...(read ? { inputMode: 'decimal' as const } : {})}
          value={values[name]}
          onChange={(event) => setValues({ ...values, [name]: event.target.value })}
        />
        {read ? <ReadAs text={values[name]} reading={read(values[name])} testId={`read-${name}`} /> : null}
        {errors
          .filter(
            (error) =>
              error.path === name ||
              error.path.startsWith(`${name}.`) ||
              (name in { upfront: 1, perInstallment: 1, annual: 1 } && error.path === `fees.${name}`),
          )
          .map((error) => (
            <small className="error" key={error.path}>
              {error.message}
            </small>
          ))}
      </label>
    );
  };
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
        {errors
          .filter((error) => error.path === '')
          .map((error) => (
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
