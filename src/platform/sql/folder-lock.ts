import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname, uptime } from 'node:os';
import { dirname, resolve } from 'node:path';

/** Who holds a folder, as its lock file says. */
export type FolderHolder = { readonly pid: number; readonly host: string; readonly startedAt: string };

/** Another process, alive, holds the folder. */
export class FolderInUseError extends Error {
  constructor(
    readonly folder: string,
    readonly holder: FolderHolder,
    lockFile: string,
  ) {
    super(
      `the database folder ${folder} is in use by process ${holder.pid} on ${holder.host} (since ${holder.startedAt}): ` +
        `stop that process first; if it no longer runs (another machine's, say), remove ${lockFile}`,
    );
    this.name = 'FolderInUseError';
  }
}

export type FolderLock = { readonly release: () => Promise<void> };

/** The folders this process holds: a lock naming this very pid is otherwise a previous run's (a container's pid 1, say). */
const heldHere = new Set<string>();

/** A clock set back a little after a lock was written must not make a live holder look older than the machine. */
const BOOT_TIME_MARGIN_MS = 60_000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Whether the holder is certainly gone: on this machine, started before it booted or no process of its pid; another machine's cannot be told. */
function isGone(holder: FolderHolder, folder: string): boolean {
  if (holder.host !== hostname()) return false;
  const bootedAtMs = Date.now() - uptime() * 1000;
  if (Date.parse(holder.startedAt) < bootedAtMs - BOOT_TIME_MARGIN_MS) return true;
  if (holder.pid === process.pid) return !heldHere.has(folder);
  return !isAlive(holder.pid);
}

function parseHolder(text: string): FolderHolder | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<FolderHolder>;
    if (Number.isInteger(parsed.pid) && typeof parsed.host === 'string' && typeof parsed.startedAt === 'string') return parsed as FolderHolder;
  } catch {
    // not a lock this code wrote: nobody can be holding the folder through it
  }
  return undefined;
}

/** Creates `file` holding `content` only if it does not exist, whole or not at all (a reader never sees it half-written). */
async function createWhole(file: string, content: string): Promise<boolean> {
  const draft = `${file}.${process.pid}.${randomUUID()}`;
  await writeFile(draft, content);
  try {
    await link(draft, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(draft);
  }
}

/**
 * Removes a lock left by a holder that is gone. It is moved aside first and then read:
 * of two processes taking over the same stale lock, only the one that moved the stale
 * holder's file removes it; the other finds the winner's and puts it back.
 */
async function takeOver(lockFile: string, staleText: string): Promise<void> {
  const aside = `${lockFile}.${process.pid}.${randomUUID()}`;
  try {
    await rename(lockFile, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if ((await readFile(aside, 'utf8')) !== staleText) await link(aside, lockFile).catch(() => undefined);
  await unlink(aside);
}

/**
 * Holds `folder` for this process, through `<folder>.lock` beside it, which names the
 * holder: its pid, host and start time. A folder another live process holds is refused
 * (FolderInUseError); a lock whose holder is gone (killed, or the machine restarted) is
 * taken over.
 */
export async function lockFolder(folder: string): Promise<FolderLock> {
  const path = resolve(folder);
  const lockFile = `${path}.lock`;
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString() } satisfies FolderHolder);
  await mkdir(dirname(path), { recursive: true });
  for (let attempt = 1; !(await createWhole(lockFile, mine)); attempt++) {
    if (attempt > 3) throw new Error(`could not take the lock ${lockFile}: other processes keep taking it`);
    const text = await readFile(lockFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (text === undefined) continue;
    const holder = parseHolder(text);
    if (holder && !isGone(holder, path)) throw new FolderInUseError(path, holder, lockFile);
    await takeOver(lockFile, text);
  }
  heldHere.add(path);
  return {
    release: async () => {
      heldHere.delete(path);
      const text = await readFile(lockFile, 'utf8').catch(() => undefined);
      if (text === mine) await unlink(lockFile);
    },
  };
}
