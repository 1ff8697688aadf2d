import {
  Admin,
  ConnectionPool,
  Consumer,
  IS_CONTROL,
  ListOffsetTimestamps,
  ProduceAcks,
  Producer,
  compatibilityPartitioner,
  findErrorBy,
  protocolErrors,
  stringSerializer,
  type fetchV17,
  type KafkaRecord,
  type RecordsBatch,
} from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../runtime/follower.ts';
import type { Bus, BusSubscription, ConsumerTopology, PublishOptions, Subscription } from './bus.ts';
import { eventTypeHeader, messageHeaders, republishedHeader, type EventMessage, type IncomingMessage } from './message.ts';

/**
 * The one topic every event is published to: a consumer takes several event types, and an
 * application's events must stay in order across types, which Kafka keeps within a partition only.
 */
export const defaultEventsTopic = 'mutuo.events';

/** A consumer's group on a topic: its replicas share the topic's partitions. */
export function consumerGroup(topic: string, consumer: string): string {
  return `${topic}.${consumer}`;
}

/** Kafka records have no message-id: the event's id travels as a header. */
export const eventIdHeader = 'x-event-id';
export const causationIdHeader = 'x-causation-id';

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

/** At most this many records of a partition are handed over at once. */
const maxBatch = 64;
/** Records of a partition fetched ahead of what was handed over: past this, it is not fetched until they are. */
const maxWaiting = 4 * maxBatch;
/** How long a fetch waits for records at the broker when none are there: a new partition, or one with room again, waits as much for its turn. */
const fetchWaitMs = 500;
const partitionMaxBytes = 1_048_576;
const fetchMaxBytes = 16 * 1_048_576;
const retryBackoff = { firstMs: 200, maxMs: 5_000 };

/**
 * An event as a record's value, and back: JSON, in these two functions only, so that another
 * encoding replaces them alone. A value that is not JSON is handed over as text, for the
 * consumer to dead-letter.
 */
function encodeValue(message: EventMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

function decodeValue(value: Buffer | null): Pick<IncomingMessage, 'body' | 'bodyIsJson'> {
  const text = value?.toString() ?? '';
  try {
    return { body: JSON.parse(text), bodyIsJson: true };
  } catch {
    return { body: text, bodyIsJson: false };
  }
}

function recordHeaders(message: EventMessage, options: PublishOptions): Record<string, string> {
  const { causationId } = message.metadata;
  // Tracing context, when whoever recorded the event put it in the metadata.
  const { traceparent } = message.metadata as { readonly traceparent?: unknown };
  const headers = {
    ...messageHeaders(message, options),
    [eventIdHeader]: message.eventId,
    ...(causationId ? { [causationIdHeader]: causationId } : {}),
    ...(typeof traceparent === 'string' ? { traceparent } : {}),
  };
  // Kafka's headers are bytes: numbers travel as their decimal text.
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, String(value)]));
}

function headersOf(record: KafkaRecord): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of record.headers) if (name) headers[name.toString()] = value?.toString() ?? '';
  return headers;
}

function incoming(record: KafkaRecord, headers: Record<string, string>): IncomingMessage {
  return { messageId: headers[eventIdHeader], headers, redelivered: headers[republishedHeader] !== undefined, ...decodeValue(record.value) };
}

/** The partitions a fetch failed for because their offset is not in the log (any more, or yet). */
function outOfRangePartitions(error: unknown): number[] {
  if (!findErrorBy(error as Error, 'apiId', 'OFFSET_OUT_OF_RANGE')) return [];
  const { response } = error as { readonly response?: fetchV17.FetchResponse };
  const code = protocolErrors.OFFSET_OUT_OF_RANGE!.code;
  return (response?.responses ?? []).flatMap((topic) =>
    topic.partitions.filter((partition) => partition.errorCode === code).map((partition) => partition.partitionIndex),
  );
}

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

