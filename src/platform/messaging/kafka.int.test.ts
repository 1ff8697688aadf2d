import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Admin, ConfigResourceTypes, Producer, stringSerializer } from '@platformatic/kafka';
import type { EventMetadata } from '../eventstore/types.ts';
import { openTestPostgres, sampleEvent } from '../sql/testing.ts';
import type { Bus } from './bus.ts';
import { createKafkaBus } from './kafka-bus.ts';
import { consumerGroup } from './kafka-consumer-group.ts';
import { toEventMessage, type EventMessage, type IncomingMessage } from './message.ts';
import { describeMessaging, waitUntil } from './messaging.contract.ts';
import { describeReplicas } from './replicas.contract.ts';
import { openTestTopic, testKafkaBrokers } from './testing.ts';

describeMessaging('Apache Kafka on PostgreSQL', async () => {
  const database = await openTestPostgres();
  const topic = await openTestTopic();
  const bus = await createKafkaBus({ brokers: testKafkaBrokers, topic: topic.topic });
  return {
    database,
    bus,
    forgetConsumer: topic.forgetConsumer,
    dispose: async () => {
      await bus.close();
      await topic.dispose();
      await database.dispose();
    },
  };
});

// Each replica is a member of the consumer's group: they share the topic's partitions.
describeReplicas('Apache Kafka', async () => {
  const topic = await openTestTopic();
  return {
    openBus: () => createKafkaBus({ brokers: testKafkaBrokers, topic: topic.topic }),
    childEnv: { KAFKA_BROKERS: testKafkaBrokers.join(','), KAFKA_TOPIC: topic.topic },
    forgetConsumer: topic.forgetConsumer,
    dispose: topic.dispose,
  };
});

