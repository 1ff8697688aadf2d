import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { applyReplay, planReplay, ReplayRefusedError, replayProgress } from '../../platform/messaging/kafka-replay.ts';
import { committedOffsets } from '../../platform/messaging/kafka-offsets.ts';
import { testKafkaBrokers } from '../../platform/messaging/testing.ts';
import { replayCommand, type ReplayDependencies } from './replay.ts';
import { UsageError } from './dlq.ts';

const partitions = 4;
/** Records stamped one minute apart, from this moment on. */
const firstStamp = Date.parse('2026-11-01T00:00:00Z');
const minute = 60_000;

describe('mutuo replay on Apache Kafka: a group moved back to a moment of the log', () => {
  const topic = `mutuo.test-${randomUUID().slice(0, 8)}.events`;
  const group = `mutuo.test-${randomUUID().slice(0, 8)}.scoring`;
  let admin: Admin;
  /** The minute each record was stamped at, by partition, in offset order. */
  const stamps = new Map<number, number[]>();

  before(async () => {
    admin = new Admin({ clientId: 'mutuo-replay-test', bootstrapBrokers: testKafkaBrokers });
    await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
    const producer = new Producer({ clientId: 'mutuo-replay-test', bootstrapBrokers: testKafkaBrokers, serializers: stringSerializers, acks: -1 });
    try {
      // 40 records, ten a partition, stamped 0..39 minutes after firstStamp in turn across the partitions.
      for (let n = 0; n < 40; n++) {
        const partition = n % partitions;
        await producer.send({ messages: [{ topic, partition, key: `k${n}`, value: String(n), timestamp: BigInt(firstStamp + n * minute) }] });
        stamps.set(partition, [...(stamps.get(partition) ?? []), n]);
      }
    } finally {
      await producer.close();
    }
    // The group has gone through everything: its offsets are at the end of each partition.
    await admin.alterConsumerGroupOffsets({
      groupId: group,
      topics: [{ name: topic, partitionOffsets: Array.from({ length: partitions }, (_, partition) => ({ partition, offset: 10n })) }],
    });
  });
  after(async () => {
    await admin.deleteGroups({ groups: [group] }).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.close();
  });

  it('plans, for each partition, the first record stamped at or after the moment, and counts what lies after it', async () => {
    const plan = await planReplay(admin, { topic, group, from: new Date(firstStamp + 30 * minute) });
    // Minutes 30..39: partition p holds minutes p, p+4, ..., so those at or after 30 start at offset ceil((30 - p) / 4).
    for (const { partition, from, end, committed } of plan.partitions) {
      const expected = stamps.get(partition)!.findIndex((stamp) => stamp >= 30);
      assert.equal(from, BigInt(expected), `partition ${partition}`);
      assert.equal(end, 10n);
      assert.equal(committed, 10n);
    }
    assert.equal(plan.records, 10);
    const beyond = await planReplay(admin, { topic, group, from: new Date(firstStamp + 1_000 * minute) });
    assert.equal(beyond.records, 0, 'a moment after the last record replays nothing');
    assert.ok(beyond.partitions.every(({ from, end }) => from === end));
  });

  it('moves the offsets, and counts the progress as the group commits its way back to the end', async () => {
    const plan = await planReplay(admin, { topic, group, from: new Date(firstStamp + 20 * minute) });
    assert.equal(plan.records, 20);
    await applyReplay(admin, plan);
    const moved = await committedOffsets(admin, topic, group);
    for (const { partition, from } of plan.partitions) assert.equal(moved.get(partition), from);
    assert.deepEqual(await replayProgress(admin, plan), { replayed: 0, total: 20 });

    // The service comes back: its group is handed the twenty records again, and commits them.
    const consumer = new Consumer({ groupId: group, clientId: 'mutuo-replay-test', bootstrapBrokers: testKafkaBrokers, deserializers: stringDeserializers });
    const seen: number[] = [];
    try {
      const stream = await consumer.consume({ topics: [topic], mode: 'committed', autocommit: false });
      for await (const message of stream) {
        seen.push(Number(message.value));
        await message.commit();
        if (seen.length === 20) break;
      }
    } finally {
      await consumer.close(true);
    }
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => 20 + i),
    );
    assert.deepEqual(await replayProgress(admin, plan), { replayed: 20, total: 20 });
  });

  it('is refused while a replica of the service is in the group, saying to stop it', async () => {
    const consumer = new Consumer({ groupId: group, clientId: 'mutuo-replay-test', bootstrapBrokers: testKafkaBrokers, deserializers: stringDeserializers });
    try {
      await consumer.consume({ topics: [topic], mode: 'committed', autocommit: false });
      const plan = await planReplay(admin, { topic, group, from: new Date(firstStamp) });
      await assert.rejects(applyReplay(admin, plan), (error: unknown) => error instanceof ReplayRefusedError && /stop every replica/.test(error.message));
      const offsets = await committedOffsets(admin, topic, group);
      assert.ok(
        [...offsets.values()].every((offset) => offset === 10n),
        'nothing moved',
      );
    } finally {
      await consumer.close(true);
    }
  });

  it('as a command: shows the plan and changes nothing without --yes, moves the offsets with it, and refuses what it cannot read', async () => {
    let written = '';
    const dependencies: ReplayDependencies = {
      admin,
      topic,
      consumers: ['scoring', 'notification'],
      groupOf: () => group,
      recordedAtOf: async (position) => (position <= 40 ? new Date(firstStamp + (position + 1) * minute) : undefined),
      write: (text) => {
        written += text;
      },
      interactive: false,
    };
    const before = await committedOffsets(admin, topic, group);
    const dry = await replayCommand(['--consumer', 'scoring', '--from', '2026-11-01T00:36:00Z'], dependencies);
    assert.match(dry, /nothing changed: run again with --yes/);
    assert.match(written, /from 2026-11-01T00:36:00.000Z, 4 records handed over again/);
    assert.deepEqual(await committedOffsets(admin, topic, group), before);

    // Position 35 was recorded at minute 36: a replay from it starts a minute earlier, with the record of minute 35 too.
    const done = await replayCommand(['--consumer', 'scoring', '--from', '35', '--yes', '--no-wait'], dependencies);
    assert.match(done, /5 records to hand over again once scoring runs/);
    assert.equal((await replayProgress(admin, await planReplay(admin, { topic, group, from: new Date(firstStamp + 35 * minute) }))).total, 5);

    await assert.rejects(
      replayCommand(['--consumer', 'scorer', '--from', '35'], dependencies),
      (error) => error instanceof UsageError && /scoring, notification/.test(error.message),
    );
    await assert.rejects(replayCommand(['--consumer', 'scoring', '--from', 'yesterday'], dependencies), UsageError);
    await assert.rejects(replayCommand(['--consumer', 'scoring', '--from', '99'], dependencies), /no event at or after position 99/);
    await assert.rejects(replayCommand(['--consumer', 'scoring'], dependencies), UsageError);
  });

  it('is refused for a topic the cluster does not have, naming it', async () => {
    await assert.rejects(planReplay(admin, { topic: `${topic}.missing`, group, from: new Date() }), /does not exist/);
  });
});
