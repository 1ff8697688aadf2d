import { useEffect, useState } from 'react';
import { call, loadSession, logIn, logOut, saveSession, type DemoUser, type Session } from './api.ts';
import { ApplicantPortal } from './ApplicantPortal.tsx';
import { ExecutiveDashboard } from './ExecutiveDashboard.tsx';
import { OperatorBackOffice } from './OperatorBackOffice.tsx';
import { Operations } from './Operations.tsx';

/** One role's pages per role; the first role of the session decides which. */
export function App() {
  const [session, setSession] = useState<Session | undefined>(loadSession);
  const signIn = (next: Session | undefined) => {
    saveSession(next);
    setSession(next);
  };
  if (!session) return <Login onSignedIn={signIn} />;
  const role = session.roles[0];
  return (
    <div className="shell">
      <header className="top">
        <span className="brand">Mutuo</span>
        <span className="who" data-testid="who">
          {session.name} · {session.roles.join(', ')}
        </span>
        <button type="button" data-testid="sign-out" onClick={() => void logOut(session).then(() => signIn(undefined))}>
          Sign out
        </button>
      </header>
      <main>
        {role === 'applicant' ? <ApplicantPortal session={session} /> : null}
        {role === 'operator' || role === 'underwriter' ? <OperatorBackOffice session={session} /> : null}
        {role === 'executive' ? <ExecutiveDashboard session={session} /> : null}
        {role === 'admin' ? <AdminPages session={session} /> : null}
        {role === 'monitoring' ? <p>A monitoring system reads the metrics (/metrics) and has no pages.</p> : null}
      </main>
    </div>
  );
}

/** The development identity provider's demo users; a real deployment signs in through its own provider. */
function Login({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [users, setUsers] = useState<DemoUser[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    call<{ users: DemoUser[] } | DemoUser[]>(undefined, 'GET', '/auth/dev/users')
      .then(({ body }) => setUsers(Array.isArray(body) ? body : body.users))
      .catch(() => setError("No development identity provider here: sign in through your bank's."));
  }, []);
  return (
    <div className="login">
      <h1>Mutuo</h1>
      <p>Sign in as one of the demo users.</p>
      {error ? <p className="error">{error}</p> : null}
      <ul className="users">
        {(users ?? []).map((user) => (
          <li key={user.id}>
            <button
              type="button"
              data-testid={`login-${user.id}`}
              onClick={() =>
                logIn(user.id)
                  .then(onSignedIn)
                  .catch((failure: Error) => setError(failure.message))
              }
            >
              {user.name} <small>{user.roles.join(', ')}</small>
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** An admin runs the platform, and may read the dashboard too. */
function AdminPages({ session }: { session: Session }) {
  const [page, setPage] = useState<'operations' | 'dashboard'>('operations');
  return (
    <>
      <nav className="tabs">
        <button type="button" className={page === 'operations' ? 'active' : ''} onClick={() => setPage('operations')}>
          Operations
        </button>
        <button type="button" className={page === 'dashboard' ? 'active' : ''} onClick={() => setPage('dashboard')}>
          Dashboard
        </button>
      </nav>
      {page === 'operations' ? <Operations session={session} /> : <ExecutiveDashboard session={session} />}
    </>
  );
}
