import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { openTestPglite, sampleEvent, type TestDatabase } from '../sql/testing.ts';
import { scheduleJob } from '../messaging/jobs.ts';
import { submitted } from '../../features/application/read-models.contract.ts';
import { eventsAppended, type UnitOfWork } from './session.ts';
import { selectStream } from './store.ts';
import { testSessions } from './testing.ts';
import { WrongExpectedVersionError } from './types.ts';

describe('a session (unit of work)', () => {
  let database: TestDatabase;
  let sessions: UnitOfWork;
  const committed: ReadonlySet<string>[] = [];

  before(async () => {
    database = await openTestPglite();
    sessions = testSessions(database.client, (signals) => committed.push(signals));
  });
  after(() => database.dispose());

  const applicant = { firstName: 'Giulia', lastName: 'Bianchi', region: 'Lazio', amountCents: 20_000_000, submittedAt: '2026-01-10T09:00:00.000Z' };

  it('seals the personal data of every append, whoever appends, and reveals it on reading', async () => {
    const applicationId = randomUUID();
    const stream = `application-${applicationId}`;
    const submission = submitted(applicationId, applicant);
    await sessions.run((session) => session.append(stream, [submission], 'no_stream'));

    const [stored] = await selectStream(database.client, stream);
    const written = JSON.stringify(stored!.data);
    assert.doesNotMatch(written, /Giulia|Bianchi/, 'nothing of the person in the clear in the log');
    assert.match(written, /\$sealed/);

    const [read] = await sessions.run((session) => session.readStream(stream));
    assert.deepEqual(read!.data, submission.data);
  });

  it('numbers the events of several appends in one session one after another', async () => {
    const [a, b] = [`session-${randomUUID()}`, `session-${randomUUID()}`];
    const [first, second] = await sessions.run(async (session) => [
      await session.append(a, [sampleEvent(), sampleEvent()], 'no_stream'),
      await session.append(b, [sampleEvent()], 'no_stream'),
    ]);
    assert.equal(second!.firstPosition, first!.lastPosition + 1);
  });

  it('signals, once committed, what it gave work to, and runs its effects; a session rolled back signals, runs and stores nothing', async () => {
    const stream = `session-${randomUUID()}`;
    committed.length = 0;
    const effects: string[] = [];
    await sessions.run(async (session) => {
      await session.append(stream, [sampleEvent()], 'no_stream');
      await scheduleJob(session, { queue: 'session.test', key: stream, payload: {}, dueAt: new Date() });
      session.afterCommit(() => effects.push('counted'));
      assert.equal(committed.length, 0, 'nothing before the commit');
      assert.deepEqual(effects, []);
    });
    assert.deepEqual(committed, [new Set([eventsAppended, 'job:session.test'])]);
    assert.deepEqual(effects, ['counted']);

    committed.length = 0;
    await assert.rejects(
      sessions.run(async (session) => {
        await session.append(stream, [sampleEvent()], 'any');
        session.afterCommit(() => effects.push('counted again'));
        await session.append(stream, [sampleEvent()], 1);
      }),
      WrongExpectedVersionError,
    );
    assert.deepEqual(committed, []);
    assert.deepEqual(effects, ['counted']);
    assert.equal((await selectStream(database.client, stream)).length, 1, 'the first append of the failed session is rolled back with it');
  });

  it('signals exactly the sessions that committed, whatever commits and fails, in any order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ appends: fc.integer({ min: 0, max: 2 }), fails: fc.boolean() }), { maxLength: 8 }), async (runs) => {
        const stream = `session-${randomUUID()}`;
        const seen: ReadonlySet<string>[] = [];
        const watched = testSessions(database.client, (signals) => seen.push(signals));
        let version = 0;
        for (const run of runs) {
          await watched
            .run(async (session) => {
              for (let i = 0; i < run.appends; i++) await session.append(stream, [sampleEvent()], 'any');
              if (run.fails) throw new Error('the work failed');
            })
            .catch((error: Error) => assert.equal(error.message, 'the work failed'));
          if (!run.fails) version += run.appends;
        }
        assert.equal(seen.length, runs.filter((run) => !run.fails && run.appends > 0).length);
        assert.equal((await selectStream(database.client, stream)).length, version);
      }),
      { numRuns: 25 },
    );
  });
});
