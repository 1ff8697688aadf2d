/** The platform's HTTP API as the pages call it: the bearer token of the session, problems as errors. */

export type Role = 'applicant' | 'operator' | 'underwriter' | 'executive' | 'admin' | 'monitoring';
export type Session = { readonly token: string; readonly subject: string; readonly name: string; readonly roles: readonly Role[] };
export type FieldError = { readonly path: string; readonly message: string };

/** An answer that is not 2xx: the problem+json the server sent. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errors: readonly FieldError[] = [],
  ) {
    super(message);
  }
}

const sessionKey = 'mutuo.session';

export function loadSession(): Session | undefined {
  const stored = sessionStorage.getItem(sessionKey);
  return stored ? (JSON.parse(stored) as Session) : undefined;
}

export function saveSession(session: Session | undefined): void {
  if (session) sessionStorage.setItem(sessionKey, JSON.stringify(session));
  else sessionStorage.removeItem(sessionKey);
}

export type Answer<T> = { readonly body: T; readonly headers: Headers };

export async function call<T>(
  session: Session | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const response = await fetch(path, {
    method,
    headers: {
      ...(session ? { authorization: `Bearer ${session.token}` } : {}),
      ...(body !== undefined && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: body instanceof FormData ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : undefined;
  if (!response.ok) {
    const problem = (parsed ?? {}) as { code?: string; detail?: string; title?: string; errors?: FieldError[] };
    throw new ApiError(response.status, problem.code ?? 'ERROR', problem.detail ?? problem.title ?? response.statusText, problem.errors ?? []);
  }
  return { body: parsed as T, headers: response.headers };
}

export type DemoUser = { readonly id: string; readonly name: string; readonly roles: readonly Role[] };

export async function logIn(user: string): Promise<Session> {
  const { body } = await call<{ accessToken: string; user: { subject: string; name: string; roles: Role[] } }>(undefined, 'POST', '/auth/dev/token', { user });
  return { token: body.accessToken, subject: body.user.subject, name: body.user.name, roles: body.user.roles };
}

/**
 * Signs out: the server refuses the session's token from now on, in every process. The page
 * forgets the session whatever the answer: a token the server refuses already needs nothing more.
 */
export async function logOut(session: Session): Promise<void> {
  await call(session, 'POST', '/auth/logout').catch(() => undefined);
}

/**
 * Server-Sent Events over fetch, so that the bearer token goes in a header (EventSource
 * sends none). Reconnects with Last-Event-ID after a drop; `close` ends it.
 */
export function follow(session: Session, path: string, onEvent: (type: string, data: unknown) => void): () => void {
  const abort = new AbortController();
  let lastEventId: string | undefined;
  const run = async () => {
    while (!abort.signal.aborted) {
      let retryAfterMs = 1_000;
      try {
        const response = await fetch(path, {
          headers: { authorization: `Bearer ${session.token}`, accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
          signal: abort.signal,
        });
        // Too many streams open (this user's other tabs, or the server's): try again when it says.
        if (response.status === 429) retryAfterMs = 1_000 * (Number(response.headers.get('retry-after')) || 1);
        if (!response.ok || !response.body) throw new Error(`live updates answered ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let type = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trim());
              else if (line.startsWith('id:')) lastEventId = line.slice(3).trim();
            }
            if (data.length > 0) onEvent(type, JSON.parse(data.join('\n')));
          }
        }
      } catch {
        if (abort.signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, retryAfterMs));
    }
  };
  void run();
  return () => abort.abort();
}
