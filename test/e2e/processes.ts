import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';

const repositoryRoot = new URL('../../', import.meta.url);

export type MutuoProcess = {
  readonly process: ChildProcess;
  /** What the ready line named: the HTTP address of a service, the tcp:// one of the mainframe. */
  readonly address: string;
  /** The last of what it wrote, for a failing test to show. */
  readonly output: () => string;
  /** SIGTERM, then SIGKILL if it has not exited within five seconds. */
  readonly stop: () => Promise<void>;
};

/** The line each `mutuo` command writes once it listens, and the address it names. */
const readyLine = /(?:API docs at |listening on )((?:http|tcp):\/\/[\w.]+:\d+)/;

/** Runs `mutuo <args>` as its own process, as an operator would, and waits until it listens. */
export async function startMutuo(args: readonly string[], env: Readonly<Record<string, string>>, timeoutMs = 60_000): Promise<MutuoProcess> {
  const child = spawn(process.execPath, ['bin/mutuo.js', ...args], {
    cwd: repositoryRoot,
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  // MUTUO_TEST_PROCESS_LOGS=<folder>: every process's whole output goes to a file of its own there, to read after a failure.
  const logs = process.env.MUTUO_TEST_PROCESS_LOGS;
  if (logs) {
    const file = createWriteStream(join(logs, `${args.join('-')}-${child.pid}.log`));
    child.stdout.pipe(file);
    child.stderr.pipe(file);
  }
  const exited = once(child, 'exit');
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mutuo ${args.join(' ')} did not start:\n${output}`)), timeoutMs);
    const look = () => {
      const match = readyLine.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', look);
        child.stderr.off('data', look);
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`mutuo ${args.join(' ')} exited with ${code}:\n${output}`));
    });
  });
  return {
    process: child,
    address,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
