import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { devBearer, type AuthHeaders, type DemoUserId } from '../../src/security/testing.ts';

const submission = JSON.parse(await readFile(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as Record<string, unknown>;

describe('live streams are capped per caller and per process', () => {
  let dataDir: string;
  let platform: Platform;
  let url: string;
  const open: AbortController[] = [];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-live-'));
    const config = loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', LIVE_STREAMS_PER_CALLER: '2', LIVE_STREAMS_PER_PROCESS: '3' });
    platform = await openPlatform(config, false, { services: ['application', 'query'] });
    url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    for (const stream of open) stream.abort();
    await platform.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const submit = async (headers: AuthHeaders) => {
    const response = await fetch(`${url}/api/applications`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(submission),
    });
    assert.equal(response.status, 201);
    return ((await response.json()) as { applicationId: string }).applicationId;
  };
  /** Opens a stream and, once it answers 200, keeps it open until the test lets go of it; a refusal is read whole. */
  const follow = async (headers: AuthHeaders, applicationId: string) => {
    const abort = new AbortController();
    const response = await fetch(`${url}/api/applications/${applicationId}/live`, { headers, signal: abort.signal });
    if (response.status === 200) open.push(abort);
    return {
      response,
      problem: response.status === 200 ? undefined : ((await response.json()) as { code: string; status: number }),
      close: () => abort.abort(),
    };
  };
  /** A closed stream frees its slot as soon as the server sees it closed, a moment after the client let go. */
  const followOnceFreed = async (headers: AuthHeaders, applicationId: string) => {
    for (let attempt = 0; ; attempt++) {
      const stream = await follow(headers, applicationId);
      if (stream.response.status !== 429 || attempt === 100) return stream;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it('answers 429 with Retry-After past either cap, and frees a slot when a stream closes', async () => {
    const as = async (user: DemoUserId) => devBearer(url, user);
    const giulia = await as('giulia');
    const marco = await as('marco');
    const giulias = await submit(giulia);
    const marcos = await submit(marco);

    const first = await follow(giulia, giulias);
    const second = await follow(giulia, giulias);
    assert.deepEqual([first.response.status, second.response.status], [200, 200]);
    // A third of Giulia's: past the cap of one caller, while the process has room.
    const third = await follow(giulia, giulias);
    assert.equal(third.response.status, 429);
    assert.match(String(third.response.headers.get('content-type')), /^application\/problem\+json/);
    assert.ok(Number(third.response.headers.get('retry-after')) > 0);
    assert.equal(third.problem!.code, 'TOO_MANY_STREAMS');
    assert.match(JSON.stringify(third.problem), /one caller/);

    // Marco's first fills the process; his second is past the process's cap, not his own.
    assert.equal((await follow(marco, marcos)).response.status, 200);
    const refused = await follow(marco, marcos);
    assert.equal(refused.response.status, 429);
    assert.match(JSON.stringify(refused.problem), /this server/);
    assert.ok(Number(refused.response.headers.get('retry-after')) > 0);

    // Giulia closes one: Marco gets its slot.
    first.close();
    assert.equal((await followOnceFreed(marco, marcos)).response.status, 200);
    assert.equal((await follow(giulia, giulias)).response.status, 429, 'the process is full again');
  });
});
