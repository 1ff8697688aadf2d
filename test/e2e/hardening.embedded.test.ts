import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { injectedBearer } from '../../src/security/testing.ts';
import { toProblem } from '../../src/platform/http/problem.ts';
import { webDirectory } from '../../src/platform/http/web.ts';

const simulation = { amount: 200_000, termYears: 25, annualRate: 3.2 };

describe('hardened HTTP', () => {
  let dataDir: string;
  let platform: Platform;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-http-'));
    const config = loadConfig({
      MUTUO_DATA_DIR: dataDir,
      PORT: '0',
      RATE_LIMIT_PUBLIC_PER_MINUTE: '5',
      CORS_ORIGINS: 'https://portal.bank.example',
      HTTP_BODY_LIMIT_BYTES: '2048',
    });
    platform = await openPlatform(config, false, { services: ['query'] });
  });
  after(async () => {
    await platform.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('sends the security headers on every answer: an API answer those of JSON, a document those of a page', async () => {
    const response = await platform.server.inject({ method: 'GET', url: '/api/rates' });
    // A JSON answer loads nothing and is never framed, sniffed or fetched over plain HTTP.
    assert.equal(response.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'");
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
    assert.match(String(response.headers['strict-transport-security']), /max-age=\d+/);
    assert.equal(response.headers['x-frame-options'], 'DENY');
    // What only a document uses is not sent with JSON.
    for (const documentOnly of ['referrer-policy', 'cross-origin-opener-policy', 'cross-origin-resource-policy'])
      assert.equal(response.headers[documentOnly], undefined, documentOnly);
    // The API's documentation is a page: its scripts and styles come from this origin.
    const documentation = await platform.server.inject({ method: 'GET', url: '/docs', remoteAddress: '203.0.113.60' });
    assert.match(String(documentation.headers['content-security-policy']), /default-src 'self'.*frame-ancestors 'none'/);
    assert.equal(documentation.headers['referrer-policy'], 'no-referrer');
    assert.equal(documentation.headers['x-content-type-options'], 'nosniff');
    // And on refusals too.
    const refused = await platform.server.inject({ method: 'GET', url: '/api/me' });
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.headers['x-content-type-options'], 'nosniff');
    // And where no route matches.
    const unknown = await platform.server.inject({ method: 'GET', url: '/api/no-such-thing', headers: { 'x-correlation-id': 'trace-404' } });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.headers['x-content-type-options'], 'nosniff');
    assert.equal(unknown.headers['x-correlation-id'], 'trace-404');
    assert.equal(response.headers['x-powered-by'], undefined);
  });

  it('rate-limits the public routes by client, with a problem answer, and not the authenticated ones', async () => {
    const answers = [];
    for (let i = 0; i < 7; i++)
      answers.push(await platform.server.inject({ method: 'POST', url: '/api/simulations', payload: simulation, remoteAddress: '198.51.100.7' }));
    assert.deepEqual(
      answers.map((answer) => answer.statusCode),
      [200, 200, 200, 200, 200, 429, 429],
    );
    assert.equal(answers[5]!.json<{ code: string }>().code, 'RATE_LIMITED');
    assert.match(String(answers[5]!.headers['content-type']), /^application\/problem\+json/);
    assert.ok(Number(answers[5]!.headers['retry-after']) > 0);
    // Another client is counted apart.
    assert.equal(
      (await platform.server.inject({ method: 'POST', url: '/api/simulations', payload: simulation, remoteAddress: '198.51.100.8' })).statusCode,
      200,
    );
    const operator = await injectedBearer(platform.server, 'olivia');
    for (let i = 0; i < 8; i++) {
      assert.equal((await platform.server.inject({ method: 'GET', url: '/api/me', headers: operator, remoteAddress: '198.51.100.7' })).statusCode, 200);
    }
  });

  it('serves the web pages to anyone, with the security headers, and counts them as public', {
    skip: !existsSync(webDirectory) && 'the pages are not built (npm run build:web)',
  }, async () => {
    const root = await platform.server.inject({ method: 'GET', url: '/', remoteAddress: '203.0.113.50' });
    assert.equal(root.statusCode, 302);
    assert.equal(root.headers.location, '/app/');
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await platform.server.inject({ method: 'GET', url: '/app/', remoteAddress: '203.0.113.51' }));
    assert.deepEqual(
      answers.map((answer) => answer.statusCode),
      [200, 200, 200, 200, 200, 429],
    );
    assert.match(String(answers[0]!.headers['content-type']), /^text\/html/);
    assert.match(String(answers[0]!.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(answers[0]!.headers['referrer-policy'], 'no-referrer');
    assert.equal(answers[0]!.headers['cross-origin-opener-policy'], 'same-origin');
    // A page that is not there still answers as a page would.
    const missing = await platform.server.inject({ method: 'GET', url: '/app/no-such-page.js', remoteAddress: '203.0.113.52' });
    assert.equal(missing.statusCode, 404);
    assert.match(String(missing.headers['content-security-policy']), /default-src 'self'/);
  });

  it('refuses a body over the limit before reading it all', async () => {
    const response = await platform.server.inject({
      method: 'POST',
      url: '/api/simulations',
      payload: { ...simulation, padding: 'x'.repeat(4096) },
      remoteAddress: '203.0.113.1',
    });
    assert.equal(response.statusCode, 413);
    assert.equal(response.json<{ code: string }>().code, 'BODY_TOO_LARGE');
  });

  it('answers cross-origin calls from the configured origins only', async () => {
    const preflight = (origin: string) =>
      platform.server.inject({
        method: 'OPTIONS',
        url: '/api/simulations',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
        remoteAddress: '203.0.113.2',
      });
    const allowed = await preflight('https://portal.bank.example');
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://portal.bank.example');
    const refused = await preflight('https://evil.example');
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
  });

  it('serves the metrics on the API port to admins and monitoring systems only', async () => {
    const scrape = async (headers: Record<string, string>) => platform.server.inject({ method: 'GET', url: '/metrics', headers });
    assert.equal((await scrape({})).statusCode, 401);
    assert.equal((await scrape(await injectedBearer(platform.server, 'olivia'))).statusCode, 403);
    for (const user of ['prometheus', 'ada'] as const) {
      const scraped = await scrape(await injectedBearer(platform.server, user));
      assert.equal(scraped.statusCode, 200, user);
      assert.match(String(scraped.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    }
  });

  it('never shows a stack or an internal message to the caller', () => {
    const problem = toProblem(new Error('connect ECONNREFUSED 10.0.0.5:5432 at Pool.connect (/srv/app/node_modules/pg/lib/pool.js:45)'));
    assert.equal(problem.status, 500);
    assert.doesNotMatch(JSON.stringify(problem), /ECONNREFUSED|pool\.js|10\.0\.0\.5/);
  });
});

describe('metrics on a port of their own (METRICS_PORT)', () => {
  let dataDir: string;
  let platform: Platform;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-metrics-'));
    platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', METRICS_PORT: '0' }), false, { services: ['projector'] });
  });
  after(async () => {
    await platform.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves them there to a scraper without a token, and not on the API port', async () => {
    assert.match(String(platform.metricsUrl), /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const scraped = await fetch(platform.metricsUrl!);
    assert.equal(scraped.status, 200);
    assert.match(await scraped.text(), /mutuo_projection_position\{projection="customer-view"\}/);
    assert.equal((await fetch(platform.metricsUrl!.replace(/\/metrics$/, '/api/me'))).status, 404, 'nothing else is served there');
    const onApiPort = await platform.server.inject({ method: 'GET', url: '/metrics', headers: await injectedBearer(platform.server, 'ada') });
    assert.equal(onApiPort.statusCode, 404);
  });
});
