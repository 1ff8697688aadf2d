import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
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

export type PdfReader = {
  /** One PDF's text, or what kept it from being read. */
  readonly read: (bytes: Uint8Array) => Promise<PdfReading>;
  /** Ends the reading process. */
  readonly close: () => Promise<void>;
};

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

type ReadingProcess = { readonly child: ChildProcess; readonly stderr: () => string };

/** How waiting for the reading process's next answer ended. */
type Ending =
  | { readonly answer: ReadAnswer }
  | { readonly killedFor: 'time' | 'memory' }
  | { readonly exited: string }
  /** It could not be started, or sent the document. */
  | { readonly failed: Error };

/**
 * Reads PDFs in a process of its own, so that whatever a document costs (pdf.js holds
 * every inflated stream in memory, and parses synchronously for seconds) it costs that
 * process and never the server's: the server goes on answering, and its memory stays its
 * own. The process is killed once a read outlasts `timeoutMs` or its resident memory
 * passes `memoryMb` (its heap is capped there too); the next read starts another. Reads
 * run one at a time: a reader serves one check.
 */
export function openPdfReader(budgets: PdfReadBudgets): PdfReader {
  const memoryBytes = budgets.memoryMb * 1_048_576;
  let current: ReadingProcess | undefined;

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
    const reading = { child, stderr: () => stderr };
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

  return {
    async read(bytes) {
      if (!alive(current)) current = await start();
      const reading = current;
      const answered = nextAnswer(reading);
      reading.child.send({ bytes, limits: { maxPages: budgets.maxPages, maxInflatedBytes: budgets.maxInflatedBytes } } satisfies ReadRequest);
      const ending = await answered;
      if ('failed' in ending) throw ending.failed;
      if ('killedFor' in ending) {
        return { status: 'overBudget', budget: ending.killedFor, limit: ending.killedFor === 'time' ? budgets.timeoutMs : memoryBytes };
      }
      // V8 ends a process whose heap reached its limit before the watch saw it grow.
      if ('exited' in ending)
        return /heap out of memory/i.test(ending.exited) ? { status: 'overBudget', budget: 'memory', limit: memoryBytes } : { status: 'unreadable' };
      if (ending.answer.status === 'ready') throw new Error('the PDF reading process answered out of turn');
      return ending.answer;
    },
    async close() {
      if (!alive(current)) return;
      const exited = once(current.child, 'exit');
      current.child.kill();
      await exited;
    },
  };
}
