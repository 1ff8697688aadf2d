import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { injectedBearer, type AuthHeaders, type DemoUserId } from '../../src/security/testing.ts';
import { inflationBombPdf, manyPagesPdf } from '../../src/features/documents/testing.ts';

const MiB = 1_048_576;

type Finding = { kind: string; check: string; passed: boolean; message: string };
type LastCheck = { outcome: 'validated' | 'rejected'; findings: Finding[]; reasons?: string[] };

/** The Document service in an embedded platform, driven over HTTP as an applicant's client would. */
async function openDocumentsPlatform(env: Record<string, string>) {
  const dataDir = await mkdtemp(join(tmpdir(), 'mutuo-documents-'));
  const platform: Platform = await openPlatform(loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0', ...env }), false);
  const url = await platform.server.listen({ port: 0, host: '127.0.0.1' });
  const tokens = new Map<DemoUserId, AuthHeaders>();
  const as = async (user: DemoUserId) => {
    if (!tokens.has(user)) tokens.set(user, await injectedBearer(platform.server, user));
    return tokens.get(user)!;
  };
  const submission = await readFile(new URL('../fixtures/submission.json', import.meta.url), 'utf8');

  const documentsOf = async (id: string, user: DemoUserId = 'giulia') => fetch(`${url}/api/applications/${id}/documents`, { headers: await as(user) });

  async function upload(id: string, kind: string, pdf: Uint8Array, user: DemoUserId = 'giulia'): Promise<{ status: number; body: { code?: string } }> {
    const form = new FormData();
    form.append('kind', kind);
    form.append('file', new Blob([pdf], { type: 'application/pdf' }), `${kind}.pdf`);
    const response = await fetch(`${url}/api/applications/${id}/documents`, { method: 'POST', body: form, headers: await as(user) });
    return { status: response.status, body: (await response.json()) as { code?: string } };
  }

  async function sample(id: string, kind: string): Promise<Uint8Array> {
    const response = await fetch(`${url}/api/sandbox/applications/${id}/documents/${kind}`, { headers: await as('giulia') });
    assert.equal(response.status, 200);
    return new Uint8Array(await response.arrayBuffer());
  }

  return {
    platform,
    url,
    as,
    documentsOf,
    upload,
    sample,
    /** Giulia's new application, once the Document service knows of it. */
    async submit(): Promise<string> {
      const submitted = await fetch(`${url}/api/applications`, {
        method: 'POST',
        body: submission,
        headers: { ...(await as('giulia')), 'content-type': 'application/json' },
      });
      assert.equal(submitted.status, 201);
      const { applicationId } = (await submitted.json()) as { applicationId: string };
      for (;;) {
        const known = await documentsOf(applicationId);
        await known.arrayBuffer();
        if (known.status === 200) return applicationId;
      }
    },
    /** Uploads the sample ID card and appraisal, then `payslip`: the last upload sets off the check of all three. */
    async uploadWithPayslip(id: string, payslip: Uint8Array): Promise<void> {
      for (const [kind, pdf] of [
        ['id_card', await sample(id, 'id_card')],
        ['appraisal', await sample(id, 'appraisal')],
        ['payslip', payslip],
      ] as const) {
        assert.equal((await upload(id, kind, pdf)).status, 202);
      }
    },
    /** The outcome of the check of the application's documents, once there is one. */
    async lastCheck(id: string): Promise<LastCheck> {
      for (;;) {
        const { lastCheck } = (await (await documentsOf(id)).json()) as { lastCheck?: LastCheck };
        if (lastCheck) return lastCheck;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    /** Whether the check of the application's documents is under way: its job was claimed, and it has no outcome yet. */
    async checkInProgress(id: string): Promise<boolean> {
      const [job] = await platform.client.query<{ attempts: number }>(`SELECT attempts FROM mutuo_jobs WHERE queue = 'documents.validate' AND key = $1`, [id]);
      const [verdict] = await platform.client.query(
        `SELECT 1 FROM mutuo_events WHERE stream_id = $1 AND event_type IN ('DocumentsValidated', 'DocumentsRejected')`,
        [`documents-${id}`],
      );
      return job !== undefined && job.attempts > 0 && verdict === undefined;
    },
    close: async () => {
      await platform.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

type DocumentsPlatform = Awaited<ReturnType<typeof openDocumentsPlatform>>;

/** The highest resident memory this process (the server, and this test) has reached so far. */
const peakRssBytes = () => process.resourceUsage().maxRSS * 1_024;

function assertRejectedFor(check: LastCheck, kind: string, code: string, message: string): void {
  assert.equal(check.outcome, 'rejected', JSON.stringify(check));
  const failed = check.findings.filter((finding) => !finding.passed);
  assert.deepEqual(
    failed.map((finding) => [finding.kind, finding.check, finding.message]),
    [[kind, code, message]],
  );
  assert.deepEqual(check.reasons, [message]);
}

describe('the Document service, with its default budgets', () => {
  let documents: DocumentsPlatform;
  const maxUploads = 4;
  before(async () => {
    documents = await openDocumentsPlatform({ DOCUMENTS_MAX_UPLOADS_PER_APPLICATION: String(maxUploads) });
  });
  after(async () => {
    await documents.close();
  });

  it("answers about someone else's application exactly as about one that does not exist, without waiting for either", async () => {
    const giulias = await documents.submit();
    const pdf = await documents.sample(giulias, 'payslip');
    const queries: string[] = [];
    const { client } = documents.platform;
    const query = client.query.bind(client);
    client.query = ((text: string, params?: readonly unknown[]) => {
      queries.push(text);
      return query(text, params);
    }) as typeof client.query;
    try {
      const marco = await documents.as('marco');
      const answers = {
        list: (id: string) => fetch(`${documents.url}/api/applications/${id}/documents`, { headers: marco }),
        upload: async (id: string) => {
          const form = new FormData();
          form.append('kind', 'payslip');
          form.append('file', new Blob([pdf], { type: 'application/pdf' }), 'payslip.pdf');
          return fetch(`${documents.url}/api/applications/${id}/documents`, { method: 'POST', body: form, headers: marco });
        },
        sample: (id: string) => fetch(`${documents.url}/api/sandbox/applications/${id}/documents/payslip`, { headers: marco }),
      };
      for (const [route, ask] of Object.entries(answers)) {
        const answer = async (id: string) => {
          queries.length = 0;
          const response = await ask(id);
          const lookups = queries.filter((text) => text.includes('mutuo_documents_applications')).length;
          return { status: response.status, body: (await response.json()) as { code?: string }, lookups };
        };
        const someoneElses = await answer(giulias);
        const missing = await answer(randomUUID());
        assert.deepEqual(missing, someoneElses, `${route}: an unknown application is told apart from Giulia's`);
        assert.deepEqual([missing.status, missing.body.code, missing.lookups], [404, 'APPLICATION_NOT_FOUND', 0], route);
      }
    } finally {
      client.query = query;
    }
    assert.equal((await documents.documentsOf(giulias)).status, 200, 'Giulia still sees her own');
  });

  it(`keeps at most ${maxUploads} uploads of an application, however many arrive at once`, async () => {
    const id = await documents.submit();
    const pdf = await documents.sample(id, 'id_card');
    const answers = await Promise.all(Array.from({ length: 2 * maxUploads }, () => documents.upload(id, 'id_card', pdf)));
    const refused = answers.filter((answer) => answer.status !== 202);
    assert.equal(answers.length - refused.length, maxUploads);
    assert.deepEqual(new Set(refused.map((answer) => `${answer.status} ${answer.body.code}`)), new Set(['422 DOCUMENTS_UPLOAD_LIMIT_REACHED']));
    const [kept] = await documents.platform.client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM mutuo_events WHERE stream_id = $1 AND event_type = 'DocumentUploaded'`,
      [`documents-${id}`],
    );
    assert.equal(kept?.n, maxUploads);
    const another = await documents.upload(id, 'payslip', await documents.sample(id, 'payslip'));
    assert.deepEqual([another.status, another.body.code], [422, 'DOCUMENTS_UPLOAD_LIMIT_REACHED']);
  });

  it('validates the sample documents, read in a process of their own', async () => {
    const id = await documents.submit();
    await documents.uploadWithPayslip(id, await documents.sample(id, 'payslip'));
    const check = await documents.lastCheck(id);
    assert.equal(check.outcome, 'validated', JSON.stringify(check));
  });

  it('refuses a PDF that unpacks to hundreds of megabytes before reading it, and the server never holds them', async () => {
    const id = await documents.submit();
    const inflatedBytes = 500 * MiB;
    const bomb = await inflationBombPdf(inflatedBytes);
    assert.ok(bomb.length < MiB, `${bomb.length} bytes`);
    const peakBefore = peakRssBytes();
    await documents.uploadWithPayslip(id, bomb);
    const check = await documents.lastCheck(id);
    const grownBytes = peakRssBytes() - peakBefore;
    assert.ok(grownBytes < 100 * MiB, `the server's memory grew by ${Math.round(grownBytes / MiB)} MB while the document was checked`);
    assertRejectedFor(
      check,
      'payslip',
      'UNPACKED_SIZE_WITHIN_LIMIT',
      'the payslip unpacks to more than 100 MB: upload a simpler PDF, such as a scan at a lower resolution',
    );
  });

  it('refuses a PDF of 20,000 pages for its pages, without reading them', async () => {
    const id = await documents.submit();
    await documents.uploadWithPayslip(id, manyPagesPdf(20_000));
    assertRejectedFor(
      await documents.lastCheck(id),
      'payslip',
      'PAGE_COUNT_WITHIN_LIMIT',
      'the payslip has more than 100 pages: upload only the pages asked for',
    );
  });
});

describe('the Document service, reading a document past its time budget', () => {
  let documents: DocumentsPlatform;
  before(async () => {
    // The pages are let through so that the time budget ends the reading of 20,000 of them (over a minute in the server, once).
    documents = await openDocumentsPlatform({ DOCUMENTS_MAX_PAGES: '100000', DOCUMENTS_READ_TIMEOUT_MS: '5000', DOCUMENTS_READ_MEMORY_MB: '4096' });
  });
  after(async () => {
    await documents.close();
  });

  it('answers /health while it reads 20,000 pages, then refuses them for the time they take', async () => {
    const id = await documents.submit();
    await documents.uploadWithPayslip(id, manyPagesPdf(20_000));
    while (!(await documents.checkInProgress(id)));
    for (let i = 0; i < 3; i++) {
      const health = await fetch(`${documents.url}/health`);
      assert.equal(health.status, 200);
      await health.arrayBuffer();
      assert.ok(await documents.checkInProgress(id), `/health was answered only once the check had ended (answer ${i + 1})`);
    }
    assertRejectedFor(await documents.lastCheck(id), 'payslip', 'READ_TIME_WITHIN_LIMIT', 'the payslip could not be read within 5 s: upload a simpler PDF');
  });
});

describe('the Document service, reading a document past its memory budget', () => {
  let documents: DocumentsPlatform;
  const memoryMb = 256;
  before(async () => {
    // The unpacked size is let through so that the memory budget ends the reading of the bomb.
    documents = await openDocumentsPlatform({ DOCUMENTS_MAX_INFLATED_BYTES: String(4_096 * MiB), DOCUMENTS_READ_MEMORY_MB: String(memoryMb) });
  });
  after(async () => {
    await documents.close();
  });

  it("refuses a PDF whose reading takes more memory than its budget, memory the server's process never takes", async () => {
    const id = await documents.submit();
    // Larger than the first describe's: the peak this process reached then does not hide what reading it here would take.
    const bomb = await inflationBombPdf(1_024 * MiB);
    const peakBefore = peakRssBytes();
    await documents.uploadWithPayslip(id, bomb);
    const check = await documents.lastCheck(id);
    const grownBytes = peakRssBytes() - peakBefore;
    assert.ok(grownBytes < memoryMb * MiB, `the server's memory grew by ${Math.round(grownBytes / MiB)} MB while the document was checked`);
    assertRejectedFor(check, 'payslip', 'READ_MEMORY_WITHIN_LIMIT', `the payslip could not be read within ${memoryMb} MB of memory: upload a simpler PDF`);
  });
});
