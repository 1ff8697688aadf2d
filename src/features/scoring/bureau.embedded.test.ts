import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BureauUnavailableError, createBureauClient, type BureauClientOptions, type BureauQuery } from './bureau-client.ts';
import { startBureauSimulator, type BureauSimulator } from './bureau-simulator.ts';
import { sandboxRuleFor, sandboxRules, sandboxRulesMarkdown, sandboxScoreProfile } from './sandbox.ts';

const applicant = (lastName: string, taxCode = 'RSSMRA85T10A562S'): BureauQuery => ({ taxCode, firstName: 'Maria', lastName });

const postJson = (url: string, body: unknown): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('credit bureaus (simulated) and the bureau client', () => {
  let crif: BureauSimulator;
  let experian: BureauSimulator;
  const extraServers: { close: () => Promise<void> }[] = [];

  before(async () => {
    [crif, experian] = await Promise.all([startBureauSimulator({ kind: 'crif' }), startBureauSimulator({ kind: 'experian' })]);
  });

  after(async () => {
    await Promise.all([crif.close(), experian.close(), ...extraServers.map((server) => server.close())]);
  });

  const client = (options: Partial<BureauClientOptions> = {}) =>
    createBureauClient({ primary: crif, secondary: experian, timeoutMs: 1000, retryDelayMs: 10, ...options });

  it('reports a normal applicant from CRIF in band A..C, the same every time', async () => {
    const first = await client().report(applicant('Rossi'));
    const second = await client().report(applicant('  rossi '));
    assert.equal(first.bureau, 'crif');
    assert.equal(first.modelVersion, 'CRIF-SIM-2.3');
    assert.ok(['A', 'B', 'C'].includes(first.band));
    assert.ok(first.score >= 300 && first.score <= 850);
    assert.deepEqual({ band: second.band, score: second.score }, { band: first.band, score: first.score });
    assert.notEqual(second.reportId, first.reportId);
  });

  it('gives an applicant the same band at both bureaus', async () => {
    const bands = new Set<string>();
    // These three tax codes hash to bands A, B and C.
    for (const taxCode of ['RSSMRA85T10A562S', 'FRRLCU75C12L219K', 'SPSNNA70E50F839P']) {
      const fromCrif = await client().report(applicant('Bianchi', taxCode));
      const fromExperian = await client({ primary: experian, secondary: crif }).report(applicant('Bianchi', taxCode));
      assert.equal(fromExperian.bureau, 'experian');
      assert.equal(fromExperian.modelVersion, 'EXP-SIM-7');
      assert.equal(fromExperian.band, fromCrif.band);
      assert.equal(fromCrif.band, sandboxScoreProfile(taxCode, 'score').band);
      bands.add(fromCrif.band);
    }
    assert.deepEqual([...bands].sort(), ['A', 'B', 'C']);
  });

  it('Lowscore: both bureaus report band E', async () => {
    const fromCrif = await client().report(applicant('Lowscore'));
    const fromExperian = await client({ primary: experian, secondary: crif }).report(applicant('LOWSCORE'));
    assert.deepEqual([fromCrif.bureau, fromCrif.band], ['crif', 'E']);
    assert.deepEqual([fromExperian.bureau, fromExperian.band], ['experian', 'E']);
    assert.ok(fromExperian.score <= 449);
  });

  it('Crifdown: CRIF is retried, then the report comes from Experian', async () => {
    const before = crif.requests();
    const report = await client({ attemptsPerBureau: 2 }).report(applicant('Crifdown'));
    assert.equal(report.bureau, 'experian');
    assert.ok(['A', 'B', 'C'].includes(report.band));
    assert.equal(crif.requests() - before, 2);
  });

  it('Crifslow: CRIF times out twice, then the report comes from Experian', async () => {
    const before = crif.requests();
    const report = await client({ timeoutMs: 200 }).report(applicant('Crifslow'));
    assert.equal(report.bureau, 'experian');
    assert.equal(crif.requests() - before, 2);
  });

  it('Bureausdown: every attempt is listed in a BureauUnavailableError', async () => {
    await assert.rejects(client().report(applicant('Bureausdown')), (error: unknown) => {
      assert.ok(error instanceof BureauUnavailableError);
      assert.deepEqual(
        error.attempts.map((attempt) => attempt.bureau),
        ['crif', 'crif', 'experian', 'experian'],
      );
      for (const attempt of error.attempts) assert.match(attempt.error, /503/);
      return true;
    });
  });

  it('errorRate 1 on CRIF: the report comes from Experian', async () => {
    const flaky = await startBureauSimulator({ kind: 'crif', errorRate: 1 });
    extraServers.push(flaky);
    const report = await client({ primary: flaky }).report(applicant('Rossi'));
    assert.equal(report.bureau, 'experian');
    assert.equal(flaky.requests(), 2);
  });

  it('sandbox names take precedence over the random error rate', async () => {
    const flaky = await startBureauSimulator({ kind: 'experian', errorRate: 1, random: () => 0 });
    extraServers.push(flaky);
    const report = await client({ primary: flaky }).report(applicant('Lowscore'));
    assert.deepEqual([report.bureau, report.band], ['experian', 'E']);
  });

  it('answers a bad body with 400, in each bureau’s own error shape', async () => {
    const crifBad = await postJson(`${crif.url}/v1/credit-reports`, { fiscalCode: 'RSSMRA85T10A562S' });
    assert.equal(crifBad.status, 400);
    assert.equal(((await crifBad.json()) as { error: string }).error, 'BAD_REQUEST');

    const experianBad = await postJson(`${experian.url}/consumer/score`, { taxId: 'RSSMRA85T10A562S' });
    assert.equal(experianBad.status, 400);
    assert.equal(((await experianBad.json()) as { fault: { code: string } }).fault.code, 'INVALID_REQUEST');

    const notJson = await fetch(`${crif.url}/v1/credit-reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    assert.equal(notJson.status, 400);
  });

  it('speaks two different APIs', async () => {
    const crifBody = await (await postJson(`${crif.url}/v1/credit-reports`, { fiscalCode: 'RSSMRA85T10A562S', firstName: 'Maria', lastName: 'Rossi' })).json();
    assert.deepEqual(Object.keys(crifBody as object).sort(), ['model', 'reportId', 'riskClass', 'score']);
    const experianBody = await (
      await postJson(`${experian.url}/consumer/score`, { consumer: { taxId: 'RSSMRA85T10A562S', surname: 'Rossi', givenName: 'Maria' } })
    ).json();
    assert.deepEqual(Object.keys(experianBody as object).sort(), ['grade', 'id', 'riskScore', 'scorecard']);
  });

  it('answers with latency configured', async () => {
    const slow = await startBureauSimulator({ kind: 'crif', latencyMs: 50 });
    extraServers.push(slow);
    const report = await client({ primary: slow }).report(applicant('Rossi'));
    assert.equal(report.bureau, 'crif');
  });

  it('a 4xx is not retried at the same bureau, but the other bureau is asked', async () => {
    // A CRIF client pointed at the Experian server gets 404 for the CRIF path.
    const before = experian.requests();
    const report = await client({ primary: { kind: 'crif', url: experian.url }, secondary: experian }).report(applicant('Rossi'));
    assert.equal(report.bureau, 'experian');
    assert.equal(experian.requests() - before, 2);
  });

  it('a malformed body is retried, then the other bureau is asked', async () => {
    let hits = 0;
    const broken = createServer((_request, response) => {
      hits += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end(hits === 1 ? '{"score":' : '{"score":"high"}');
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    extraServers.push({ close: () => new Promise<void>((resolve) => broken.close(() => resolve())) });
    const { port } = broken.address() as AddressInfo;

    const report = await client({ primary: { kind: 'crif', url: `http://127.0.0.1:${port}` } }).report(applicant('Rossi'));
    assert.equal(report.bureau, 'experian');
    assert.equal(hits, 2);
  });

  it('closes without waiting for a held Crifslow request', async () => {
    const held = await startBureauSimulator({ kind: 'crif' });
    const pending = postJson(`${held.url}/v1/credit-reports`, { fiscalCode: 'RSSMRA85T10A562S', firstName: 'Maria', lastName: 'Crifslow' }).then(
      (response) => response.status,
      () => 'connection closed',
    );
    while (held.requests() === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await held.close();
    // Either the server cut the connection or answered as it shut down: anything but a report.
    assert.notEqual(await pending, 200);
  });
});

describe('sandbox table', () => {
  it('matches last names trimmed and case-insensitively, exactly', () => {
    assert.equal(sandboxRuleFor('  crifDOWN ')?.lastName, 'Crifdown');
    assert.equal(sandboxRuleFor('Crifdowns'), undefined);
    assert.equal(sandboxRuleFor('Rossi'), undefined);
  });

  it('renders every rule into the Markdown table', () => {
    const markdown = sandboxRulesMarkdown();
    for (const rule of sandboxRules) assert.ok(markdown.includes(`\`${rule.lastName}\``));
  });
});
