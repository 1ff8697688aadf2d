import { fork, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { PdfBudget, PdfLimits } from './pdf-text.ts';

/** What reading one PDF may cost: its limits, and the time and memory of the process that reads it. */
export type PdfReadBudgets = PdfLimits & { readonly timeoutMs: number; readonly memoryMb: number };

export type PdfReading =
  | { readonly status: 'read'; readonly text: string }
  /** Not a PDF that opens (malformed, encrypted), or one that brought its reading process down. */
  | { readonly status: 'unreadable' }
  /** Not read: it would have cost more than `budget` allows (the limit in pages, bytes or milliseconds). */
  | { readonly status: 'overBudget'; readonly budget: PdfBudget; readonly limit: number };

/** What the reading process (pdf-text-process.ts) is sent, and what it answers. */
export type ReadRequest = { readonly bytes: Uint8Array; readonly limits: PdfLimits };
export type ReadAnswer = PdfReading | { readonly status: 'ready' };

/** A reading process lent to one check: its reads run one at a time. */
export type PdfReader = {
  /** One PDF's text, or what kept it from being read. */
  readonly read: (bytes: Uint8Array) => Promise<PdfReading>;
  /** The process that read last, or that will read next (for the tests: which process read what). */
  readonly pid: () => number | undefined;
};

/** The reading processes of a service: lent to one check at a time, kept warm between checks. */
export type PdfReaders = {
  /** Runs `use` with a reading process of its own (waiting for one if all are lent), then takes it back. */
  readonly withReader: <T>(use: (reader: PdfReader) => Promise<T>) => Promise<T>;
  /** Ends every process once it is given back; no reader is lent after. */
  readonly close: () => Promise<void>;
};

/** When a kept process is ended rather than lent again. */
export type Recycling = {
  /**
   * The share of the memory budget a process may hold after a read and still read the
   * next document: what a document leaves behind counts against the next one's budget, so
   * it is bounded to this, and a process above it is ended (a fresh one holds about 100 MB).
   */
  readonly keptMemoryFraction: number;
  /** Reads one process serves at most, so that nothing it slowly gathers (a leak of pdf.js, fragmentation) outlives them. */
  readonly maxReads: number;
  /** How long a process is kept without a read: an idle service holds no reading memory after it. */
  readonly idleMs: number;
};

export const recycling: Recycling = { keptMemoryFraction: 0.5, maxReads: 100, idleMs: 30_000 };

const processEntry = fileURLToPath(new URL('./pdf-text-process.ts', import.meta.url));
/** The reading process runs TypeScript as the platform does: through tsx, found from here whatever the working directory. */
const tsxLoader = import.meta.resolve('tsx');
const memoryWatchMs = 50;
const stderrKeptChars = 4_096;

/** The resident memory of a process, from Linux's /proc; undefined elsewhere, where only the heap limit holds it. */
async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const kilobytes = /^VmRSS:\s*(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kilobytes === undefined ? undefined : Number(kilobytes) * 1_024;
  } catch {
    return undefined;
  }
}

type ReadingProcess = {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  /** Reads sent to it so far. */
  reads: number;
  /** Ends it once it has been kept unlent for `idleMs`. */
  idleTimer?: NodeJS.Timeout;
};

/** How waiting for the reading process's next answer ended. */
type Ending =
  | { readonly answer: ReadAnswer }
  | { readonly killedFor: 'time' | 'memory' }
  | { readonly exited: string }
  /** It could not be started, or sent the document. */
  | { readonly failed: Error };

/**
 * Reads PDFs in processes of their own, so that whatever a document costs (pdf.js holds
 * every inflated stream in memory, and parses synchronously for seconds) it costs that
 * process and never the server's: the server goes on answering, and its memory stays its
 * own. A process is killed once a read outlasts `timeoutMs` or its resident memory passes
 * `memoryMb` (its heap is capped there too); the next read starts another.
 *
 * At most `size` processes, each lent to one check at a time and reading its documents one
 * after another. Starting one (Node, tsx, pdf.js) costs far more than most reads, so a
 * process given back is kept for the next check, but ended (and started again when next
 * needed) once it holds more than `keptMemoryFraction` of its budget after a read, has
 * served `maxReads`, or has waited `idleMs` unlent (see `Recycling`).
 */
