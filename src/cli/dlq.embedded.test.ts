import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../api/server.ts';
import { openTestPglite, type TestDatabase } from '../eventstore/testing.ts';
import { deadLetterRoutes } from '../messaging/dead-letter-routes.ts';
import { createDeadLetters } from '../messaging/dead-letters.ts';
import { deadLetterCommand, UsageError } from './dlq.ts';

describe('mutuo dlq', () => {
  let database: TestDatabase;
  let app: FastifyInstance;
  let url: string;
  let id: number;

  before(async () => {
    database = await openTestPglite();
    app = await buildServer({
      routes: [
        (server) => server.register(deadLetterRoutes, { deadLetters: createDeadLetters(database.client) }),
      ],
      checkReady: async () => undefined,
      logger: false,
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    const [row] = await database.client.query<{ id: string }>(
      `INSERT INTO mutuo_dead_letters (consumer, partition_key, event_type, reason, error, attempts, message)
       VALUES ('scoring', 'app-1', 'MortgageApplicationSubmitted', 'HANDLER_FAILED', 'the bureau said no', 5, '{"body": {"n": 1}}')
       RETURNING id::text AS id`,
    );
    id = Number(row!.id);
  });
  after(async () => {
    await app.close();
    await database.dispose();
  });

  it('lists, shows, redrives and discards through the running platform', async () => {
    const listed = await deadLetterCommand(['list', '--status', 'open'], url);
    assert.match(listed, /^id\s+status\s+consumer/);
    assert.match(listed, new RegExp(`^${id}\\s+dead\\s+scoring\\s+MortgageApplicationSubmitted\\s+app-1\\s+0\\s+HANDLER_FAILED\\s+the bureau said no$`, 'm'));
    assert.equal(await deadLetterCommand(['list', '--consumer', 'nobody'], url), 'no dead letters');
    const shown = JSON.parse(await deadLetterCommand(['show', String(id)], url)) as { message: unknown; attempts: number };
    assert.deepEqual([shown.message, shown.attempts], [{ body: { n: 1 } }, 5]);
    assert.match(await deadLetterCommand(['redrive', String(id)], url), /redrive requested; consumer scoring carries it out/);
    assert.match(await deadLetterCommand(['discard', String(id)], url), /discard requested/);
  });

  it('explains what is wrong', async () => {
    await assert.rejects(deadLetterCommand(['show'], url), UsageError);
    await assert.rejects(deadLetterCommand(['frobnicate'], url), UsageError);
    await assert.rejects(deadLetterCommand(['list', '--colour', 'red'], url), UsageError);
    await assert.rejects(deadLetterCommand(['show', '424242'], url), /no dead letter 424242/);
    await assert.rejects(deadLetterCommand(['list'], 'http://127.0.0.1:1'), /no Mutuo answers at/);
  });
});
