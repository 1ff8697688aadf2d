import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DomainError, invalidInput } from '../../domain/errors.ts';

export type StoredDocumentFile = { readonly sha256: string; readonly sizeBytes: number; readonly path: string };

export type DocumentFileStore = {
  save(applicationId: string, bytes: Uint8Array): Promise<StoredDocumentFile>;
  read(applicationId: string, sha256: string): Promise<Uint8Array>;
  /** Deletes every file of the application (erasure); nothing there is nothing to do. */
  removeAll(applicationId: string): Promise<void>;
};

/** Encrypts what is written and decrypts what is read, per application (the Document service's: with its applicant's key). */
export type FileCipher = {
  seal(applicationId: string, bytes: Uint8Array): Promise<Uint8Array>;
  open(applicationId: string, bytes: Uint8Array): Promise<Uint8Array>;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SHA256_HEX = /^[0-9a-f]{64}$/i;

// Both ids become path segments, so only these exact shapes are accepted: no "..", no separators.
function applicationFolder(applicationId: string): string {
  if (!UUID.test(applicationId)) throw invalidInput([{ path: 'applicationId', message: 'must be a uuid' }]);
  return applicationId.toLowerCase();
}

function fileName(sha256: string): string {
  if (!SHA256_HEX.test(sha256)) throw invalidInput([{ path: 'sha256', message: 'must be 64 hexadecimal characters' }]);
  return `${sha256.toLowerCase()}.pdf`;
}

function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function hasCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

async function sizeIfExists(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if (hasCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

/** Makes a rename inside the folder durable; some platforms cannot open a directory, and then there is nothing to do. */
async function syncDirectory(directory: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(directory, 'r');
  } catch (error) {
    if (hasCode(error, 'EISDIR') || hasCode(error, 'EPERM')) return;
    throw error;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Uploads stored by content under `<directory>/<applicationId>/<sha256>.pdf` (the hash of
 * the content, before any cipher). A file is written to a temporary name, flushed and
 * renamed, so a crash never leaves a partial file under its final name, and saving the
 * same content again finds it already there.
 */
export function createDocumentFileStore(directory: string, cipher?: FileCipher): DocumentFileStore {
  const root = resolve(directory);

  return {
    async save(applicationId, bytes) {
      const folder = join(root, applicationFolder(applicationId));
      const sha256 = sha256Of(bytes);
      const path = join(folder, fileName(sha256));
      const stored = { sha256, sizeBytes: bytes.byteLength, path };
      const content = cipher ? await cipher.seal(applicationId, bytes) : bytes;
      // Sealed for the same subject, the same content has the same size (only the IV differs).
      if ((await sizeIfExists(path)) === content.byteLength) return stored;

      await mkdir(folder, { recursive: true });
      const temporaryPath = join(folder, `.${sha256}.${randomUUID()}.tmp`);
      try {
        const handle = await open(temporaryPath, 'wx');
        try {
          await handle.writeFile(content);
          await handle.sync();
        } finally {
          await handle.close();
        }
        // Concurrent saves of the same content each rename their own complete copy (sealed with an IV of its own, as good): the last one wins.
        await rename(temporaryPath, path);
      } catch (error) {
        await unlink(temporaryPath).catch(() => undefined);
        throw error;
      }
      await syncDirectory(folder);
      return stored;
    },

    async read(applicationId, sha256) {
      const path = join(root, applicationFolder(applicationId), fileName(sha256));
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch (error) {
        if (hasCode(error, 'ENOENT')) {
          throw new DomainError('not_found', 'DOCUMENT_NOT_FOUND', `no document ${sha256} for application ${applicationId}`);
        }
        throw error;
      }
      const content = cipher ? await cipher.open(applicationId, bytes) : bytes;
      // The name is the content's hash, so a mismatch can only be corruption on disk.
      if (sha256Of(content) !== sha256.toLowerCase()) throw new Error(`document file ${path} does not match its sha256`);
      return new Uint8Array(content.buffer, content.byteOffset, content.byteLength);
    },

    async removeAll(applicationId) {
      await rm(join(root, applicationFolder(applicationId)), { recursive: true, force: true });
      await syncDirectory(root).catch((error: unknown) => {
        if (!hasCode(error, 'ENOENT')) throw error;
      });
    },
  };
}
