import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { euros } from './parts.tsx';
import { ApiError, call, follow, type FieldError, type Session } from './api.ts';
import { Simulator } from './Simulator.tsx';
import { isEmailAddress } from './email-address.ts';
import { checkTaxCode } from './tax-code.ts';
import { ReadAs, readAmount, numberOf } from './typed-values.tsx';

export type CustomerView = {
  applicationId: string;
  status: 'processing' | 'approved' | 'rejected' | 'withdrawn';
  version: number;
  applicant: { firstName: string; lastName: string };
  loan: { amount: number; termYears: number; rateType: string };
  rate?: { annualRate: number; lockExpiresAt?: string };
  steps: { submitted: boolean; incomeApproved: boolean; rateLocked: boolean; decided: boolean };
  reason?: string;
  contractNumber?: string;
  updatedAt: string;
};

type Change = { position: number; version: number; type: string; status: string; recordedAt: string; reason?: string };

const applicationsKey = (session: Session) => `mutuo.applications.${session.subject}`;

/** The applications this browser submitted for the applicant (there is no list of one's own applications in the API yet). */
function rememberedApplications(session: Session): string[] {
  return JSON.parse(localStorage.getItem(applicationsKey(session)) ?? '[]') as string[];
}

export function ApplicantPortal({ session }: { session: Session }) {
  const [applications, setApplications] = useState(() => rememberedApplications(session));
  const [open, setOpen] = useState<{ id: string; minPosition?: number } | 'simulator' | undefined>(() => {
    const last = rememberedApplications(session).at(-1);
    return last ? { id: last } : undefined;
  });
  const submitted = (id: string, position: number) => {
    const next = [...applications.filter((known) => known !== id), id];
    localStorage.setItem(applicationsKey(session), JSON.stringify(next));
    setApplications(next);
    setOpen({ id, minPosition: position });
  };
  return (
    <div className="portal">
      <nav className="tabs">
        <button type="button" className={open ? '' : 'active'} onClick={() => setOpen(undefined)}>
          New application
        </button>
        <button type="button" className={open === 'simulator' ? 'active' : ''} onClick={() => setOpen('simulator')} data-testid="tab-simulator">
          Simulator
        </button>
        {applications.map((id) => (
          <button type="button" key={id} className={typeof open === 'object' && open.id === id ? 'active' : ''} onClick={() => setOpen({ id })}>
            Application {id.slice(0, 8)}
          </button>
        ))}
      </nav>
      {open === 'simulator' ? <Simulator /> : null}
      {typeof open === 'object' ? <ApplicationPage key={open.id} session={session} applicationId={open.id} minPosition={open.minPosition} /> : null}
      {open === undefined ? <SubmissionForm session={session} onSubmitted={submitted} /> : null}
    </div>
  );
}

const fields = [
  { path: 'applicant.firstName', label: 'First name' },
  { path: 'applicant.lastName', label: 'Last name' },
  { path: 'applicant.taxCode', label: 'Tax code (codice fiscale)' },
  { path: 'applicant.email', label: 'Email', type: 'email' },
  { path: 'income.monthlyNet', label: 'Net monthly income (€)', amount: true },
  { path: 'property.value', label: 'Property value (€)', amount: true },
  { path: 'property.region', label: 'Region' },
  { path: 'loan.amount', label: 'Loan amount (€)', amount: true },
  { path: 'loan.termYears', label: 'Term (years)', type: 'number' },
] as const;

type Path = (typeof fields)[number]['path'];

/** What the server checks, checked here first with the same rules, so most mistakes show before sending. */
function checkLocally(values: Record<Path, string>): FieldError[] {
  const errors: FieldError[] = [];
  for (const { path, ...rest } of fields) {
    if (values[path].trim() === '') errors.push({ path, message: 'is required' });
    else if ('amount' in rest) {
      const reading = readAmount(values[path]);
      if ('problem' in reading) errors.push({ path, message: reading.problem });
    }
  }
  const taxCode = checkTaxCode(values['applicant.taxCode']);
  if (values['applicant.taxCode'].trim() !== '' && !taxCode.valid) errors.push({ path: 'applicant.taxCode', message: taxCode.message });
  if (values['applicant.email'].trim() !== '' && !isEmailAddress(values['applicant.email'].trim().toLowerCase())) {
    errors.push({ path: 'applicant.email', message: 'must be one bare email address (name@example.com)' });
  }
  const term = Number(values['loan.termYears']);
  if (values['loan.termYears'] !== '' && (!Number.isInteger(term) || term < 5 || term > 40))
    errors.push({ path: 'loan.termYears', message: 'must be 5 to 40 years' });
  return errors;
}

