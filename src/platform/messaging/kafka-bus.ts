import { Admin, ListOffsetTimestamps, ProduceAcks, Producer, compatibilityPartitioner, findErrorBy, stringSerializer } from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../runtime/follower.ts';
import type { Bus, BusSubscription, ConsumerTopology, PublishOptions, Subscription } from './bus.ts';
import { consumerGroup, joinConsumerGroup, retryBackoff } from './kafka-consumer-group.ts';
import { eventRecord } from './kafka-records.ts';
import { committedOffsets, groupMembers, offsetsAt, partitionsOf } from './kafka-offsets.ts';
import type { EventMessage } from './message.ts';

/**
 * The one topic every event is published to: a consumer takes several event types, and an
 * application's events must stay in order across types, which Kafka keeps within a partition only.
 */
export const defaultEventsTopic = 'mutuo.events';

export type KafkaBusOptions = {
  /** host:port of one or more brokers, to bootstrap from. */
  readonly brokers: readonly string[];
  /** Partitions of the topic when this bus creates it (default 16); a topic that exists keeps its own. */
  readonly partitions?: number;
  readonly topic?: string;
  readonly clientId?: string;
  /**
   * How long the broker waits for a replica that stopped heartbeating (killed, partitioned away)
   * before handing its partitions to the others (default 10 s; brokers accept 6 s and more).
   */
  readonly sessionTimeoutMs?: number;
  readonly onError?: (error: unknown) => void;
};

const defaultPartitions = 16;

async function createTopicIfMissing(admin: Admin, topic: string, partitions: number): Promise<void> {
  try {
    await admin.createTopics({
      topics: [topic],
      partitions,
      // The broker's default.replication.factor.
      replicas: -1,
      // Kept for ever, never compacted: the replayable trail of every event (compaction keeps a key's last record only).
      configs: [
        { name: 'retention.ms', value: '-1' },
        { name: 'cleanup.policy', value: 'delete' },
      ],
    });
  } catch (error) {
    if (!findErrorBy(error as Error, 'apiId', 'TOPIC_ALREADY_EXISTS')) throw error;
  }
}

/**
 * Starts a group's log at the topic's end on every partition where the group has no
 * committed offset: from there on, whatever is published is kept for it, whether it runs
 * yet or not, as a RabbitMQ queue keeps what is routed to it from its declaration on.
 * Partitions it has an offset on are left alone, so declaring again loses nothing.
 */
async function startGroupAtEnd(admin: Admin, topic: string, group: string): Promise<void> {
  // The end first, then the committed offsets: a declaration that commits after another one
  // (whose relay then published) commits an end it read before that, so at or before those
  // events, never past them.
  const ends = await offsetsAt(admin, topic, await partitionsOf(admin, topic), ListOffsetTimestamps.LATEST);
  const committed = await committedOffsets(admin, topic, group);
  const missing = [...ends].filter(([partition]) => !committed.has(partition)).map(([partition, offset]) => ({ partition, offset }));
  if (missing.length === 0) return;
  try {
    await admin.alterConsumerGroupOffsets({ groupId: group, topics: [{ name: topic, partitionOffsets: missing }] });
  } catch (error) {
    // The broker takes offsets from outside a group only while it has no members; one that
    // has members was started by the first of them, and they go on from where they are.
    if ((await groupMembers(admin, group)).members === 0) throw error;
  }
}

/**
 * The bus over Apache Kafka. Every event goes to one topic, keyed by its partition key (its
 * application), so that each application's events are in one partition, in publication
 * order, whatever their types; the topic keeps them for ever. Each consumer is a group whose
 * replicas share the partitions (see joinConsumerGroup); it skips the types it does not take.
 * Nothing is requeued and nothing dropped: the consumer retries in place and parks what keeps
 * failing in its database; an offset is committed only once its batch's delivery resolved.
 */
export async function createKafkaBus(options: KafkaBusOptions): Promise<Bus> {
  const topic = options.topic ?? defaultEventsTopic;
  const clientId = options.clientId ?? 'mutuo';
  const bootstrapBrokers = [...options.brokers];
  const onError = options.onError ?? (() => undefined);
  const admin = new Admin({ clientId, bootstrapBrokers });
  const producer = new Producer({
    clientId,
    bootstrapBrokers,
    // Broker-side deduplication of the client's own retries, and every replica's acknowledgement.
    idempotent: true,
    acks: ProduceAcks.ALL,
    // The Java client's choice of partition for a key, so that other clients agree with it.
    partitioner: compatibilityPartitioner,
    serializers: { key: stringSerializer, headerKey: stringSerializer, headerValue: stringSerializer },
  });
  const subscriptions = new Set<Subscription>();
  let topicCreated: Promise<void> | undefined;
  const createTopic = () =>
    (topicCreated ??= createTopicIfMissing(admin, topic, options.partitions ?? defaultPartitions).catch((error: unknown) => {
      topicCreated = undefined;
      throw error;
    }));
  // One send at a time: each waits for the one before, so that the log keeps the order of the calls too.
  let sending: Promise<unknown> = Promise.resolve();
  let closed = false;

  /**
   * Joins the consumer's group, trying again while the brokers are away, as RabbitMQ's
   * consumers wait for theirs: a service that starts while Kafka is down subscribes once
   * it is back.
   */
  async function joinWhenReachable(subscription: BusSubscription): Promise<Subscription> {
    for (let failures = 0; ; failures++) {
      if (closed) throw new Error('the Kafka bus is closed');
      try {
        await createTopic();
        // As RabbitMQ's consumers declare their queues: a consumer no relay declared starts at its subscription.
        await startGroupAtEnd(admin, topic, consumerGroup(topic, subscription.consumer));
        const member = await joinConsumerGroup(subscription, {
          bootstrapBrokers,
          clientId,
          topic,
          sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
          onError,
        });
        if (!closed) return member;
        await member.close();
      } catch (error) {
        if (!closed) onError(error);
      }
      if (!closed) await sleep(backoffMs(failures, retryBackoff, Math.random));
    }
  }

  return {
    async declare(consumers: readonly ConsumerTopology[]) {
      await createTopic();
      for (const { consumer } of consumers) await startGroupAtEnd(admin, topic, consumerGroup(topic, consumer));
    },

    publish(messages: readonly EventMessage[], publishOptions: PublishOptions = {}) {
      if (messages.length === 0) return Promise.resolve();
      // The topic is made before the first publish too: a relay with no consumers to declare publishes all the same.
      const sent = sending.then(async () => {
        await createTopic();
        await producer.send({
          messages: messages.map((message) => eventRecord(topic, message, publishOptions)),
        });
      });
      sending = sent.catch(() => undefined);
      return sent;
    },

    async subscribe(subscription: BusSubscription): Promise<Subscription> {
      const member = await joinWhenReachable(subscription);
      const subscribed: Subscription = {
        close: async () => {
          subscriptions.delete(subscribed);
          await member.close();
        },
      };
      subscriptions.add(subscribed);
      return subscribed;
    },

    async close() {
      closed = true;
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
      await producer.close();
      await admin.close();
    },
  };
}
