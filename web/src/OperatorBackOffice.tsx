import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { euros, Head, Notice } from './parts.tsx';
import { ApiError, call, type Session } from './api.ts';
import { ReadAs, readAmount, readRate, numberOf, type Reading } from './typed-values.tsx';

type SearchItem = {
  applicationId: string;
  firstName: string;
  lastName: string;
  taxCode: string;
  status: string;
  region: string;
  amount: number;
  submittedAt: string;
};
type SearchResult = { items: SearchItem[]; total: number };
type AuditEvent = {
  eventId: string;
  type: string;
  version: number;
  position: number;
  data: Record<string, unknown>;
  metadata: { actor: string; occurredAt: string; correlationId: string };
};
type StateView = {
  status: string;
  version: number;
  applicant?: { firstName: string; lastName: string };
  verifiedMonthlyNet?: number;
  annualRate?: number;
  [key: string]: unknown;
};

const taxCodeShape = /^[A-Z0-9]{16}$/i;

/** Search by surname or tax code, then one application: its audit trail, time travel and the operator's commands. */
export function OperatorBackOffice({ session }: { session: Session }) {
  const [query, setQuery] = useState('');
  const [result, setResult] = useState<SearchResult>();
  const [open, setOpen] = useState<string>();

  useEffect(() => {
    const text = query.trim();
    if (text === '') {
      setResult(undefined);
      return;
    }
    // As the operator types: a tax code is matched exactly, anything else as a surname.
    const parameter = taxCodeShape.test(text) ? `taxCode=${encodeURIComponent(text)}` : `q=${encodeURIComponent(text)}`;
    const timer = setTimeout(() => {
      call<SearchResult>(session, 'GET', `/api/applications?${parameter}`)
        .then(({ body }) => setResult(body))
        .catch(() => setResult({ items: [], total: 0 }));
    }, 150);
    return () => clearTimeout(timer);
  }, [session, query]);

  return (
    <div className="backoffice">
      <section className="card">
        <input className="search" placeholder="Surname or tax code" value={query} onChange={(event) => setQuery(event.target.value)} data-testid="search" />
        {result ? (
          <table className="results">
            <Head columns={['Applicant', 'Tax code', 'Status', 'Region', 'Amount', 'Submitted']} />
            <tbody>
              {result.items.map((item) => (
                <tr key={item.applicationId} onClick={() => setOpen(item.applicationId)} className="clickable" data-testid={`result-${item.applicationId}`}>
                  <td>
                    {item.lastName} {item.firstName}
                  </td>
                  <td>{item.taxCode}</td>
                  <td>{item.status}</td>
                  <td>{item.region}</td>
                  <td>{euros(item.amount)}</td>
                  <td>{new Date(item.submittedAt).toLocaleDateString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        {result ? <p className="muted">{result.total} found</p> : null}
      </section>
      {open ? <OperatorApplication key={open} session={session} applicationId={open} /> : null}
    </div>
  );
}

function OperatorApplication({ session, applicationId }: { session: Session; applicationId: string }) {
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [at, setAt] = useState<number>();
  const [state, setState] = useState<StateView>();
  const [message, setMessage] = useState<string>();

  const refresh = useCallback(async () => {
    const { body } = await call<AuditEvent[]>(session, 'GET', `/api/applications/${applicationId}/events`);
    setEvents(body);
    return body;
  }, [session, applicationId]);
  useEffect(() => {
    void refresh().then((loaded) => setAt(loaded.at(-1)?.version));
  }, [refresh]);
  // At an event (the slider, or a row of the audit trail) or at an instant (the date field).
  const [asOf, setAsOf] = useState<string>();
  useEffect(() => {
    if (asOf) {
      void call<StateView>(session, 'GET', `/api/applications/${applicationId}/state?asOf=${encodeURIComponent(new Date(asOf).toISOString())}`)
        .then(({ body }) => setState(body))
        .catch(() => setState(undefined));
      return;
    }
    if (at === undefined) return;
    void call<StateView>(session, 'GET', `/api/applications/${applicationId}/state?version=${at}`).then(({ body }) => setState(body));
  }, [session, at, asOf, applicationId]);
  const travelTo = (version: number) => {
    setAsOf(undefined);
    setAt(version);
  };

  const latest = events.at(-1)?.version;
  return (
    <div className="application">
      <section className="card">
        <h2>
          Application {applicationId.slice(0, 8)} {state ? <span className={`status ${state.status}`}>{state.status}</span> : null}
        </h2>
        {latest !== undefined ? (
          <label className="travel">
            <span>
              As it was after event {at} of {latest}
              {at !== undefined && events[at - 1] ? `, ${new Date(events[at - 1]!.metadata.occurredAt).toLocaleString()}` : ''}
            </span>
            <input
              type="range"
              min={1}
              max={latest}
              value={at ?? latest}
              onChange={(event) => travelTo(Number(event.target.value))}
              data-testid="time-travel"
            />
          </label>
        ) : null}
        {latest !== undefined ? (
          <label className="travel">
            <span>{asOf ? `As it was at ${new Date(asOf).toLocaleString()}` : 'Or as it was at a date and time'}</span>
            <input
              type="datetime-local"
              step={1}
              value={asOf ?? ''}
              onChange={(event) => setAsOf(event.target.value || undefined)}
              data-testid="time-travel-date"
            />
          </label>
        ) : null}
        {state ? <pre className="state">{JSON.stringify(state, null, 2)}</pre> : null}
      </section>
      <Commands
        session={session}
        applicationId={applicationId}
        version={latest}
        onDone={(text) => {
          setMessage(text);
          void refresh().then((loaded) => setAt(loaded.at(-1)?.version));
        }}
        onConflict={async (text) => {
          // What changed meanwhile: the events after the version the operator was looking at.
          const seen = latest ?? 0;
          const loaded = await refresh();
          setAt(loaded.at(-1)?.version);
          const meanwhile = loaded
            .filter((event) => event.version > seen)
            .map((event) => `${event.type} by ${event.metadata.actor} at ${new Date(event.metadata.occurredAt).toLocaleTimeString()}`);
          setMessage(`${text}${meanwhile.length > 0 ? ` Meanwhile: ${meanwhile.join('; ')}.` : ''}`);
        }}
      />
      <Notice message={message} />
      <section className="card">
        <h3>Audit trail</h3>
        <table className="audit" data-testid="audit">
          <Head columns={['#', 'When', 'Who', 'What', 'Why']} />
          <tbody>
            {events.map((event) => (
              <tr key={event.eventId} className={event.version === at ? 'current' : ''} onClick={() => travelTo(event.version)}>
                <td>{event.version}</td>
                <td>{new Date(event.metadata.occurredAt).toLocaleString()}</td>
                <td>{event.metadata.actor}</td>
                <td>{event.type}</td>
                <td>{typeof event.data.reason === 'string' ? event.data.reason : typeof event.data.note === 'string' ? event.data.note : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}

type CommandFormProps = {
  session: Session;
  applicationId: string;
  version: number | undefined;
  onDone: (text: string) => void;
  onConflict: (text: string) => Promise<void>;
};

/** A command's field: free text, or read as an amount or a rate (`read`), shown beside it as it is typed. */
type CommandField = { readonly name: string; readonly placeholder: string; readonly read?: (text: string) => Reading };

/**
 * One of the operator's commands, sent with If-Match: a change meanwhile answers 409, and
 * the page then shows the application as it is now and says so, for the operator to decide again.
 */
function CommandForm(
  props: CommandFormProps & {
    title: string;
    path: string;
    fields: readonly CommandField[];
    body: (values: Record<string, string>) => unknown;
    done: string;
    testId: string;
  },
) {
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState<string>();
  async function send(event: FormEvent) {
    event.preventDefault();
    setError(undefined);
    for (const field of props.fields) {
      const reading = field.read?.(values[field.name] ?? '');
      if (reading && 'problem' in reading) {
        setError(`${field.placeholder}: ${reading.problem}`);
        return;
      }
    }
    try {
      await call(
        props.session,
        'POST',
        `/api/applications/${props.applicationId}/${props.path}`,
        props.body(values),
        props.version ? { 'if-match': `"${props.version}"` } : {},
      );
      props.onDone(props.done);
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 409) {
        await props.onConflict(
          `The application changed while you were looking at it (${failure.message}). It is shown as it is now: check it, then send again.`,
        );
      } else setError(failure instanceof Error ? failure.message : String(failure));
    }
  }
  return (
    <form className="card inline" onSubmit={send}>
      <h3>{props.title}</h3>
      {props.fields.map((field) => (
        <span key={field.name}>
          <input
            type="text"
            {...(field.read ? { inputMode: 'decimal' as const } : {})}
            placeholder={field.placeholder}
            value={values[field.name] ?? ''}
            onChange={(event) => setValues({ ...values, [field.name]: event.target.value })}
            data-testid={`${props.testId}-${field.name}`}
          />{' '}
          {field.read ? (
            <ReadAs text={values[field.name] ?? ''} reading={field.read(values[field.name] ?? '')} testId={`read-${props.testId}-${field.name}`} />
          ) : null}
        </span>
      ))}
      <button type="submit" data-testid={props.testId}>
        Send
      </button>
      {error ? <p className="error">{error}</p> : null}
    </form>
  );
}

/** The operator's commands on an application. */
function Commands(props: CommandFormProps) {
  return (
    <>
      <CommandForm
        {...props}
        title="Approve the income"
        path="income-approval"
        fields={[{ name: 'verifiedMonthlyNet', placeholder: 'Verified net monthly income (€)', read: readAmount }]}
        body={(values) => ({ verifiedMonthlyNet: numberOf(readAmount(values.verifiedMonthlyNet ?? '')) })}
        done="Income approved."
        testId="approve-income"
      />
      <CommandForm
        {...props}
        title="Change the rate"
        path="rate"
        fields={[
          { name: 'annualRate', placeholder: 'Rate (%)', read: readRate },
          { name: 'reason', placeholder: 'Why' },
        ]}
        body={(values) => ({ annualRate: numberOf(readRate(values.annualRate ?? '')), reason: values.reason ?? '' })}
        done="Rate changed."
        testId="change-rate"
      />
      <CommandForm
        {...props}
        title="Lock the published rate"
        path="rate-lock"
        fields={[]}
        body={() => ({})}
        done="Rate locked for 30 days."
        testId="lock-rate"
      />
    </>
  );
}