function SubmissionForm({ session, onSubmitted }: { session: Session; onSubmitted: (id: string, position: number) => void }) {
  const [values, setValues] = useState<Record<Path, string>>({
    'applicant.firstName': '',
    'applicant.lastName': '',
    'applicant.taxCode': '',
    'applicant.email': '',
    'income.monthlyNet': '',
    'property.value': '',
    'property.region': 'Lombardia',
    'loan.amount': '',
    'loan.termYears': '25',
  });
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [failure, setFailure] = useState<string>();
  const [sending, setSending] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const local = checkLocally(values);
    setErrors(local);
    setFailure(undefined);
    if (local.length > 0) return;
    setSending(true);
    try {
      const { body } = await call<{ applicationId: string; position: number }>(session, 'POST', '/api/applications', {
        applicant: {
          firstName: values['applicant.firstName'],
          lastName: values['applicant.lastName'],
          taxCode: values['applicant.taxCode'],
          email: values['applicant.email'],
        },
        income: { monthlyNet: numberOf(readAmount(values['income.monthlyNet'])), employment: 'permanent' },
        property: { value: numberOf(readAmount(values['property.value'])), region: values['property.region'] },
        loan: { amount: numberOf(readAmount(values['loan.amount'])), termYears: Number(values['loan.termYears']), rateType: 'fixed' },
      });
      onSubmitted(body.applicationId, body.position);
    } catch (error) {
      // The server's own field errors, shown beside the fields they name.
      if (error instanceof ApiError && error.errors.length > 0) setErrors([...error.errors]);
      else setFailure(error instanceof Error ? error.message : String(error));
    } finally {
      setSending(false);
    }
  }

  const errorOf = (path: string) =>
    errors
      .filter((error) => error.path === path)
      .map((error) => error.message)
      .join('; ');
  const unplaced = errors.filter((error) => !fields.some((field) => field.path === error.path));
  return (
    <form className="card form" onSubmit={submit} noValidate>
      <h2>Apply for a mortgage</h2>
      {fields.map(({ path, label, ...rest }) => (
        <label key={path} className={errorOf(path) ? 'invalid' : ''}>
          <span>{label}</span>
          <input
            name={path}
            type={'type' in rest ? rest.type : 'text'}
            {...('amount' in rest ? { inputMode: 'decimal' as const, placeholder: '200.000' } : {})}
            value={values[path]}
            onChange={(event) => {
              setValues({ ...values, [path]: event.target.value });
              // What was said of the old text no longer holds; an amount is read again as it is typed.
              setErrors(errors.filter((error) => error.path !== path));
            }}
            aria-invalid={errorOf(path) ? true : undefined}
          />
          {'amount' in rest && !errorOf(path) ? <ReadAs text={values[path]} reading={readAmount(values[path])} testId={`read-${path}`} /> : null}
          {errorOf(path) ? (
            <small className="error" data-testid={`error-${path}`}>
              {errorOf(path)}
            </small>
          ) : null}
        </label>
      ))}
      {unplaced.map((error) => (
        <p className="error" key={error.path}>
          {error.path}: {error.message}
        </p>
      ))}
      {failure ? <p className="error">{failure}</p> : null}
      <button type="submit" disabled={sending} data-testid="submit">
        {sending ? 'Sending…' : 'Submit the application'}
      </button>
    </form>
  );
}

