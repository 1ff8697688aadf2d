import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { DomainError } from '../../domain/errors.ts';
import { SealError, sealBytes, unsealBytes } from '../../privacy/sealing.ts';
import { createDocumentFileStore } from './file-store.ts';

const pdfBytes = (body: string): Uint8Array => new TextEncoder().encode(`%PDF-1.7\n${body}\n%%EOF\n`);
const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function rejectsWithCode(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof DomainError, String(error));
    assert.equal(error.code, code);
    return true;
  };
}

describe('document file store', () => {
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'mutuo-documents-'));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('stores a file under its application and sha256, and reads it back', async () => {
    const store = createDocumentFileStore(directory);
    const applicationId = randomUUID();
    const bytes = pdfBytes('payslip');
    const stored = await store.save(applicationId, bytes);
    assert.deepEqual(stored, {
      sha256: sha256Of(bytes),
      sizeBytes: bytes.byteLength,
      path: join(directory, applicationId, `${sha256Of(bytes)}.pdf`),
    });
    assert.deepEqual(new Uint8Array(await readFile(stored.path)), bytes);
    assert.deepEqual(await store.read(applicationId, stored.sha256), bytes);
    assert.deepEqual(await store.read(applicationId.toUpperCase(), stored.sha256.toUpperCase()), bytes);
  });

  it('is idempotent and leaves no temporary file behind', async () => {
    const store = createDocumentFileStore(directory);
    const applicationId = randomUUID();
    const bytes = pdfBytes('appraisal');
    const first = await store.save(applicationId, bytes);
    const second = await store.save(applicationId, bytes);
    const concurrent = await Promise.all([1, 2, 3, 4].map(() => store.save(applicationId, pdfBytes('id card'))));
    assert.deepEqual(second, first);
    assert.equal(new Set(concurrent.map((saved) => saved.path)).size, 1);
    const expected = [first.path, concurrent[0]!.path].map((path) => basename(path)).sort();
    assert.deepEqual((await readdir(join(directory, applicationId))).sort(), expected);
  });

  it('keeps the same content of two applications apart', async () => {
    const store = createDocumentFileStore(directory);
    const [a, b] = [randomUUID(), randomUUID()];
    const bytes = pdfBytes('shared');
    const savedA = await store.save(a, bytes);
    const savedB = await store.save(b, bytes);
    assert.equal(savedA.sha256, savedB.sha256);
    assert.notEqual(savedA.path, savedB.path);
  });

  it('rewrites a file whose size does not match its name', async () => {
    const store = createDocumentFileStore(directory);
    const applicationId = randomUUID();
    const bytes = pdfBytes('to be damaged');
    const stored = await store.save(applicationId, bytes);
    await writeFile(stored.path, 'truncated');
    await assert.rejects(store.read(applicationId, stored.sha256), /does not match its sha256/);
    await store.save(applicationId, bytes);
    assert.deepEqual(await store.read(applicationId, stored.sha256), bytes);
  });

  it('writes what the cipher seals and reads back what it opens, keyed by the content before sealing', async () => {
    const key = randomBytes(32);
    const subjectId = randomUUID();
    const cipher = {
      seal: async (_applicationId: string, bytes: Uint8Array) => sealBytes(key, subjectId, bytes),
      open: async (_applicationId: string, bytes: Uint8Array) => unsealBytes(key, bytes),
    };
    const store = createDocumentFileStore(directory, cipher);
    const applicationId = randomUUID();
    const bytes = pdfBytes('Giulia Bianchi BNCGLI90C55F205Z');
    const stored = await store.save(applicationId, bytes);
    assert.equal(stored.sha256, sha256Of(bytes));
    const onDisk = await readFile(stored.path);
    assert.equal(onDisk.indexOf('Bianchi'), -1, 'the file on disk is ciphertext');
    assert.deepEqual(new Uint8Array(await store.read(applicationId, stored.sha256)), bytes);
    // Saved again: found there already, not written twice.
    await store.save(applicationId, bytes);
    assert.deepEqual(await readFile(stored.path), onDisk);
    await assert.rejects(
      createDocumentFileStore(directory, { ...cipher, open: async (_id, sealed) => unsealBytes(randomBytes(32), sealed) }).read(applicationId, stored.sha256),
      SealError,
    );
  });

  it('removes every file of an application, and removing none is nothing', async () => {
    const store = createDocumentFileStore(directory);
    const applicationId = randomUUID();
    const kept = randomUUID();
    const first = await store.save(applicationId, pdfBytes('one'));
    await store.save(applicationId, pdfBytes('two'));
    const other = await store.save(kept, pdfBytes('three'));
    await store.removeAll(applicationId);
    await assert.rejects(store.read(applicationId, first.sha256), rejectsWithCode('DOCUMENT_NOT_FOUND'));
    assert.ok(!(await readdir(directory)).includes(applicationId));
    assert.deepEqual(await store.read(kept, other.sha256), pdfBytes('three'));
    await store.removeAll(applicationId);
    await store.removeAll(randomUUID());
  });

  it('answers not found for a document that was never saved', async () => {
    const store = createDocumentFileStore(directory);
    await assert.rejects(store.read(randomUUID(), 'a'.repeat(64)), rejectsWithCode('DOCUMENT_NOT_FOUND'));
  });

  it('refuses ids that are not a uuid and a sha256, so no path can escape the directory', async () => {
    const store = createDocumentFileStore(directory);
    const bytes = pdfBytes('x');
    for (const applicationId of ['', '..', '../etc', 'a/b', `${randomUUID()}/..`, `${randomUUID()}\u0000`, 'not-a-uuid']) {
      await assert.rejects(store.save(applicationId, bytes), rejectsWithCode('INVALID_INPUT'), applicationId);
      await assert.rejects(store.read(applicationId, sha256Of(bytes)), rejectsWithCode('INVALID_INPUT'), applicationId);
    }
    for (const sha256 of ['', '../../passwd', 'g'.repeat(64), 'a'.repeat(63), `${'a'.repeat(64)}/..`, `${'a'.repeat(64)}.pdf`]) {
      await assert.rejects(store.read(randomUUID(), sha256), rejectsWithCode('INVALID_INPUT'), sha256);
    }
    assert.deepEqual(
      (await readdir(directory)).filter((name) => !/^[0-9a-f-]{36}$/.test(name)),
      [],
    );
  });
});
