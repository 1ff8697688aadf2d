import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openPdfReaders, recycling, type PdfReadBudgets, type PdfReading } from './pdf-reader.ts';
import { inflationBombPdf, manyPagesPdf } from './testing.ts';

const MiB = 1_048_576;
const budgets: PdfReadBudgets = { timeoutMs: 30_000, memoryMb: 512, maxPages: 100, maxInflatedBytes: 100 * MiB };
const page = manyPagesPdf(1);

/** Whether a process of that id is still there (ended ones are reaped by the time they are reported gone). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const assertRead = (reading: PdfReading) =>
  assert.deepEqual([reading.status, reading.status === 'read' && reading.text.includes('A page of many')], ['read', true]);

describe('the PDF reading processes', () => {
  it('lend the process a check gave back to the next check', async () => {
    const readers = openPdfReaders(budgets, 2);
    try {
      const pids = [];
      for (let check = 0; check < 3; check++) {
        pids.push(
          await readers.withReader(async (reader) => {
            for (let document = 0; document < 3; document++) assertRead(await reader.read(page));
            return reader.pid();
          }),
        );
      }
      assert.equal(new Set(pids).size, 1, `read by ${pids.join(', ')}`);
      assert.ok(running(pids[0]!));
    } finally {
      await readers.close();
    }
  });

  it('lend no more processes than their number: a check waits for one to be given back, and is lent it', async () => {
    const readers = openPdfReaders(budgets, 1);
    try {
      let giveBack!: () => void;
      const held = new Promise<void>((resolve) => {
        giveBack = resolve;
      });
      const order: string[] = [];
      const first = readers.withReader(async (reader) => {
        assertRead(await reader.read(page));
        order.push('first read');
        await held;
        order.push('first given back');
        return reader.pid();
      });
      const second = readers.withReader(async (reader) => {
        order.push('second lent');
        assertRead(await reader.read(page));
        return reader.pid();
      });
      while (order.length === 0) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(order, ['first read']);
      giveBack();
      const [firstPid, secondPid] = await Promise.all([first, second]);
      assert.deepEqual(order, ['first read', 'first given back', 'second lent']);
      assert.equal(secondPid, firstPid);
    } finally {
      await readers.close();
    }
  });

  it(`end a process that a read left holding more than ${recycling.keptMemoryFraction * 100} % of its budget, and read the next document in a new one`, async () => {
    // Let through, the bomb's 150 MB are held while it is read, and after: the process is left with over 400 MB, under its 640.
    const readers = openPdfReaders({ ...budgets, memoryMb: 640, maxInflatedBytes: 200 * MiB }, 1);
    const bomb = await inflationBombPdf(150 * MiB);
    try {
      await readers.withReader(async (reader) => {
        assertRead(await reader.read(page));
        const before = reader.pid()!;
        assert.equal((await reader.read(bomb)).status, 'read');
        assert.equal(reader.pid(), before, 'the bomb was read by the process that read the page');
        assert.ok(!running(before), 'the process the bomb was read in is still there');
        assertRead(await reader.read(page));
        assert.notEqual(reader.pid(), before);
      });
    } finally {
      await readers.close();
    }
  });

  it('keep a process that a small document left well within its budget', async () => {
    const readers = openPdfReaders(budgets, 1);
    try {
      await readers.withReader(async (reader) => {
        assertRead(await reader.read(page));
        const pid = reader.pid()!;
        assertRead(await reader.read(page));
        assert.equal(reader.pid(), pid);
        assert.ok(running(pid));
      });
    } finally {
      await readers.close();
    }
  });

  it('replace a process killed over its time budget, for the next document and the next check', async () => {
    // The pages are let through so that the time budget ends the reading of 20,000 of them (over a
    // minute), and the memory budget is ample so that only time can end it, however fast it grows.
    const readers = openPdfReaders({ ...budgets, maxPages: 100_000, timeoutMs: 3_000, memoryMb: 4_096 }, 1);
    try {
      const killed = await readers.withReader(async (reader) => {
        assertRead(await reader.read(page));
        const pid = reader.pid()!;
        assert.deepEqual(await reader.read(manyPagesPdf(20_000)), { status: 'overBudget', budget: 'time', limit: 3_000 });
        assert.ok(!running(pid), 'the process killed is still there');
        return pid;
      });
      await readers.withReader(async (reader) => {
        assertRead(await reader.read(page));
        assert.notEqual(reader.pid(), killed);
      });
    } finally {
      await readers.close();
    }
  });

  it(`end a process after ${recycling.maxReads} reads, or the number given`, async () => {
    const readers = openPdfReaders(budgets, 1, { ...recycling, maxReads: 2 });
    try {
      const pids = [];
      for (let check = 0; check < 3; check++) {
        pids.push(
          await readers.withReader(async (reader) => {
            assertRead(await reader.read(page));
            return reader.pid()!;
          }),
        );
      }
      assert.equal(pids[1], pids[0]);
      assert.notEqual(pids[2], pids[1]);
      assert.ok(!running(pids[0]!));
    } finally {
      await readers.close();
    }
  });

  it('end every process when closed, and lend none after', async () => {
    const readers = openPdfReaders(budgets, 2);
    const pids = await Promise.all(
      [0, 1].map(() =>
        readers.withReader(async (reader) => {
          assertRead(await reader.read(page));
          return reader.pid()!;
        }),
      ),
    );
    assert.equal(new Set(pids).size, 2);
    assert.ok(pids.every(running));
    await readers.close();
    assert.deepEqual(
      pids.filter((pid) => running(pid)),
      [],
    );
    await assert.rejects(readers.withReader(async () => undefined));
  });
});
