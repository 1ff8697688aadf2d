import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Connection, type Consumer } from 'rabbitmq-client';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { openTestPostgres, type TestDatabase } from '../../src/platform/sql/testing.ts';
import { MortgageApplicationSubmitted } from '../../src/features/application/events.ts';
import { defineConsumer } from '../../src/platform/messaging/consumer.ts';
import { injectedBearer } from '../../src/security/testing.ts';
import { waitUntil } from '../../src/platform/messaging/messaging.contract.ts';
import { eventsExchange } from '../../src/platform/messaging/rabbitmq-bus.ts';
import { openVirtualHost } from '../../src/platform/messaging/testing.ts';

const run = promisify(execFile);
const submission = JSON.parse(await readFile(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as object;

describe('the messaging backbone of the running platform, on PostgreSQL and RabbitMQ', () => {
  let database: TestDatabase;
  let platform: Platform;
  let outside: Connection;
  let outsideConsumer: Consumer;
  // A virtual host of its own: the platform declares every consumer it knows there, and the
  // queues of those that do not run in this test are deleted with it.
  let vhost: Awaited<ReturnType<typeof openVirtualHost>>;
  const consumer = `backbone-${randomUUID().slice(0, 8)}`;
  const outsideQueue = `outside-${randomUUID().slice(0, 8)}`;
  const seenOutside: { messageId: string | undefined; eventId: string }[] = [];

  before(async () => {
    database = await openTestPostgres();
    vhost = await openVirtualHost();
    await database.client.exec('CREATE TABLE backbone_handled (event_id uuid PRIMARY KEY)');
    outside = new Connection({ url: vhost.url, retryLow: 200, retryHigh: 2_000 });
    // The broker restart below closes it on purpose; it reconnects by itself.
    outside.on('error', () => undefined);
    const setup = await outside.acquire();
    await setup.exchangeDeclare({ exchange: eventsExchange, type: 'topic', durable: true });
    await setup.queueDeclare({ queue: outsideQueue, durable: true });
    await setup.queueBind({ queue: outsideQueue, exchange: eventsExchange, routingKey: '#' });
    await setup.close();
    outsideConsumer = outside.createConsumer({ queue: outsideQueue, queueOptions: { durable: true } }, (message) => {
      seenOutside.push({ messageId: message.messageId, eventId: (message.body as { eventId: string }).eventId });
    });
    const config = loadConfig({ DATABASE_URL: database.connectionString, AMQP_URL: vhost.url, PORT: '0' });
    platform = await openPlatform(config, false, {
      services: ['application'],
      consumers: [
        defineConsumer({
          name: consumer,
          events: [MortgageApplicationSubmitted],
          handle: async (event, session) => {
            await session.tx.query('INSERT INTO backbone_handled (event_id) VALUES ($1)', [event.eventId]);
          },
        }),
      ],
    });
  });
  after(async () => {
    await platform.close();
    await outsideConsumer.close();
    const cleanup = await outside.acquire();
    await cleanup.queueDelete({ queue: outsideQueue });
    await cleanup.close();
    await outside.close();
    await vhost.dispose();
    await database.dispose();
  });

  const submit = async () => {
    const response = await platform.server.inject({
      method: 'POST',
      url: '/api/applications',
      payload: submission,
      headers: await injectedBearer(platform.server, 'giulia'),
    });
    assert.equal(response.statusCode, 201, response.body);
    return response.json<{ applicationId: string; position: number }>();
  };
  const committedEventIds = async () =>
    (await database.client.query<{ event_id: string }>('SELECT event_id::text AS event_id FROM mutuo_events')).map((row) => row.event_id);

  it('publishes every committed event with message-id = event id, also those accepted while the broker was down', async () => {
    const before = await Promise.all(Array.from({ length: 10 }, submit));
    await platform.relay.published(Math.max(...before.map((r) => r.position)));

    await run('rabbitmqctl', ['stop_app']);
    try {
      // The broker is away: commands only need the database, and are accepted.
      await Promise.all(Array.from({ length: 10 }, submit));
    } finally {
      await run('rabbitmqctl', ['start_app']);
      await run('rabbitmqctl', ['await_startup']);
    }
    await Promise.all(Array.from({ length: 5 }, submit));

    const committed = await committedEventIds();
    assert.equal(committed.length, 25);
    await waitUntil(async () => seenOutside.length >= 25, 'the outside queue has every event', 90_000);
    assert.deepEqual(new Set(seenOutside.map((m) => m.eventId)), new Set(committed));
    assert.equal(seenOutside.length, 25, 'each event once');
    for (const message of seenOutside) assert.equal(message.messageId, message.eventId);
    await waitUntil(async () => (await database.client.query('SELECT 1 FROM backbone_handled')).length >= 25, 'the consumer handled them all', 60_000);
  });

  it('dead-letters a poison message with its reason while new commands keep flowing', async () => {
    const publisher = outside.createPublisher({ confirm: true });
    await publisher.send(
      { exchange: eventsExchange, routingKey: 'MortgageApplicationSubmitted', contentType: 'application/json' },
      Buffer.from('{"this is": not json'),
    );
    await publisher.close();

    const { applicationId } = await submit();
    await waitUntil(async () => {
      const response = await platform.server.inject({
        method: 'GET',
        url: `/api/dead-letters?consumer=${consumer}`,
        headers: await injectedBearer(platform.server, 'ada'),
      });
      return response.json<unknown[]>().length > 0;
    }, 'the poison message is dead-lettered');
    const [dead] = (
      await platform.server.inject({ method: 'GET', url: `/api/dead-letters?consumer=${consumer}`, headers: await injectedBearer(platform.server, 'ada') })
    ).json<{ id: number; reason: string; error: string; status: string }[]>();
    assert.equal(dead!.reason, 'MALFORMED');
    assert.match(dead!.error, /not JSON/);
    assert.equal(dead!.status, 'dead');
    const detail = (
      await platform.server.inject({ method: 'GET', url: `/api/dead-letters/${dead!.id}`, headers: await injectedBearer(platform.server, 'ada') })
    ).json<{ message: { body: string } }>();
    assert.equal(detail.message.body, '{"this is": not json');

    // The application submitted after the poison reached the consumer.
    const [event] = await database.client.query<{ event_id: string }>(`SELECT event_id::text AS event_id FROM mutuo_events WHERE stream_id = $1`, [
      `application-${applicationId}`,
    ]);
    await waitUntil(
      async () => (await database.client.query('SELECT 1 FROM backbone_handled WHERE event_id = $1', [event!.event_id])).length === 1,
      'the new application is handled',
    );

    // Redriving a message that still cannot be read leaves it dead, with one more attempt.
    const redrive = await platform.server.inject({
      method: 'POST',
      url: `/api/dead-letters/${dead!.id}/redrive`,
      headers: await injectedBearer(platform.server, 'ada'),
    });
    assert.equal(redrive.statusCode, 202);
    const discard = await platform.server.inject({
      method: 'POST',
      url: `/api/dead-letters/${dead!.id}/discard`,
      headers: await injectedBearer(platform.server, 'ada'),
    });
    assert.equal(discard.statusCode, 202);
    await waitUntil(async () => {
      const current = (
        await platform.server.inject({ method: 'GET', url: `/api/dead-letters/${dead!.id}`, headers: await injectedBearer(platform.server, 'ada') })
      ).json<{ status: string }>();
      return current.status === 'discarded';
    }, 'the dead letter is discarded');
    assert.equal(
      (await platform.server.inject({ method: 'GET', url: '/api/dead-letters/999999999', headers: await injectedBearer(platform.server, 'ada') })).statusCode,
      404,
    );
  });
});
