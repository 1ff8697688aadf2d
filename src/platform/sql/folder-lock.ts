import { createHash, randomUUID } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname, uptime } from 'node:os';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Who holds a folder, as its lock file says. */
export type FolderHolder = { readonly pid: number; readonly host: string; readonly startedAt: string };

/** What a lock or claim file of this code holds: the holder, and this run's token (a pid alone may be a previous run's: a container's pid 1, say). */
type Holding = FolderHolder & { readonly run?: string };

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

const thisRun = randomUUID();

/** A clock set back a little after a lock was written must not make a live holder look older than the machine. */
const BOOT_TIME_MARGIN_MS = 60_000;

/** How long to wait for another process that is removing a stale lock, between looks, and how many looks. */
const CLAIM_WAIT_MS = 20;
const MAX_ATTEMPTS = 250;

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
function isGone(holder: Holding): boolean {
  if (holder.host !== hostname()) return false;
  const bootedAtMs = Date.now() - uptime() * 1000;
  if (Date.parse(holder.startedAt) < bootedAtMs - BOOT_TIME_MARGIN_MS) return true;
  if (holder.pid === process.pid) return holder.run !== thisRun;
  return !isAlive(holder.pid);
}

function parseHolder(text: string): Holding | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<Holding>;
    if (Number.isInteger(parsed.pid) && typeof parsed.host === 'string' && typeof parsed.startedAt === 'string') return parsed as Holding;
  } catch {
    // not a lock this code wrote: nobody can be holding the folder through it
  }
  return undefined;
}

function holding(): string {
  return JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), run: thisRun, nonce: randomUUID() });
}

async function readIfThere(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
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
 * Removes `file` if it still holds `staleText`, written by a holder that is gone. Only the
 * process that creates the claim `<file>.<digest of staleText>.claim` may: it reads the file
 * again and removes it only if it still holds that text, which, unique to one holding, can
 * never come back once removed. A claim left by a process killed while it held one is
 * removed the same way. Returns whether the caller should look again after a pause (another
 * process is at it).
 */
async function removeStale(file: string, staleText: string): Promise<boolean> {
  const claim = `${file}.${createHash('sha256').update(staleText).digest('hex').slice(0, 16)}.claim`;
  if (await createWhole(claim, holding())) {
    try {
      if ((await readIfThere(file)) === staleText) await unlink(file);
    } finally {
      await unlink(claim);
    }
    return false;
  }
  const claimText = await readIfThere(claim);
  if (claimText === undefined) return false;
  const claimant = parseHolder(claimText);
  if (claimant && !isGone(claimant)) return true;
  await removeStale(claim, claimText);
  return false;
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
  const mine = holding();
  await mkdir(dirname(path), { recursive: true });
  for (let attempt = 1; !(await createWhole(lockFile, mine)); attempt++) {
    if (attempt > MAX_ATTEMPTS) throw new Error(`could not take the lock ${lockFile}: other processes keep taking it`);
    const text = await readIfThere(lockFile);
    if (text === undefined) continue;
    const holder = parseHolder(text);
    if (holder && !isGone(holder)) throw new FolderInUseError(path, holder, lockFile);
    if (await removeStale(lockFile, text)) await sleep(CLAIM_WAIT_MS);
  }
  return {
    release: async () => {
      if ((await readIfThere(lockFile)) === mine) await unlink(lockFile);
    },
  };
}