async function endOffsets(admin: Admin, topic: string): Promise<{ partition: number; offset: bigint }[]> {
  const metadata = await admin.metadata({ topics: [topic] });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  const [listed] = await admin.listOffsets({
    topics: [{ name: topic, partitions: Array.from({ length: count }, (_, partitionIndex) => ({ partitionIndex, timestamp: ListOffsetTimestamps.LATEST })) }],
  });
  return (listed?.partitions ?? []).map(({ partitionIndex, offset }) => ({ partition: partitionIndex, offset }));
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
  const ends = await endOffsets(admin, topic);
  const [listed] = await admin.listConsumerGroupOffsets({ groups: [group] });
  const committed = new Set(
    (listed?.topics.find((candidate) => candidate.name === topic)?.partitions ?? [])
      .filter((partition) => partition.committedOffset >= 0n)
      .map((partition) => partition.partitionIndex),
  );
  const missing = ends.filter(({ partition }) => !committed.has(partition));
  if (missing.length === 0) return;
  try {
    await admin.alterConsumerGroupOffsets({ groupId: group, topics: [{ name: topic, partitionOffsets: missing }] });
  } catch (error) {
    // The broker takes offsets from outside a group only while it has no members; one that
    // has members was started by the first of them, and they go on from where they are.
    const [described] = (await admin.describeGroups({ groups: [group] })).values();
    if (!described || described.members.size === 0) throw error;
  }
}

type Waiting = { readonly offset: bigint; readonly message: IncomingMessage | undefined };

type Committer = (partition: number, offset: bigint) => Promise<boolean>;

/**
 * Commits what the partitions ask, one request at a time: what they ask while one is under
 * way goes together in the next. Each asker learns whether its offset was committed.
 */
function createCommitter(consumer: Consumer, topic: string, onError: (error: unknown) => void): Committer {
  const asked = new Map<number, { offset: bigint; readonly answers: ((committed: boolean) => void)[] }>();
  let committing = false;
  async function commitAsked(): Promise<void> {
    committing = true;
    while (asked.size > 0) {
      const batch = [...asked];
      asked.clear();
      let committed = true;
      try {
        await consumer.commit({ offsets: batch.map(([partition, { offset }]) => ({ topic, partition, offset, leaderEpoch: -1 })) });
      } catch (error) {
        committed = false;
        onError(error);
      }
      for (const [, { answers }] of batch) for (const answer of answers) answer(committed);
    }
    committing = false;
  }
  return (partition, offset) =>
    new Promise((resolve) => {
      const pending = asked.get(partition);
      if (pending) {
        if (offset > pending.offset) pending.offset = offset;
        pending.answers.push(resolve);
      } else asked.set(partition, { offset, answers: [resolve] });
      if (!committing) void commitAsked();
    });
}

/**
 * A partition this replica owns in the group's current generation: the records fetched,
 * handed over in offset order, one batch at a time, each batch's offset committed once its
 * delivery resolved and before the next batch is handed over. So a replica that dies leaves
 * at most one batch uncommitted past what it handled: the one it had in hand, which started
 * at the committed offset and held at most `maxBatch` records.
 */
class OwnedPartition {
  /** Where the next fetch starts. */
  fetchOffset: bigint;
  private readonly waiting: Waiting[] = [];
  private handing: Promise<void> | undefined;
  private revoked = false;
  private lastCommitted = true;

  constructor(
    readonly partition: number,
    start: bigint,
    /** Records below this offset may have been in the hands of a replica that died: they are handed over as redelivered. */
    private readonly redeliveredBelow: bigint,
    private readonly takes: (eventType: string | undefined) => boolean,
    private readonly deliver: BusSubscription['deliver'],
    private readonly commit: Committer,
    private readonly hasRoom: () => void,
  ) {
    this.fetchOffset = start;
  }

  wantsRecords(): boolean {
    return !this.revoked && this.waiting.length < maxWaiting;
  }

  /** The records of a fetch from `requestedOffset`; nothing if the partition has moved on or was let go meanwhile. */
  receive(requestedOffset: bigint, batches: readonly RecordsBatch[]): void {
    if (this.revoked || requestedOffset !== this.fetchOffset) return;
    for (const batch of batches) {
      // Transaction markers take offsets too, and carry no event.
      if ((batch.attributes & IS_CONTROL) === 0) {
        for (const record of batch.records) {
          const offset = batch.firstOffset + BigInt(record.offsetDelta);
          if (offset < this.fetchOffset) continue;
          const headers = headersOf(record);
          // A type the consumer does not take is not handed over; its offset is committed with the batch it falls in.
          this.waiting.push({ offset, message: this.takes(headers[eventTypeHeader]) ? incoming(record, headers) : undefined });
        }
      }
      const lastOffset = batch.firstOffset + BigInt(batch.lastOffsetDelta);
      if (lastOffset >= this.fetchOffset) this.fetchOffset = lastOffset + 1n;
    }
    this.handOverSoon();
  }