/** The application as the applicant follows it: its view, the documents to send, the rate lock, and each change as it happens. */
function ApplicationPage({ session, applicationId, minPosition }: { session: Session; applicationId: string; minPosition?: number | undefined }) {
  const [view, setView] = useState<CustomerView>();
  const [changes, setChanges] = useState<Change[]>([]);
  const [error, setError] = useState<string>();

  const load = useCallback(
    (position?: number) =>
      call<CustomerView>(session, 'GET', `/api/applications/${applicationId}`, undefined, position ? { 'x-min-position': String(position) } : {})
        .then(({ body }) => setView(body))
        .catch((failure: Error) => setError(failure.message)),
    [session, applicationId],
  );

  useEffect(() => {
    void load(minPosition);
    // Each change as it happens; the view read again at its position.
    return follow(session, `/api/applications/${applicationId}/live`, (_type, data) => {
      const change = data as Change;
      setChanges((known) => (known.some((seen) => seen.position === change.position) ? known : [...known, change]));
      void load(change.position);
    });
  }, [session, applicationId, minPosition, load]);

  if (error) return <p className="error">{error}</p>;
  if (!view) return <p>Loading…</p>;
  return (
    <div className="application">
      <section className="card">
        <h2>
          Application {applicationId.slice(0, 8)}{' '}
          <span className={`status ${view.status}`} data-testid="status">
            {view.status}
          </span>
        </h2>
        <p>
          {euros(view.loan.amount)} over {view.loan.termYears} years, {view.loan.rateType}
          {view.rate ? ` at ${view.rate.annualRate} %` : ''}
        </p>
        {view.contractNumber ? <p>Contract {view.contractNumber}</p> : null}
        {view.reason ? <p>Why: {view.reason}</p> : null}
        <ul className="steps">
          <li className={view.steps.submitted ? 'done' : ''}>Submitted</li>
          <li className={view.steps.incomeApproved ? 'done' : ''}>Income approved</li>
          <li className={view.steps.rateLocked ? 'done' : ''}>Rate locked</li>
          <li className={view.steps.decided ? 'done' : ''}>Decided</li>
        </ul>
      </section>
      {view.status === 'processing' ? <Documents session={session} applicationId={applicationId} /> : null}
      {view.status === 'processing' && !view.steps.rateLocked ? (
        <section className="card">
          <h3>Rate</h3>
          <button
            type="button"
            data-testid="lock-rate"
            onClick={() => {
              // Optimistic: the lock shows at once, and the view read at the command's position confirms it (or the failure undoes it).
              setView({ ...view, steps: { ...view.steps, rateLocked: true } });
              call<{ position: number }>(session, 'POST', `/api/applications/${applicationId}/rate-lock`, {})
                .then(({ body }) => load(body.position))
                .catch((failure: Error) => {
                  setError(failure.message);
                  void load();
                });
            }}
          >
            Lock today's rate for 30 days
          </button>
        </section>
      ) : null}
      <section className="card">
        <h3>What happened</h3>
        <ol className="timeline" data-testid="timeline">
          {changes.map((change) => (
            <li key={change.position}>
              <time>{new Date(change.recordedAt).toLocaleString()}</time> {change.type} → {change.status}
              {change.reason ? ` (${change.reason})` : ''}
            </li>
          ))}
        </ol>
      </section>
    </div>
  );
}

const documentKinds = [
  { kind: 'id_card', label: 'ID card' },
  { kind: 'payslip', label: 'Payslip' },
  { kind: 'appraisal', label: 'Appraisal' },
] as const;

/** Uploads, each with its progress (XMLHttpRequest reports it; fetch does not). */
function Documents({ session, applicationId }: { session: Session; applicationId: string }) {
  const [progress, setProgress] = useState<Record<string, string>>({});
  const upload = (kind: string, file: Blob, name: string) => {
    const form = new FormData();
    form.append('kind', kind);
    form.append('file', file, name);
    const request = new XMLHttpRequest();
    request.open('POST', `/api/applications/${applicationId}/documents`);
    request.setRequestHeader('authorization', `Bearer ${session.token}`);
    request.upload.onprogress = (event) => setProgress((known) => ({ ...known, [kind]: `${Math.round((100 * event.loaded) / Math.max(event.total, 1))} %` }));
    request.onload = () => {
      const answer = request.responseText ? (JSON.parse(request.responseText) as { detail?: string }) : {};
      setProgress((known) => ({ ...known, [kind]: request.status === 202 ? 'received' : `refused: ${answer.detail ?? request.status}` }));
    };
    request.onerror = () => setProgress((known) => ({ ...known, [kind]: 'failed: try again' }));
    request.send(form);
  };
  // The sandbox hands out sample PDFs that match the application (not in production).
  const sample = async (kind: string) => {
    const response = await fetch(`/api/sandbox/applications/${applicationId}/documents/${kind}`, { headers: { authorization: `Bearer ${session.token}` } });
    if (response.ok) upload(kind, await response.blob(), `${kind}.pdf`);
    else setProgress((known) => ({ ...known, [kind]: `no sample: ${response.status}` }));
  };
  return (
    <section className="card">
      <h3>Documents</h3>
      <table className="documents">
        <tbody>
          {documentKinds.map(({ kind, label }) => (
            <tr key={kind}>
              <td>{label}</td>
              <td>
                <input
                  type="file"
                  accept="application/pdf"
                  aria-label={label}
                  onChange={(event) => event.target.files?.[0] && upload(kind, event.target.files[0], event.target.files[0].name)}
                />
              </td>
              <td>
                <button type="button" data-testid={`sample-${kind}`} onClick={() => void sample(kind)}>
                  Use the sandbox's sample
                </button>
              </td>
              <td data-testid={`progress-${kind}`}>{progress[kind] ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