describe('the Kafka bus', () => {
  const opened: { bus: Bus; topic: Awaited<ReturnType<typeof openTestTopic>>; groups: string[] }[] = [];
  const admin = new Admin({ clientId: 'mutuo-tests', bootstrapBrokers: testKafkaBrokers });
  after(async () => {
    for (const { bus, topic, groups } of opened) {
      await bus.close();
      for (const group of groups) await topic.forgetConsumer(group);
      await topic.dispose();
    }
    await admin.close();
  });

  async function openBus(options: { create?: boolean; partitions?: number } = {}) {
    const topic = await openTestTopic({ create: options.create ?? true });
    const bus = await createKafkaBus({ brokers: testKafkaBrokers, topic: topic.topic, ...(options.partitions ? { partitions: options.partitions } : {}) });
    const entry = { bus, topic, groups: [] as string[] };
    opened.push(entry);
    return entry;
  }

  const eventOf = (type: string, applicationId: string, streamVersion: number, metadata: Partial<EventMetadata> = {}): EventMessage =>
    toEventMessage({
      ...sampleEvent(type, { n: streamVersion }),
      metadata: { ...sampleEvent().metadata, ...metadata },
      position: streamVersion,
      streamId: `application-${applicationId}`,
      streamVersion,
      schemaVersion: 1,
      recordedAt: new Date(),
    });

  /** Subscribes `consumer` to `types`, keeping what it is handed. */
  async function collect(entry: Awaited<ReturnType<typeof openBus>>, consumer: string, types: string[]) {
    entry.groups.push(consumer);
    const received: IncomingMessage[] = [];
    const subscription = await entry.bus.subscribe({
      consumer,
      eventTypes: types,
      deliver: async (messages) => {
        received.push(...messages);
      },
    });
    return { received, subscription };
  }

  it('creates its topic at declaration, kept for ever and never compacted, and keeps for each declared consumer what is published from then on', async () => {
    const entry = await openBus({ create: false, partitions: 6 });
    const application = randomUUID();
    await entry.bus.declare([{ consumer: 'declared', eventTypes: ['Wanted'] }]);
    const metadata = await admin.metadata({ topics: [entry.topic.topic] });
    assert.equal(metadata.topics.get(entry.topic.topic)?.partitionsCount, 6);
    const [described] = await admin.describeConfigs({
      resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: entry.topic.topic, configurationKeys: ['retention.ms', 'cleanup.policy'] }],
    });
    assert.deepEqual(Object.fromEntries((described?.configs ?? []).map((config) => [config.name, config.value])), {
      'retention.ms': '-1',
      'cleanup.policy': 'delete',
    });

    const before = eventOf('Wanted', application, 1);
    await entry.bus.publish([before]);
    // Published after the declaration and before the consumer first started: it is kept for it.
    const declared = await collect(entry, 'declared', ['Wanted']);
    await waitUntil(async () => declared.received.length >= 1, 'the declared consumer gets what was published before it started');
    // A consumer nobody declared starts at its subscription.
    const undeclared = await collect(entry, 'undeclared', ['Wanted']);
    const after = eventOf('Wanted', application, 2);
    await entry.bus.publish([after]);
    await waitUntil(async () => declared.received.length >= 2 && undeclared.received.length >= 1, 'both get what was published after');
    assert.deepEqual(
      declared.received.map((message) => message.messageId),
      [before.eventId, after.eventId],
    );
    assert.deepEqual(
      undeclared.received.map((message) => message.messageId),
      [after.eventId],
    );
  });

  it('hands each record to one replica, once, in order, while replicas join and leave: a partition changes hands only once its batch in hand is committed', async () => {
    const entry = await openBus();
    entry.groups.push('shared');
    const delivered: { readonly replica: string; readonly eventId: string; readonly key: string; readonly n: number }[] = [];
    const replicas: Bus[] = [];
    const replica = async (name: string) => {
      const bus = await createKafkaBus({ brokers: testKafkaBrokers, topic: entry.topic.topic });
      replicas.push(bus);
      return bus.subscribe({
        consumer: 'shared',
        eventTypes: ['Wanted'],
        deliver: async (messages) => {
          for (const message of messages) {
            const body = message.body as EventMessage;
            delivered.push({ replica: name, eventId: body.eventId, key: body.partitionKey, n: body.streamVersion });
          }
          // Work in hand, for the rebalances to find.
          await new Promise((resolve) => setTimeout(resolve, 20));
        },
      });
    };
    try {
      const first = await replica('r1');
      await replica('r2');
      const applications = Array.from({ length: 50 }, () => randomUUID());
      for (let version = 1; version <= 30; version++) {
        await entry.bus.publish(applications.map((id) => eventOf('Wanted', id, version)));
        if (version === 10) await replica('r3');
        if (version === 20) await first.close();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await waitUntil(async () => delivered.length >= 1_500, 'every record is handed over', 60_000);
      // A record handed over a second time would come after the first: give it the time to.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.equal(new Set(delivered.map((record) => record.eventId)).size, delivered.length, 'no record was handed over twice');
      assert.equal(delivered.length, 1_500);
      for (const id of applications) {
        assert.deepEqual(
          delivered.filter((record) => record.key === id).map((record) => record.n),
          Array.from({ length: 30 }, (_, index) => index + 1),
          id,
        );
      }
      assert.equal(new Set(delivered.map((record) => record.replica)).size, 3, 'every replica was handed records');
    } finally {
      await Promise.all(replicas.map((bus) => bus.close()));
    }
  });

  it('makes its topic before its first publish when no consumer was declared, and stamps each record with the time its event was recorded', async () => {
    const entry = await openBus({ create: false });
    const recordedAt = '2021-06-01T12:00:00.000Z';
    await entry.bus.publish([{ ...eventOf('Wanted', randomUUID(), 1), recordedAt }]);
    // The log's time index: the first record at or after a moment, per partition (-1: none).
    const firstAtOrAfter = async (moment: string) => {
      const [listed] = await admin.listOffsets({
        topics: [
          {
            name: entry.topic.topic,
            partitions: Array.from({ length: 16 }, (_, partitionIndex) => ({ partitionIndex, timestamp: BigInt(Date.parse(moment)) })),
          },
        ],
      });
      return (listed?.partitions ?? []).filter((partition) => partition.offset >= 0n).length;
    };
    assert.equal(await firstAtOrAfter(recordedAt), 1, 'found at its recording time, years before it was published');
    assert.equal(await firstAtOrAfter('2021-06-01T12:00:00.001Z'), 0);
  });

  it('hands a message over with its headers, skips the types a consumer does not take and commits past them, and hands over what is not JSON as text', async () => {
    const entry = await openBus();
    const { received } = await collect(entry, 'picky', ['Wanted']);
    const application = randomUUID();
    const causationId = randomUUID();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const recorded = eventOf('Wanted', application, 4, { causationId });
    // Tracing context, as a producer that records it in the metadata would put it.
    const wanted = { ...recorded, metadata: { ...recorded.metadata, traceparent } };
    await entry.bus.publish([eventOf('Unwanted', application, 1), eventOf('Unwanted', application, 2), eventOf('Unwanted', application, 3), wanted]);
    await waitUntil(async () => received.length >= 1, 'the wanted event is handed over');
    const [message] = received;
    assert.equal(message?.messageId, wanted.eventId);
    assert.deepEqual(message?.body, JSON.parse(JSON.stringify(wanted)));
    assert.equal(message?.bodyIsJson, true);
    // The first records after an assignment may have been in the hands of a replica that died.
    assert.equal(message?.redelivered, true);
    assert.deepEqual(
      [
        'x-event-id',
        'x-event-type',
        'x-schema-version',
        'x-stream-id',
        'x-stream-version',
        'x-position',
        'x-partition-key',
        'x-correlation-id',
        'x-causation-id',
        'x-actor',
        'x-occurred-at',
        'x-recorded-at',
        'traceparent',
      ].map((name) => message?.headers[name]),
      [
        wanted.eventId,
        'Wanted',
        '1',
        `application-${application}`,
        '4',
        '4',
        application,
        wanted.metadata.correlationId,
        causationId,
        wanted.metadata.actor,
        wanted.metadata.occurredAt,
        wanted.recordedAt,
        traceparent,
      ],
    );

    // The skipped ones' offsets are committed with the batch: the group is at the topic's end.
    const group = consumerGroup(entry.topic.topic, 'picky');
    const committedTotal = async () => {
      const [listed] = await admin.listConsumerGroupOffsets({ groups: [group] });
      return (listed?.topics[0]?.partitions ?? []).reduce((sum, partition) => sum + partition.committedOffset, 0n);
    };
    await waitUntil(async () => (await committedTotal()) === 4n, 'the group committed past the skipped records');

    const producer = new Producer({
      clientId: 'mutuo-tests',
      bootstrapBrokers: testKafkaBrokers,
      serializers: { key: stringSerializer, headerKey: stringSerializer, headerValue: stringSerializer },
    });
    try {
      await producer.send({
        messages: [{ topic: entry.topic.topic, key: application, value: Buffer.from('{"not json'), headers: { 'x-event-type': 'Wanted' } }],
      });
    } finally {
      await producer.close();
    }
    await waitUntil(async () => received.length >= 2, 'the record that is not JSON is handed over');
    assert.deepEqual([received[1]?.body, received[1]?.bodyIsJson, received[1]?.messageId], ['{"not json', false, undefined]);
  });
});
