import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/platform/http/server.ts';
import { loadConfig } from '../../src/app/config.ts';
import { openTestPglite, type TestDatabase } from '../../src/platform/sql/testing.ts';
import { deadLetterRoutes } from '../../src/platform/messaging/dead-letter-routes.ts';
import { createDeadLetters } from '../../src/platform/messaging/dead-letters.ts';
import { authenticationRoutes, openAuthentication } from '../../src/security/authentication.ts';
import { testHttpLimits } from '../../src/security/testing.ts';
import { deadLetterCommand, UsageError } from '../../src/app/cli/dlq.ts';
import type { PlatformTarget } from '../../src/app/cli/platform-client.ts';
import { accessTable } from '../../src/security/permissions.ts';

describe('mutuo dlq', () => {
  let database: TestDatabase;
  let app: FastifyInstance;
  let url: string;
  let target: PlatformTarget;
  let applicantToken: string;
  let id: number;

  before(async () => {
    database = await openTestPglite();
    const authentication = await openAuthentication(loadConfig({}).auth, database.client);
    applicantToken = (await authentication.devProvider!.issue('giulia'))!.accessToken;
    app = await buildServer({
      routes: [
        (server) => server.register(deadLetterRoutes, { deadLetters: createDeadLetters(database.client) }),
        (server) => server.register(authenticationRoutes, authentication),
      ],
      checkReady: async () => undefined,
      logger: false,
      verifyToken: authentication.verifyToken,
      access: accessTable,
      http: testHttpLimits,
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    // No MUTUO_TOKEN: the CLI takes the development provider's admin.
    target = { baseUrl: url };
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
    const listed = await deadLetterCommand(['list', '--status', 'open'], target);
    assert.match(listed, /^id\s+status\s+consumer/);
    assert.match(listed, new RegExp(`^${id}\\s+dead\\s+scoring\\s+MortgageApplicationSubmitted\\s+app-1\\s+0\\s+HANDLER_FAILED\\s+the bureau said no$`, 'm'));
    assert.equal(await deadLetterCommand(['list', '--consumer', 'nobody'], target), 'no dead letters');
    const shown = JSON.parse(await deadLetterCommand(['show', String(id)], target)) as { message: unknown; attempts: number };
    assert.deepEqual([shown.message, shown.attempts], [{ body: { n: 1 } }, 5]);
    assert.match(await deadLetterCommand(['redrive', String(id)], target), /redrive requested; consumer scoring carries it out/);
    assert.match(await deadLetterCommand(['discard', String(id)], target), /discard requested/);
  });

  it('explains what is wrong', async () => {
    await assert.rejects(deadLetterCommand(['show'], target), UsageError);
    await assert.rejects(deadLetterCommand(['frobnicate'], target), UsageError);
    await assert.rejects(deadLetterCommand(['list', '--colour', 'red'], target), UsageError);
    await assert.rejects(deadLetterCommand(['show', '424242'], target), /no dead letter 424242/);
    await assert.rejects(deadLetterCommand(['list'], { baseUrl: 'http://127.0.0.1:1' }), /no Mutuo answers at/);
    // A token of someone who is not an admin is turned away.
    await assert.rejects(deadLetterCommand(['list'], { baseUrl: url, token: applicantToken }), /your roles may not operateDeadLetters/);
  });
});