  private handOverSoon(): void {
    if (this.handing || this.revoked || this.waiting.length === 0) return;
    this.handing = this.handOver().finally(() => {
      this.handing = undefined;
      // Records may have come between the hand-over's last look and now.
      this.handOverSoon();
    });
  }

  private async handOver(): Promise<void> {
    for (let failures = 0; !this.revoked && this.waiting.length > 0; ) {
      const batch = this.waiting.slice(0, maxBatch);
      const messages = batch.flatMap(({ offset, message }) => {
        if (!message) return [];
        return offset < this.redeliveredBelow && !message.redelivered ? [{ ...message, redelivered: true }] : [message];
      });
      if (messages.length > 0) {
        try {
          await this.deliver(messages);
          failures = 0;
        } catch {
          // The consumer is closing, or could not record the outcomes: the batch stays at the
          // head, for this replica or, through the committed offset, the partition's next owner.
          if (this.revoked) return;
          await sleep(backoffMs(failures++, retryBackoff, Math.random));
          continue;
        }
      }
      this.waiting.splice(0, batch.length);
      // Delivered, so committed even when the partition was let go meanwhile: the group's
      // generation only ends once this replica has joined the next one, after this commit.
      this.lastCommitted = await this.commit(this.partition, batch.at(-1)!.offset + 1n);
      this.hasRoom();
    }
  }

  /** Hands nothing more over: what was fetched and not handed over is dropped, for the next owner to fetch from the committed offset. */
  revoke(): void {
    this.revoked = true;
    this.waiting.length = 0;
  }

  /** Resolves once the batch in hand, if any, is delivered and committed (or given back). */
  async settled(): Promise<void> {
    await this.handing;
  }

  /** Let go with nothing in hand and every delivered batch committed: its next owner finds nothing handed over twice. */
  releasedCleanly(): boolean {
    return this.revoked && this.handing === undefined && this.lastCommitted;
  }
}

type GroupMemberOptions = {
  readonly bootstrapBrokers: string[];
  readonly clientId: string;
  readonly topic: string;
  readonly sessionTimeoutMs: number;
  readonly onError: (error: unknown) => void;
};

/**
 * One replica of a consumer in its group. The group's members share the topic's partitions;
 * this one fetches the records of those it owns, one fetch in flight per broker, and hands
 * each partition's over in order, partitions side by side.
 *
 * A rebalance (a replica joins or leaves, or stops heartbeating) is eager: before this replica
 * joins the next generation, it hands nothing more over, lets the batches in hand finish and
 * commits them; the broker gives no partition to another member before every member has
 * joined, so two replicas never hold one partition's batches at once. In the new generation
 * each partition starts again from its committed offset. Its first `maxBatch` records are
 * handed over as redelivered (they may have been in the hands of a replica that died, and the
 * consumer counts its attempts at them), unless this replica owned the partition in the
 * generation before and let it go cleanly. A batch still in hand when the wait for it ends
 * (the database away, say) is finished late, and its partition's next owner may get it too:
 * the consumer's inbox, under the key's lock, absorbs the second delivery.
 */
