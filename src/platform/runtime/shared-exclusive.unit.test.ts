import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createSharedExclusiveLock } from './shared-exclusive.ts';

const yieldTimes = async (times: number) => {
  for (let i = 0; i < times; i++) await Promise.resolve();
};

describe('shared-exclusive lock', () => {
  it('lets shared holders in together, and an exclusive one only alone', async () => {
    const lock = createSharedExclusiveLock();
    const log: string[] = [];
    let releaseFirst!: () => void;
    const first = lock.shared(async () => {
      log.push('shared 1 in');
      await new Promise<void>((resolve) => (releaseFirst = resolve));
      log.push('shared 1 out');
    });
    const second = lock.shared(async () => log.push('shared 2 in and out'));
    const alone = lock.exclusive(async () => log.push('exclusive in and out'));
    const late = lock.shared(async () => log.push('shared 3 in and out'));
    await yieldTimes(10);
    assert.deepEqual(log, ['shared 1 in', 'shared 2 in and out'], 'the exclusive one waits for the first shared one, and the one asked after it waits too');
    releaseFirst();
    await Promise.all([first, second, alone, late]);
    assert.deepEqual(log, ['shared 1 in', 'shared 2 in and out', 'shared 1 out', 'exclusive in and out', 'shared 3 in and out']);
  });

  it('is released by work that fails', async () => {
    const lock = createSharedExclusiveLock();
    await assert.rejects(
      lock.exclusive(async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await lock.exclusive(async () => 'next'), 'next');
  });

  it('grants in the order asked, and never lets anyone in beside an exclusive holder', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ exclusive: fc.boolean(), steps: fc.nat(5), askAfter: fc.nat(3) }), { minLength: 1, maxLength: 30 }),
        async (requests) => {
          const lock = createSharedExclusiveLock();
          const started: number[] = [];
          let holders = 0;
          let exclusiveIn = false;
          const done: Promise<void>[] = [];
          for (const [index, request] of requests.entries()) {
            await yieldTimes(request.askAfter);
            const work = async () => {
              assert.ok(!exclusiveIn, 'nobody holds it exclusively');
              if (request.exclusive) assert.equal(holders, 0, 'an exclusive holder is alone');
              started.push(index);
              holders++;
              exclusiveIn = request.exclusive;
              await yieldTimes(request.steps);
              holders--;
              exclusiveIn = false;
            };
            done.push(request.exclusive ? lock.exclusive(work) : lock.shared(work));
          }
          await Promise.all(done);
          assert.deepEqual(
            started,
            requests.map((_, index) => index),
          );
        },
      ),
    );
  });
});
