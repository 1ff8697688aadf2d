/** How the operations commands (mutuo dlq, mutuo projections) reach the running platform. */
export type PlatformTarget = {
  readonly baseUrl: string;
  /** An admin's bearer token (MUTUO_TOKEN); without one, the development provider's admin, where it runs. */
  readonly token?: string;
};

async function send(target: PlatformTarget, method: 'GET' | 'POST', path: string, token: string | undefined, body?: unknown): Promise<Response> {
  try {
    return await fetch(new URL(path, target.baseUrl), {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new Error(`no Mutuo answers at ${target.baseUrl}: is it running? (set MUTUO_URL to reach another)`);
  }
}

const devTokens = new Map<string, Promise<string>>();

/** The development provider's admin token: embedded and development platforms only. */
function devAdminToken(target: PlatformTarget): Promise<string> {
  let token = devTokens.get(target.baseUrl);
  if (!token) {
    token = send(target, 'POST', '/auth/dev/token', undefined, { user: 'ada' }).then(async (response) => {
      if (!response.ok) throw new Error(`${target.baseUrl} has no development identity provider: set MUTUO_TOKEN to an admin's bearer token`);
      return ((await response.json()) as { accessToken: string }).accessToken;
    });
    devTokens.set(target.baseUrl, token);
  }
  return token;
}

/** One request to the running platform's API as an admin; its problem's detail becomes the error. */
export async function callPlatform<T = unknown>(target: PlatformTarget, method: 'GET' | 'POST', path: string): Promise<T> {
  const response = await send(target, method, path, target.token ?? (await devAdminToken(target)));
  const body = (await response.json()) as T & { detail?: string };
  if (!response.ok) throw new Error(body.detail ?? `${method} ${path} answered ${response.status}`);
  return body;
}