async function joinConsumerGroup(subscription: BusSubscription, options: GroupMemberOptions): Promise<Subscription> {
  const { topic, onError } = options;
  const groupOptions = {
    sessionTimeout: options.sessionTimeoutMs,
    // Time for every member to finish its batches in hand and join.
    rebalanceTimeout: options.sessionTimeoutMs * 3,
    heartbeatInterval: Math.min(1_000, options.sessionTimeoutMs / 3),
  };
  // A replica that takes longer than this over its batches in hand joins without them.
  const releaseWaitMs = options.sessionTimeoutMs / 2;
  const eventTypes = new Set(subscription.eventTypes);
  const takes = (eventType: string | undefined) => eventType === undefined || eventTypes.has(eventType);
  const owned = new Map<number, OwnedPartition>();
  let closing = false;
  /** Bumped whenever what this replica owns changes: an assignment still reading its offsets when it is bumped is dropped. */
  let generationToken = 0;
  let releasedBefore: { readonly generation: number; readonly cleanly: ReadonlySet<number> } | undefined;

  const consumer = new Consumer({
    clientId: options.clientId,
    groupId: consumerGroup(topic, subscription.consumer),
    bootstrapBrokers: options.bootstrapBrokers,
    autocommit: false,
    ...groupOptions,
    // Runs before every JoinGroup: this replica's partitions are given up first (see above).
    protocolsMetadata: async () => {
      await releaseOwned();
      return Buffer.alloc(0);
    },
  });
  // Fetches wait at the broker: on connections of their own, so that heartbeats and commits do not queue behind them.
  const fetchConnections = new ConnectionPool(options.clientId);
  const commit = createCommitter(consumer, topic, onError);

  async function releaseOwned(): Promise<void> {
    const releasing = [...owned.values()];
    owned.clear();
    generationToken++;
    if (releasing.length === 0) return;
    const generation = consumer.generationId;
    for (const partition of releasing) partition.revoke();
    await Promise.race([Promise.all(releasing.map((partition) => partition.settled())), sleep(releaseWaitMs)]);
    releasedBefore = {
      generation,
      cleanly: new Set(releasing.filter((partition) => partition.releasedCleanly()).map((partition) => partition.partition)),
    };
  }

  /** Where each assigned partition starts: the group's committed offset, else the partition's earliest. */
  async function startingOffsets(assigned: readonly number[]): Promise<Map<number, bigint>> {
    const committed = (await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [...assigned] }] })).get(topic) ?? [];
    const starts = new Map<number, bigint>();
    const unstarted: number[] = [];
    for (const partition of assigned) {
      const offset = committed[partition] ?? -1n;
      if (offset >= 0n) starts.set(partition, offset);
      else unstarted.push(partition);
    }
    // A group with no offset on a partition was never declared, or its offsets expired (the
    // broker's offsets.retention.minutes after its last member left): its log is replayed from
    // the start rather than any event lost; the consumer's inbox absorbs what it had handled.
    if (unstarted.length > 0) {
      const earliest =
        (await consumer.listOffsets({ topics: [topic], partitions: { [topic]: unstarted }, timestamp: ListOffsetTimestamps.EARLIEST })).get(topic) ?? [];
      for (const partition of unstarted) starts.set(partition, earliest[partition] ?? 0n);
    }
    return starts;
  }

  async function takeAssignment(generation: number, assigned: readonly number[]): Promise<void> {
    await releaseOwned();
    const token = generationToken;
    for (let failures = 0; ; failures++) {
      try {
        const starts = await startingOffsets(assigned);
        if (token !== generationToken || closing) return;
        for (const [partition, start] of starts) {
          const retained = releasedBefore?.generation === generation - 1 && releasedBefore.cleanly.has(partition);
          const redeliveredBelow = retained ? start : start + BigInt(maxBatch);
          owned.set(partition, new OwnedPartition(partition, start, redeliveredBelow, takes, subscription.deliver, commit, fetchMore));
        }
        fetchMore();
        return;
      } catch (error) {
        if (token !== generationToken || closing) return;
        onError(error);
        await sleep(backoffMs(failures, retryBackoff, Math.random));
      }
    }
  }

  const fetching = new Set<number>();
  let fetchFailures = 0;
  let fetchRetry: NodeJS.Timeout | undefined;

  /** Looks again after a backoff: the brokers or the partitions' leaders were not to be had. */
  function fetchMoreLater(): void {
    if (fetchRetry || closing) return;
    fetchRetry = setTimeout(
      () => {
        fetchRetry = undefined;
        fetchMore();
      },
      backoffMs(fetchFailures++, retryBackoff, Math.random),
    );
  }

  /** Starts a fetch from each broker that leads partitions with room and has none in flight. */
  function fetchMore(): void {
    if (closing) return;
    const wanting = [...owned.values()].filter((partition) => partition.wantsRecords());
    if (wanting.length === 0) return;
    void consumer.metadata({ topics: [topic] }).then(
      (metadata) => {
        const topicMetadata = metadata.topics.get(topic);
        if (closing) return;
        const byLeader = new Map<number, OwnedPartition[]>();
        for (const partition of wanting) {
          const leader = topicMetadata?.partitions[partition.partition]?.leader ?? -1;
          if (leader >= 0) byLeader.set(leader, [...(byLeader.get(leader) ?? []), partition]);
        }
        if (!topicMetadata || byLeader.size === 0) {
          // No leader yet (a topic just made, a broker failing over): ask the cluster afresh, later.
          consumer.clearMetadata();
          fetchMoreLater();
          return;
        }
        for (const [node, partitions] of byLeader) {
          if (fetching.has(node)) continue;
          fetching.add(node);
          void fetchFrom(node, topicMetadata.id, partitions).finally(() => {
            fetching.delete(node);
            fetchMore();
          });
        }
      },
      (error: unknown) => {
        onError(error);
        fetchMoreLater();
      },
    );
  }

  /**
   * Partitions whose offset the log does not have: truncated or recreated under the group,
   * or cut short by a retention set by hand. Read again from what it has, as a group with no
   * offset would be.
   */
  async function restartAtEarliest(requests: readonly { partition: OwnedPartition; offset: bigint }[]): Promise<void> {
    if (requests.length === 0) return;
    const partitions = requests.map(({ partition }) => partition.partition);
    const earliest =
      (await consumer.listOffsets({ topics: [topic], partitions: { [topic]: partitions }, timestamp: ListOffsetTimestamps.EARLIEST })).get(topic) ?? [];
    for (const { partition, offset } of requests) {
      if (partition.fetchOffset === offset) partition.fetchOffset = earliest[partition.partition] ?? 0n;
    }
  }

  async function fetchFrom(node: number, topicId: string, partitions: readonly OwnedPartition[]): Promise<void> {
    const requested = new Map(partitions.map((partition) => [partition.partition, { partition, offset: partition.fetchOffset }]));
    try {
      const response = await consumer.fetch({
        node,
        topics: [
          {
            topicId,
            partitions: [...requested.values()].map(({ partition, offset }) => ({
              partition: partition.partition,
              fetchOffset: offset,
              partitionMaxBytes,
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1,
            })),
          },
        ],
        maxWaitTime: fetchWaitMs,
        minBytes: 1,
        maxBytes: fetchMaxBytes,
        connectionPool: fetchConnections,
      });
      fetchFailures = 0;
      for (const topicResponse of response.responses) {
        for (const { partitionIndex, records } of topicResponse.partitions) {
          const request = requested.get(partitionIndex);
          request?.partition.receive(request.offset, records ?? []);
        }
      }
    } catch (error) {
      if (closing) return;
      onError(error);
      const outOfRange = outOfRangePartitions(error);
      if (outOfRange.length > 0) {
        await restartAtEarliest(outOfRange.flatMap((index) => requested.get(index) ?? [])).catch(onError);
        return;
      }
      await sleep(backoffMs(fetchFailures++, retryBackoff, Math.random));
    }
  }

  consumer.on('consumer:group:join', ({ generationId, assignments }) => {
    if (closing) return;
    const assigned = assignments?.find((assignment) => assignment.topic === topic)?.partitions ?? [];
    void takeAssignment(generationId ?? consumer.generationId, assigned);
  });
  // The client gives up rejoining after its retries (the broker away for long), and then
  // stops heartbeating: this replica joins again, until it is back in.
  let rejoining = false;
  async function rejoin(): Promise<void> {
    rejoining = true;
    for (let failures = 0; !closing; failures++) {
      await sleep(backoffMs(failures, retryBackoff, Math.random));
      try {
        if (!closing) await consumer.joinGroup(groupOptions);
        break;
      } catch (error) {
        onError(error);
      }
    }
    rejoining = false;
  }
  consumer.on('error', (error: unknown) => {
    onError(error);
    if (!closing && !rejoining) void rejoin();
  });
  consumer.topics.track(topic);
  try {
    await consumer.joinGroup(groupOptions);
  } catch (error) {
    closing = true;
    await consumer.close().catch(() => undefined);
    await fetchConnections.close();
    throw error;
  }

  return {
    close: async () => {
      if (closing) return;
      closing = true;
      generationToken++;
      clearTimeout(fetchRetry);
      const releasing = [...owned.values()];
      owned.clear();
      for (const partition of releasing) partition.revoke();
      await Promise.all(releasing.map((partition) => partition.settled()));
      // Leaves the group at once: the others take the partitions over without waiting for the session to time out.
      await consumer.close().catch(onError);
      await fetchConnections.close();
    },
  };
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
          messages: messages.map((message) => ({
            topic,
            key: message.partitionKey,
            value: encodeValue(message),
            headers: recordHeaders(message, publishOptions),
          })),
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