export function openPdfReaders(budgets: PdfReadBudgets, size: number, recycle: Recycling = recycling): PdfReaders {
  const memoryBytes = budgets.memoryMb * 1_048_576;
  const keptMemoryBytes = recycle.keptMemoryFraction * memoryBytes;
  /** Processes given back and alive, the last given back last: it is lent first, and the others age out. */
  const kept: ReadingProcess[] = [];
  /** Checks waiting for a process, when all `size` are lent. */
  const waiting: ((process: ReadingProcess | undefined) => void)[] = [];
  /** Readers lent, and processes ended but not yet gone: with `kept`, never more than `size`. */
  let lent = 0;
  let exiting = 0;
  let closed = false;
  const closers: (() => void)[] = [];

  /** The process's next answer, or its end: killed over a budget, gone by itself, or never there. */
  function nextAnswer({ child, stderr }: ReadingProcess): Promise<Ending> {
    return new Promise((resolve) => {
      let killedFor: 'time' | 'memory' | undefined;
      const kill = (budget: 'time' | 'memory') => {
        killedFor ??= budget;
        child.kill('SIGKILL');
      };
      const timer = setTimeout(() => kill('time'), budgets.timeoutMs);
      const watch = setInterval(() => {
        if (child.pid === undefined) return;
        void residentBytes(child.pid).then((bytes) => {
          if (bytes !== undefined && bytes > memoryBytes) kill('memory');
        });
      }, memoryWatchMs);
      const end = (ending: Ending) => {
        clearTimeout(timer);
        clearInterval(watch);
        child.off('message', onMessage);
        child.off('close', onClose);
        child.off('error', onError);
        resolve(ending);
      };
      const onMessage = (answer: ReadAnswer) => end({ answer });
      // 'close' rather than 'exit': by then all it wrote to stderr has been read.
      const onClose = () => end(killedFor ? { killedFor } : { exited: stderr() });
      const onError = (error: Error) => end({ failed: error });
      child.on('message', onMessage);
      child.on('close', onClose);
      child.on('error', onError);
    });
  }

  async function start(): Promise<ReadingProcess> {
    const child = fork(processEntry, [], {
      execArgv: ['--import', tsxLoader, `--max-old-space-size=${budgets.memoryMb}`],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    // Its errors reach the read in progress; between reads, the next read finds the process gone.
    child.on('error', () => undefined);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-stderrKeptChars);
    });
    const reading: ReadingProcess = { child, stderr: () => stderr, reads: 0 };
    const ending = await nextAnswer(reading);
    if ('answer' in ending && ending.answer.status === 'ready') return reading;
    child.kill('SIGKILL');
    if ('failed' in ending) throw ending.failed;
    const why =
      'killedFor' in ending ? `not ready within its ${ending.killedFor} budget` : 'exited' in ending ? `exited: ${ending.exited}` : 'answered out of turn';
    throw new Error(`the PDF reading process did not start: ${why}`);
  }

  const alive = (reading: ReadingProcess | undefined): reading is ReadingProcess =>
    reading !== undefined && reading.child.exitCode === null && reading.child.signalCode === null && !reading.child.killed;

  /** Ends a process, and waits for it to be gone. */
  async function stop(reading: ReadingProcess): Promise<void> {
    clearTimeout(reading.idleTimer);
    const { child } = reading;
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** A check waiting, or else the kept processes, take what was given back: a process, or only its place. */
  function pass(reading: ReadingProcess | undefined): void {
    const next = waiting.shift();
    if (next) {
      lent++;
      next(reading);
    } else if (reading) {
      reading.idleTimer = setTimeout(() => {
        const index = kept.indexOf(reading);
        if (index < 0) return;
        kept.splice(index, 1);
        void retire(reading);
      }, recycle.idleMs);
      reading.idleTimer.unref();
      kept.push(reading);
    } else if (closed && lent === 0 && exiting === 0 && kept.length === 0) {
      for (const closer of closers.splice(0)) closer();
    }
  }

  /** Ends a process, its place taken only once it is gone. */
  async function retire(reading: ReadingProcess): Promise<void> {
    exiting++;
    try {
      await stop(reading);
    } finally {
      exiting--;
      pass(undefined);
    }
  }

  async function borrow(): Promise<ReadingProcess | undefined> {
    if (closed) throw new Error('the PDF readers are closed');
    const reading = kept.pop();
    if (reading) clearTimeout(reading.idleTimer);
    if (reading || lent + exiting < size) {
      lent++;
      return reading;
    }
    return new Promise((resolve) => waiting.push(resolve));
  }

  function giveBack(reading: ReadingProcess | undefined): void {
    lent--;
    if (closed && alive(reading)) void retire(reading);
    else pass(alive(reading) ? reading : undefined);
  }

  /** One read in the process lent, started if there is none (or it was ended); ended after it, if it should be. */
  async function read(lease: { current: ReadingProcess | undefined }, bytes: Uint8Array): Promise<PdfReading> {
    if (!alive(lease.current)) lease.current = await start();
    const reading = lease.current;
    reading.reads++;
    const answered = nextAnswer(reading);
    reading.child.send({ bytes, limits: { maxPages: budgets.maxPages, maxInflatedBytes: budgets.maxInflatedBytes } } satisfies ReadRequest);
    const ending = await answered;
    if ('failed' in ending) {
      await stop(reading);
      throw ending.failed;
    }
    if ('killedFor' in ending) {
      return { status: 'overBudget', budget: ending.killedFor, limit: ending.killedFor === 'time' ? budgets.timeoutMs : memoryBytes };
    }
    // V8 ends a process whose heap reached its limit before the watch saw it grow.
    if ('exited' in ending)
      return /heap out of memory/i.test(ending.exited) ? { status: 'overBudget', budget: 'memory', limit: memoryBytes } : { status: 'unreadable' };
    if (ending.answer.status === 'ready') {
      await stop(reading);
      throw new Error('the PDF reading process answered out of turn');
    }
    // What this document left behind would count against the next one's budget: past the share kept, the next starts afresh.
    const left = reading.child.pid === undefined ? undefined : await residentBytes(reading.child.pid);
    if (reading.reads >= recycle.maxReads || (left !== undefined && left > keptMemoryBytes)) await stop(reading);
    return ending.answer;
  }

  return {
    async withReader(use) {
      const lease = { current: await borrow() };
      try {
        return await use({ read: (bytes) => read(lease, bytes), pid: () => lease.current?.child.pid });
      } finally {
        giveBack(lease.current);
      }
    },
    async close() {
      closed = true;
      const done = new Promise<void>((resolve) => closers.push(resolve));
      for (const reading of kept.splice(0)) void retire(reading);
      pass(undefined);
      await done;
    },
  };
}
