import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { webDirectory } from '../../src/platform/http/web.ts';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { selectStream } from '../../src/platform/eventstore/store.ts';
import { messageHeaders, toEventMessage } from '../../src/platform/messaging/message.ts';
import { storeApplicationOfUnknownVersion } from '../../src/platform/projections/projector.contract.ts';
import { sealingStore } from '../../src/platform/eventstore/testing.ts';
import { injectedBearer } from '../../src/security/testing.ts';

/**
 * The pages in a real browser (the system Chromium, driven by playwright-core) against the
 * whole platform on the embedded default. CI installs Chromium and sets
 * MUTUO_REQUIRE_BROWSER=1, so that there a missing browser fails instead of skipping.
 */
const chromiumPath = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));
const required = process.env.MUTUO_REQUIRE_BROWSER === '1';
const submission = JSON.parse(readFileSync(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const skip = chromiumPath && existsSync(webDirectory) ? false : 'no Chromium, or the pages are not built (npm run build:web)';
if (skip && required) throw new Error(`the browser tests must run here, but: ${skip}`);

describe('the pages, in a browser', { skip }, () => {
  let dataDir: string;
  let platform: Platform;
  let url: string;
  let browser: Browser;
  const consoleErrors: string[] = [];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-web-'));
    platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0' }), false);
    url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath: chromiumPath!, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await platform?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A browser of its own for one user (its own session storage), signed in; console errors are collected. */
  async function signedIn(user: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (message) => {
      // The browser logs every 4xx answer as an error; the one this journey provokes (409) is expected.
      const expected = message.text().includes('responded with a status of 409');
      if (message.type() === 'error' && !expected) consoleErrors.push(`${user}: ${message.text()}`);
    });
    page.on('pageerror', (error) => consoleErrors.push(`${user}: ${error.message}`));
    await page.goto(`${url}/`);
    await page.getByTestId(`login-${user}`).click();
    await page.getByTestId('who').waitFor();
    return { context, page };
  }

  it('an applicant submits and uploads, an operator finds the application and approves the income (after a 409), and the applicant sees it approved without a reload', async () => {
    const applicant = await signedIn('giulia');
    const { page } = applicant;
    const lastName = `Bianchi${Date.now() % 100_000}`;
    await page.locator('input[name="applicant.firstName"]').fill('Giulia');
    await page.locator('input[name="applicant.lastName"]').fill(lastName);
    await page.locator('input[name="applicant.email"]').fill('giulia@example.com');
    await page.locator('input[name="income.monthlyNet"]').fill('3200');
    await page.locator('input[name="property.value"]').fill('300.000');
    // Amounts are read the Italian way, and shown as read before anything is sent: a dot
    // separates thousands, so "200000.50" is refused rather than guessed, and "200.000" is 200,000 €.
    await page.locator('input[name="loan.amount"]').fill('200000.50');
    assert.match(await page.getByTestId('read-loan.amount').innerText(), /write the cents after a comma/);
    await page.locator('input[name="loan.amount"]').fill('200.000');
    assert.match(await page.getByTestId('read-loan.amount').innerText(), /^=\s*200\.000,00\s*€$/);
    // A tax code with a wrong check character is refused by the page as the server would.
    await page.locator('input[name="applicant.taxCode"]').fill('BNCGLI90C55F205A');
    await page.getByTestId('submit').click();
    assert.match(await page.getByTestId('error-applicant.taxCode').innerText(), /check/i);
    await page.locator('input[name="applicant.taxCode"]').fill('BNCGLI90C55F205Z');
    const posted = page.waitForRequest((request) => request.method() === 'POST' && new URL(request.url()).pathname === '/api/applications');
    await page.getByTestId('submit').click();
    const sent = (await posted).postDataJSON() as { loan: { amount: number }; property: { value: number } };
    assert.deepEqual([sent.loan.amount, sent.property.value], [200_000, 300_000]);
    await page.getByTestId('status').waitFor();
    assert.match(await page.locator('.application').first().innerText(), /200\.000,00\s*€ over 25 years/);
    assert.equal(await page.getByTestId('status').innerText(), 'processing');

    // The operator finds it by surname and opens it, at its first version.
    const operator = await signedIn('olivia');
    await operator.page.getByTestId('search').fill(lastName);
    await operator.page.locator('[data-testid^="result-"]').first().click();
    await operator.page.getByTestId('audit').locator('tbody tr').first().waitFor();

    // Meanwhile the applicant locks the rate: the operator's page is one version behind.
    await page.getByTestId('lock-rate').click();
    await page.locator('.steps li.done', { hasText: 'Rate locked' }).waitFor();

    await operator.page.getByTestId('approve-income-verifiedMonthlyNet').fill('3200');
    await operator.page.getByTestId('approve-income').click();
    const conflict = await operator.page.getByTestId('notice').innerText();
    assert.match(conflict, /changed while you were looking/);
    assert.match(conflict, /Meanwhile: InterestRateLocked by dev:giulia/, 'says what changed meanwhile');
    await operator.page.getByTestId('approve-income').click();
    await operator.page.getByTestId('notice').filter({ hasText: 'Income approved.' }).waitFor();

    // A rate with three decimals, typed the Italian way, reaches the applicant's page as it was typed.
    await operator.page.getByTestId('audit').locator('tbody tr').nth(2).waitFor();
    await operator.page.getByTestId('change-rate-annualRate').fill('3,875');
    assert.match(await operator.page.getByTestId('read-change-rate-annualRate').innerText(), /^=\s*3,875 %$/);
    await operator.page.getByTestId('change-rate-reason').fill('loyal customer');
    await operator.page.getByTestId('change-rate').click();
    await operator.page.getByTestId('notice').filter({ hasText: 'Rate changed.' }).waitFor();
    await page.locator('.application', { hasText: 'at 3.875 %' }).waitFor();

    // The documents, with their progress; then the flow runs to the decision.
    for (const kind of ['id_card', 'payslip', 'appraisal']) {
      await page.getByTestId(`sample-${kind}`).click();
      await page.getByTestId(`progress-${kind}`).filter({ hasText: 'received' }).waitFor();
    }
    await page.getByTestId('status').filter({ hasText: 'approved' }).waitFor({ timeout: 30_000 });
    assert.ok((await page.getByTestId('timeline').innerText()).includes('ApplicationApproved'));

    // Time travel: the operator sees the application as it was after its first event.
    await operator.page.getByTestId('audit').locator('tbody tr').first().click();
    await operator.page.locator('.state', { hasText: '"version": 1' }).waitFor();

    // The simulator: the installment and the APRC, and the amortization drawn.
    await page.getByTestId('tab-simulator').click();
    await page.locator('input[name="annualRate"]').fill('3,875');
    assert.match(await page.getByTestId('read-annualRate').innerText(), /^=\s*3,875 %$/);
    await page.getByTestId('simulate').click();
    assert.match(await page.getByTestId('simulation').innerText(), /APRC/);
    assert.match(await page.getByTestId('simulation').innerText(), /3\.875 %\s*rate/);
    await page.getByTestId('chart-amortization').locator('svg').waitFor();

    await applicant.context.close();
    await operator.context.close();
    assert.deepEqual(consoleErrors, []);
  });

  it('an admin inspects a dead letter and redrives it, and it leaves the open ones', async () => {
    // A real message of the platform, dead-lettered for the Notification service as a failing handler would leave it.
    const submitted = await platform.server.inject({
      method: 'POST',
      url: '/api/applications',
      headers: await injectedBearer(platform.server, 'marco'),
      payload: submission,
    });
    assert.equal(submitted.statusCode, 201, submitted.body);
    const applicationId = submitted.json<{ applicationId: string }>().applicationId;
    const [stored] = await selectStream(platform.client, `application-${applicationId}`);
    const body = toEventMessage(stored!);
    const [row] = await platform.client.query<{ id: string }>(
      `INSERT INTO mutuo_dead_letters (consumer, partition_key, event_id, event_type, reason, error, attempts, message)
       VALUES ('notification', $1, $2, $3, 'HANDLER_FAILED', 'the SMTP server was away', 5, $4::jsonb) RETURNING id::text AS id`,
      [applicationId, stored!.eventId, stored!.type, JSON.stringify({ messageId: stored!.eventId, headers: messageHeaders(body), body })],
    );
    const id = row!.id;

    const admin = await signedIn('ada');
    await admin.page.getByTestId(`dead-letter-${id}`).waitFor();
    assert.equal(await admin.page.getByTestId('health').innerText(), 'ok');
    assert.match(await admin.page.getByTestId('services').innerText(), /notification: ok/);
    await admin.page.getByTestId(`redrive-${id}`).click();
    assert.match(await admin.page.getByTestId('notice').innerText(), new RegExp(`Redrive of dead letter ${id} asked`));
    await admin.page.getByTestId(`dead-letter-${id}`).waitFor({ state: 'detached', timeout: 15_000 });
    const [after] = await platform.client.query<{ status: string }>('SELECT status FROM mutuo_dead_letters WHERE id = $1', [Number(id)]);
    assert.equal(after?.status, 'redriven');
    await admin.context.close();
    assert.deepEqual(consoleErrors, []);
  });

  it('an admin sees the events a read model parked, redrives them in vain, then discards them', async () => {
    const applicationId = await storeApplicationOfUnknownVersion(sealingStore(platform.client));
    platform.wake();

    const admin = await signedIn('ada');
    const parked = admin.page.getByTestId('parked-events');
    await parked.getByText(`application-${applicationId}`).first().waitFor();
    assert.match(await parked.innerText(), /customer-view.*MortgageApplicationSubmitted.*EventDecodeError: MortgageApplicationSubmitted has no version 99/);
    assert.equal(await admin.page.getByTestId('parked-count-customer-view').innerText(), '1');
    await admin.page.getByTestId('redrive-parked-customer-view').click();
    await admin.page.getByText('customer-view: 0 parked events applied, 1 parked again.').waitFor();
    await admin.page.getByTestId('discard-parked-customer-view').click();
    await admin.page.getByText('customer-view: 1 parked events discarded.').waitFor();
    // The count is read again after the message shows: wait for it rather than read it at once.
    await admin.page.getByTestId('parked-count-customer-view').filter({ hasText: /^0$/ }).waitFor();
    await admin.context.close();
    assert.deepEqual(consoleErrors, []);
  });

  it('an executive reads the dashboard: the figures, and the charts drawn beside them', async () => {
    const executive = await signedIn('elena');
    await executive.page.getByTestId('totals').waitFor();
    assert.match(await executive.page.getByTestId('totals').innerText(), /\d+\s+submitted/);
    await executive.page.getByTestId('chart-months').locator('svg').waitFor();
    await executive.page.getByTestId('chart-regions').locator('svg').waitFor();
    assert.match(await executive.page.getByTestId('regions').innerText(), /Lombardia/);
    await executive.context.close();
    assert.deepEqual(consoleErrors, []);
  });

  it('signing out ends the session on the server too: its token is refused from then on', async () => {
    const { context, page } = await signedIn('elena');
    const token = (await page.evaluate("JSON.parse(sessionStorage.getItem('mutuo.session')).token")) as string;
    const me = () => platform.server.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${token}` } });
    assert.equal((await me()).statusCode, 200);
    await page.getByTestId('sign-out').click();
    await page.getByTestId('login-elena').waitFor();
    assert.equal((await me()).statusCode, 401);
    await context.close();
    assert.deepEqual(consoleErrors, []);
  });
});
