import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openTestPglite, type TestDatabase } from './sql/testing.ts';
import { errorMessage } from './sql/sql-client.ts';
import { createLogger, loggableError } from './logger.ts';

/** A log line per call, as the process's logger writes them. */
function capture() {
  const lines: string[] = [];
  return { logger: createLogger('debug', { write: (line: string) => void lines.push(line) }), lines };
}

describe('the log and stored error messages hold no personal data a failed statement was about', () => {
  let database: TestDatabase;
  let failure: unknown;
  before(async () => {
    database = await openTestPglite();
    // PostgreSQL's context quotes the JSON it could not read, a person's name in it.
    failure = await database.client.query(`SELECT $1::jsonb`, ['{"lastName": "Cancellieri", "note": "x\\u0000"}']).catch((error: unknown) => error);
  });
  after(() => database.dispose());

  it('is about a real error of the database, whose detail and context quote the row', () => {
    assert.ok(failure instanceof Error);
    assert.match(JSON.stringify({ ...failure, message: failure.message }), /Cancellieri/);
  });

  it('logs the error by its code and message, without its detail, context or the values it quotes', () => {
    const { logger, lines } = capture();
    logger.error({ err: failure, correlationId: 'c-1' }, 'request failed');
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]!) as { err: { code: string; message: string; type: string } };
    assert.equal(line.err.type, 'DatabaseError');
    assert.equal(line.err.code, (failure as { code: string }).code);
    assert.ok(!lines[0]!.includes('Cancellieri'), lines[0]);
  });

  it('keeps the values out of the message a dead letter or a job stores', () => {
    const quoting = Object.assign(new Error('invalid input syntax for type uuid: "Cancellieri ""the elder"""'), { code: '22P02', severity: 'ERROR' });
    assert.equal(errorMessage(quoting), 'invalid input syntax for type uuid: "…"');
    assert.ok(!JSON.stringify(loggableError(quoting)).includes('Cancellieri'));
  });

  it('logs any other error with its type, message, code and cause, and nothing else it carries', () => {
    const cause = Object.assign(new Error('the database said no'), { code: '08006', severity: 'FATAL', detail: 'Key (name)=(Cancellieri)' });
    const error = Object.assign(new Error('a consumer failed', { cause }), { code: 'HANDLER_FAILED', row: { lastName: 'Cancellieri' } });
    const logged = loggableError(error) as Record<string, unknown>;
    assert.deepEqual(Object.keys(logged).sort(), ['cause', 'code', 'message', 'stack', 'type']);
    assert.ok(!JSON.stringify(logged).includes('Cancellieri'));
    assert.equal((logged.cause as { code: string }).code, '08006');
  });
});
