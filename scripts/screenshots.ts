/**
 * Screenshots of each page, for the README: the whole platform on the embedded default in
 * a temporary folder, a few applications driven through the flow, then the system
 * Chromium (playwright-core) signed in as each role.
 *
 *   npm run screenshots            # writes docs/screenshots/*.png
 *
 * CHROMIUM_PATH picks the browser (default /usr/bin/chromium).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { openPlatform } from '../src/app/platform.ts';
import { loadConfig } from '../src/app/config.ts';
import { injectedBearer, type DemoUserId } from '../src/security/testing.ts';
import { otherValidTaxCode } from '../src/features/documents/sample-pdfs.ts';

const output = new URL('../docs/screenshots/', import.meta.url);
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath}: install Debian's chromium or set CHROMIUM_PATH`);
const submission = JSON.parse(readFileSync(new URL('../test/fixtures/submission.json', import.meta.url), 'utf8')) as {
  applicant: Record<string, string>;
  property: Record<string, unknown>;
  loan: Record<string, unknown>;
};

const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-screenshots-'));
const platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0' }), false);
const url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
try {
  await mkdir(output, { recursive: true });
  const headers = await injectedBearer(platform.server, 'giulia');
  const inject = async (method: 'GET' | 'POST', path: string, payload?: unknown) => {
    const response = await platform.server.inject({ method, url: path, headers, ...(payload !== undefined ? { payload: payload as object } : {}) });
    if (response.statusCode >= 400) throw new Error(`${method} ${path}: ${response.statusCode} ${response.body}`);
    return response;
  };
  // Applications in a few regions, most of them taken to approval (documents and the rate lock).
  process.stdout.write('seeding applications');
  const people = [
    ['Bianchi', 'Lombardia', 200_000],
    ['Esposito', 'Campania', 150_000],
    ['Romano', 'Lazio', 240_000],
    ['Colombo', 'Lombardia', 180_000],
    ['Ricci', 'Toscana', 120_000],
    ['Lowscore', 'Veneto', 90_000],
  ] as const;
  let giulias = '';
  let taxCode = submission.applicant.taxCode!;
  for (const [lastName, region, amount] of people) {
    // A person each: another valid tax code for each.
    taxCode = otherValidTaxCode(taxCode);
    const submitted = await inject('POST', '/api/applications', {
      ...submission,
      applicant: { ...submission.applicant, lastName, taxCode },
      property: { ...submission.property, region, value: amount * 1.6 },
      loan: { ...submission.loan, amount },
    });
    const { applicationId } = submitted.json<{ applicationId: string }>();
    giulias ||= applicationId;
    if (lastName === 'Lowscore') continue;
    for (const kind of ['id_card', 'payslip', 'appraisal']) {
      let sample = await platform.server.inject({ method: 'GET', url: `/api/sandbox/applications/${applicationId}/documents/${kind}`, headers });
      for (let tries = 0; sample.statusCode === 404 && tries < 100; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        sample = await platform.server.inject({ method: 'GET', url: `/api/sandbox/applications/${applicationId}/documents/${kind}`, headers });
      }
      const form = new FormData();
      form.append('kind', kind);
      form.append('file', new Blob([sample.rawPayload], { type: 'application/pdf' }), `${kind}.pdf`);
      const uploaded = await fetch(`${url}/api/applications/${applicationId}/documents`, { method: 'POST', body: form, headers });
      // Closed already when the credit check refused it: nothing more to send.
      if (uploaded.status === 422) break;
      if (uploaded.status !== 202) throw new Error(`upload: ${uploaded.status} ${await uploaded.text()}`);
    }
    // Refused (422) when the application was rejected meanwhile.
    await platform.server.inject({ method: 'POST', url: `/api/applications/${applicationId}/rate-lock`, headers, payload: {} });
    process.stdout.write('.');
  }
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  console.log(' done');

  const shoot = async (user: DemoUserId | undefined, name: string, action: (page: Page) => Promise<void>) => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 820 } });
    const page = await context.newPage();
    // The applicant's portal remembers the applications this browser submitted.
    if (user === 'giulia')
      await context.addInitScript({ content: `localStorage.setItem('mutuo.applications.dev:giulia', ${JSON.stringify(JSON.stringify([giulias]))})` });
    await page.goto(`${url}/`);
    if (user) {
      await page.getByTestId(`login-${user}`).click();
      await page.getByTestId('who').waitFor();
    }
    await action(page);
    await page.screenshot({ path: new URL(`${name}.png`, output).pathname, fullPage: true });
    console.log(`docs/screenshots/${name}.png`);
    await context.close();
  };

  await shoot(undefined, 'login', async (page) => void (await page.getByTestId('login-giulia').waitFor()));
  await shoot('giulia', 'applicant-application', async (page) => {
    await page.getByTestId('status').waitFor();
    await page.getByTestId('timeline').locator('li').first().waitFor();
  });
  await shoot('giulia', 'applicant-form', async (page) => {
    await page.getByRole('button', { name: 'New application' }).click();
    await page.locator('input[name="applicant.taxCode"]').fill('BNCGLI90C55F205A');
    await page.getByTestId('submit').click();
    await page.getByTestId('error-applicant.taxCode').waitFor();
  });
  await shoot('giulia', 'simulator', async (page) => {
    await page.getByTestId('tab-simulator').click();
    await page.getByTestId('simulate').click();
    await page.getByTestId('chart-amortization').locator('svg').waitFor();
  });
  await shoot('olivia', 'operator-application', async (page) => {
    await page.getByTestId('search').fill('Bianchi');
    await page.locator('[data-testid^="result-"]').first().click();
    await page.getByTestId('audit').locator('tbody tr').nth(2).waitFor();
  });
  await shoot('elena', 'executive-dashboard', async (page) => {
    await page.getByTestId('chart-months').locator('svg').waitFor();
    await page.getByTestId('chart-regions').locator('svg').waitFor();
  });
  await shoot('ada', 'operations', async (page) => void (await page.getByTestId('projections').locator('tbody tr').first().waitFor()));
} finally {
  await browser.close();
  await platform.close();
  await rm(dataDir, { recursive: true, force: true });
}
