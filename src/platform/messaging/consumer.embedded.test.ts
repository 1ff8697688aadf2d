import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openTestPglite, type TestDatabase } from '../sql/testing.ts';
import { testSessions } from '../eventstore/testing.ts';
import { platformEventCatalog } from '../../app/catalog.ts';
import { InterestRateLocked, InterestRateLockedV1, MortgageApplicationSubmitted } from '../../features/application/events.ts';
import { submitted } from '../../features/application/read-models.contract.ts';
import { createConsumer, defineConsumer, type ConsumedEventOf } from './consumer.ts';
import { toEventMessage, type IncomingMessage } from './message.ts';

/** A message as the bus hands it over, of an event as it was stored (sealed where it has personal data). */
function incoming(applicationId: string, type: string, schemaVersion: number, data: unknown, streamVersion = 1): IncomingMessage {
  const eventId = randomUUID();
  const body = toEventMessage({
    eventId,
    type,
    schemaVersion,
    data,
    streamId: `application-${applicationId}`,
    streamVersion,
    position: 1_000 + streamVersion,
    metadata: { correlationId: randomUUID(), causationId: null, actor: 'test', occurredAt: new Date().toISOString() },
    recordedAt: new Date(),
  });
  return { messageId: eventId, headers: {}, body, bodyIsJson: true, redelivered: false };
}

describe('a typed consumer', () => {
  let database: TestDatabase;
  before(async () => {
    database = await openTestPglite();
  });
  after(() => database.dispose());

  const options = () => ({ client: database.client, sessions: testSessions(database.client), catalog: platformEventCatalog, maxAttempts: 1 });

  it('receives an event stored at an older version upcast to the version it names, typed by it', async () => {
    const received: ConsumedEventOf<typeof InterestRateLocked>[] = [];
    const consumer = createConsumer(
      defineConsumer({
        name: `typed-${randomUUID().slice(0, 8)}`,
        events: [InterestRateLocked],
        handle: async (event) => {
          received.push(event);
        },
      }),
      options(),
    );
    const lockedAt = '2026-03-01T10:00:00.000Z';
    const expiresAt = '2026-03-31T10:00:00.000Z';
    await consumer.deliver(incoming(randomUUID(), 'InterestRateLocked', 1, { annualRateBps: 375, lockDays: 30, lockedAt, expiresAt }));
    assert.equal(received.length, 1);
    assert.equal(received[0]!.schemaVersion, 2);
    assert.deepEqual(received[0]!.data, { annualRate: '3.75', lockDays: 30, lockedAt, expiresAt });
  });

  it('receives the personal data revealed, and its sealed form beside it', async () => {
    const applicationId = randomUUID();
    const sessions = testSessions(database.client);
    const submission = submitted(applicationId, {
      firstName: 'Anna',
      lastName: 'Verdi',
      region: 'Piemonte',
      amountCents: 15_000_000,
      submittedAt: '2026-02-01T09:00:00.000Z',
    });
    await sessions.run((session) => session.append(`application-${applicationId}`, [submission], 'no_stream'));
    const [stored] = await database.client.query<{ data: unknown }>('SELECT data FROM mutuo_events WHERE stream_id = $1', [`application-${applicationId}`]);
    const names: string[] = [];
    let sealed: unknown;
    const consumer = createConsumer(
      defineConsumer({
        name: `typed-${randomUUID().slice(0, 8)}`,
        events: [MortgageApplicationSubmitted],
        handle: async (event) => {
          names.push(`${event.data.applicant.firstName} ${event.data.applicant.lastName}`);
          sealed = event.sealed?.applicant;
        },
      }),
      options(),
    );
    await consumer.deliver(incoming(applicationId, 'MortgageApplicationSubmitted', 1, stored!.data));
    assert.deepEqual(names, ['Anna Verdi']);
    assert.deepEqual(sealed, (stored!.data as { applicant: unknown }).applicant);
  });

  it('is refused when it names an older version of an event than the platform reads', () => {
    const stale = defineConsumer({ name: 'stale', events: [InterestRateLockedV1], handle: async () => undefined });
    assert.throws(() => createConsumer(stale, options()), /handles InterestRateLocked v1, but the platform reads it at v2/);
  });

  it('dead-letters an event of a type it does not name, without running its handler', async () => {
    let handled = 0;
    const name = `typed-${randomUUID().slice(0, 8)}`;
    const consumer = createConsumer(
      defineConsumer({
        name,
        events: [InterestRateLocked],
        handle: async () => {
          handled++;
        },
      }),
      options(),
    );
    await consumer.deliver(incoming(randomUUID(), 'ApplicationApproved', 1, { contractNumber: 'C-1', approvedAt: '2026-03-01T10:00:00.000Z' }));
    assert.equal(handled, 0);
    const [letter] = await database.client.query<{ reason: string }>('SELECT reason FROM mutuo_dead_letters WHERE consumer = $1', [name]);
    assert.equal(letter?.reason, 'UNKNOWN_TYPE');
  });
});

describe('a batch of one partition', () => {
  let database: TestDatabase;
  before(async () => {
    database = await openTestPglite();
  });
  after(() => database.dispose());

  const locked = (applicationId: string, streamVersion: number) =>
    incoming(
      applicationId,
      'InterestRateLocked',
      1,
      { annualRateBps: 300 + streamVersion, lockDays: 30, lockedAt: '2026-03-01T10:00:00.000Z', expiresAt: '2026-03-31T10:00:00.000Z' },
      streamVersion,
    );

  function recordingConsumer(failOn: Set<string> = new Set()) {
    const handled: string[] = [];
    const name = `batch-${randomUUID().slice(0, 8)}`;
    const consumer = createConsumer(
      defineConsumer({
        name,
        events: [InterestRateLocked],
        handle: async (event) => {
          if (failOn.has(event.eventId)) throw new Error('this one fails');
          handled.push(event.eventId);
        },
      }),
      { client: database.client, sessions: testSessions(database.client), catalog: platformEventCatalog, maxAttempts: 1 },
    );
    return { name, consumer, handled };
  }

  it('has one effect of each message, in order, whether the batch holds it twice or it was handled before', async () => {
    const { consumer, handled } = recordingConsumer();
    const application = randomUUID();
    const [first, second, third] = [locked(application, 1), locked(application, 2), locked(application, 3)];
    await consumer.deliver(first);
    await consumer.deliverBatch([second, first, third, second]);
    assert.deepEqual(
      handled,
      [first, second, third].map((message) => message.messageId),
    );
  });

  it('parks what follows a dead letter of its application, and handles the rest of the batch', async () => {
    const failing = locked(randomUUID(), 1);
    const { name, consumer, handled } = recordingConsumer(new Set([failing.messageId!]));
    await consumer.deliver(failing);
    const behind = locked((failing.body as { partitionKey: string }).partitionKey, 2);
    const other = locked(randomUUID(), 1);
    await consumer.deliverBatch([behind, other]);
    assert.deepEqual(handled, [other.messageId]);
    const parked = await database.client.query<{ id: string }>(`SELECT message->'body'->>'eventId' AS id FROM mutuo_parked WHERE consumer = $1`, [name]);
    assert.deepEqual(
      parked.map((row) => row.id),
      [behind.messageId],
    );
  });
});
