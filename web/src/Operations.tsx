import { useCallback, useEffect, useState } from 'react';
import { Head, Notice } from './parts.tsx';
import { call, type Session } from './api.ts';

type DeadLetter = {
  id: number;
  consumer: string;
  partitionKey: string | null;
  eventType: string | null;
  reason: string;
  error: string;
  attempts: number;
  status: string;
  parked: number;
  createdAt: string;
};
type DeadLetterDetail = DeadLetter & { message: unknown };
type Rebuild = { state: string; applied: number; total: number; eventsPerSecond?: number; etaSeconds?: number | null };
type Projection = { name: string; position: number; headPosition: number; behindEvents: number; lagMs: number; parkedEvents: number; rebuild?: Rebuild };
type ParkedEvent = {
  projection: string;
  position: number;
  streamId: string;
  streamVersion: number;
  eventType: string;
  errorCode: string | null;
  error: string | null;
  parkedAt: string;
};

/**
 * Dead letters (inspect, redrive, discard), projections (lag, rebuild and its progress,
 * parked events: redrive, discard) and health, refreshed every 2 s.
 */
export function Operations({ session }: { session: Session }) {
  const [letters, setLetters] = useState<DeadLetter[]>([]);
  const [projections, setProjections] = useState<Projection[]>([]);
  const [parked, setParked] = useState<ParkedEvent[]>([]);
  const [health, setHealth] = useState<{ status: string; services: string[]; reasons: string[] }>({ status: '…', services: [], reasons: [] });
  const [inspected, setInspected] = useState<DeadLetterDetail>();
  const [message, setMessage] = useState<string>();

  const refresh = useCallback(async () => {
    const [dead, status, ready] = await Promise.all([
      call<DeadLetter[]>(session, 'GET', '/api/dead-letters?status=open'),
      call<{ items: Projection[] }>(session, 'GET', '/api/projections'),
      fetch('/health').then(async (response) => {
        const body = (await response.json().catch(() => ({}))) as { status?: string; services?: string[]; reasons?: { detail: string }[] };
        // 200 is ok or degraded (the process serves, part of its work waits: the body says why); 503, unavailable.
        return {
          status: response.ok ? (body.status ?? 'ok') : `unavailable (${response.status})`,
          services: body.services ?? [],
          reasons: (body.reasons ?? []).map((reason) => reason.detail),
        };
      }),
    ]);
    const withParked = status.body.items.filter((projection) => projection.parkedEvents > 0);
    const lists = await Promise.all(
      withParked.map((projection) => call<{ items: ParkedEvent[] }>(session, 'GET', `/api/projections/${projection.name}/parked`)),
    );
    setLetters(dead.body);
    setProjections(status.body.items);
    setParked(lists.flatMap((list) => list.body.items));
    setHealth(ready);
  }, [session]);
  useEffect(() => {
    void refresh().catch((failure: Error) => setMessage(failure.message));
    const timer = setInterval(() => void refresh().catch(() => undefined), 2_000);
    return () => clearInterval(timer);
  }, [refresh]);

  const act = (id: number, action: 'redrive' | 'discard') =>
    call(session, 'POST', `/api/dead-letters/${id}/${action}`)
      .then(() => {
        setMessage(`${action === 'redrive' ? 'Redrive' : 'Discard'} of dead letter ${id} asked: its consumer carries it out.`);
        setInspected(undefined);
        return refresh();
      })
      .catch((failure: Error) => setMessage(failure.message));

  const operateParked = (projection: string, action: 'redrive' | 'discard') =>
    call<{ redriven?: number; parked?: number; discarded?: number }>(session, 'POST', `/api/projections/${projection}/parked/${action}`)
      .then(({ body }) => {
        setMessage(
          action === 'redrive'
            ? `${projection}: ${body.redriven} parked events applied${body.parked ? `, ${body.parked} parked again` : ''}.`
            : `${projection}: ${body.discarded} parked events discarded.`,
        );
        return refresh();
      })
      .catch((failure: Error) => setMessage(failure.message));

  return (
    <div className="operations">
      <section className="card">
        <h3>
          Health: <span data-testid="health">{health.status}</span>
        </h3>
        <p className="muted">This process answers for its services: each one's health is the process's and its database's.</p>
        {health.reasons.map((reason) => (
          <p key={reason} className="error" data-testid="health-reason">
            {reason}
          </p>
        ))}
        <ul className="services" data-testid="services">
          {health.services.map((service) => (
            <li key={service} className={health.status === 'ok' ? 'done' : ''}>
              {service}: {health.status}
            </li>
          ))}
        </ul>
      </section>
      <Notice message={message} />
      <section className="card">
        <h3>Dead letters ({letters.length} open)</h3>
        <table data-testid="dead-letters">
          <Head columns={['#', 'Consumer', 'Event', 'Reason', 'Attempts', 'Parked behind', '']} />
          <tbody>
            {letters.map((letter) => (
              <tr key={letter.id} data-testid={`dead-letter-${letter.id}`}>
                <td>{letter.id}</td>
                <td>{letter.consumer}</td>
                <td>{letter.eventType ?? '—'}</td>
                <td title={letter.error}>{letter.reason}</td>
                <td>{letter.attempts}</td>
                <td>{letter.parked}</td>
                <td className="actions">
                  <button
                    type="button"
                    onClick={() => call<DeadLetterDetail>(session, 'GET', `/api/dead-letters/${letter.id}`).then(({ body }) => setInspected(body))}
                  >
                    Inspect
                  </button>
                  <button type="button" data-testid={`redrive-${letter.id}`} onClick={() => void act(letter.id, 'redrive')}>
                    Redrive
                  </button>
                  <button type="button" className="secondary" onClick={() => void act(letter.id, 'discard')}>
                    Discard
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {inspected ? <pre className="state">{JSON.stringify(inspected, null, 2)}</pre> : null}
      </section>
      <section className="card">
        <h3>Projections</h3>
        <table data-testid="projections">
          <Head columns={['Read model', 'Position', 'Behind (events)', 'Lag', 'Parked (events)', 'Rebuild', '']} />
          <tbody>
            {projections.map((projection) => (
              <tr key={projection.name}>
                <td>{projection.name}</td>
                <td>{projection.position}</td>
                <td>{projection.behindEvents}</td>
                <td>{projection.lagMs} ms</td>
                <td data-testid={`parked-count-${projection.name}`}>{projection.parkedEvents}</td>
                <td data-testid={`rebuild-${projection.name}`}>
                  {projection.rebuild ? (
                    <>
                      {projection.rebuild.state}{' '}
                      {projection.rebuild.total > 0 ? <progress value={projection.rebuild.applied} max={projection.rebuild.total} /> : null}{' '}
                      {projection.rebuild.applied.toLocaleString()} events
                    </>
                  ) : (
                    '—'
                  )}
                </td>
                <td className="actions">
                  <button
                    type="button"
                    onClick={() =>
                      call(session, 'POST', `/api/projections/${projection.name}/rebuild`)
                        .then(() => refresh())
                        .catch((failure: Error) => setMessage(failure.message))
                    }
                  >
                    Rebuild
                  </button>
                  {projection.parkedEvents > 0 ? (
                    <>
                      <button type="button" data-testid={`redrive-parked-${projection.name}`} onClick={() => void operateParked(projection.name, 'redrive')}>
                        Redrive parked
                      </button>
                      <button
                        type="button"
                        className="secondary"
                        data-testid={`discard-parked-${projection.name}`}
                        onClick={() => void operateParked(projection.name, 'discard')}
                      >
                        Discard parked
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {parked.length > 0 ? (
          <>
            <h3>Parked events ({parked.length})</h3>
            <p className="muted">
              Events a read model could not apply, and the later events of their application held behind them; every other application goes on. Once the cause
              is fixed, redrive them; or discard them.
            </p>
            <table data-testid="parked-events">
              <Head columns={['Read model', 'Position', 'Stream', 'Version', 'Event', 'Error', 'Parked at']} />
              <tbody>
                {parked.map((event) => (
                  <tr key={`${event.projection}-${event.position}`}>
                    <td>{event.projection}</td>
                    <td>{event.position}</td>
                    <td>{event.streamId}</td>
                    <td>{event.streamVersion}</td>
                    <td>{event.eventType}</td>
                    <td>{event.errorCode === null ? 'held behind' : `${event.errorCode}: ${event.error ?? ''}`}</td>
                    <td>{new Date(event.parkedAt).toLocaleString()}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        ) : null}
      </section>
    </div>
  );
}
