import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';

/** Runs the fixture with one fault; its exit code and the JSON lines it wrote. */
async function run(fault: string): Promise<{ code: number | null; lines: Record<string, unknown>[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/app/cli/fatal.fixture.ts', fault], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const lines = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(lines.length, output.trim().split('\n').length, `only JSON lines: ${output}`);
  return { code, lines };
}

describe('the last resort of a service process', () => {
  it('ends the process with 1 after one fatal line naming an error nothing caught', async () => {
    const { code, lines } = await run('throw');
    assert.equal(code, 1);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 60);
    assert.equal(lines[0]!.origin, 'uncaughtException');
    assert.match(String(lines[0]!.msg), /^an error nothing handled: a fault nobody foresaw; exiting for the supervisor to start the process again$/);
    assert.match(String((lines[0]!.err as { stack: string }).stack), /fatal\.fixture\.ts/);
  });

  it('ends it the same way for a failed promise nobody awaited', async () => {
    const { code, lines } = await run('reject');
    assert.equal(code, 1);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 60);
    assert.equal(lines[0]!.origin, 'unhandledRejection');
    assert.match(String(lines[0]!.msg), /^a promise failed and nothing handled it: a promise nobody awaited; /);
  });

  it('leaves an error that was heard where it arose alone', async () => {
    const { code, lines } = await run('heard');
    assert.equal(code, 0);
    assert.deepEqual(lines, [{ heard: 'read ECONNRESET' }, { still: 'running' }]);
  });
});
