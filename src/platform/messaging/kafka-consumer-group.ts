import { ConnectionPool, Consumer, IS_CONTROL, ListOffsetTimestamps, findErrorBy, protocolErrors, type fetchV17, type RecordsBatch } from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../runtime/follower.ts';
import type { BusSubscription, Subscription } from './bus.ts';
import { headersOf, incomingMessage } from './kafka-records.ts';
import { eventTypeHeader, type IncomingMessage } from './message.ts';

/**
 * A consumer's group on a topic: its replicas share the topic's partitions. It is named in
 * the topic's namespace, the topic's name less `.events` (mutuo.events: mutuo.scoring;
 * mutuo.staging.events: mutuo.staging.scoring), so that two topics' groups never mix.
 */
export function consumerGroup(topic: string, consumer: string): string {
  return `${topic.replace(/\.events$/, '')}.${consumer}`;
}

/** At most this many records of a partition are handed over at once. */
const maxBatch = 64;
/** Records of a partition fetched ahead of what was handed over: past this, it is not fetched until they are. */
const maxWaiting = 4 * maxBatch;
/** How long a fetch waits for records at the broker when none are there: a new partition, or one with room again, waits as much for its turn. */
const fetchWaitMs = 500;
const partitionMaxBytes = 1_048_576;
const fetchMaxBytes = 16 * 1_048_576;
/** Between tries at what needs the brokers (and a delivery that failed without the consumer closing). */
export const retryBackoff = { firstMs: 200, maxMs: 5_000 };

/** The partitions a fetch failed for because their offset is not in the log (any more, or yet). */
function outOfRangePartitions(error: unknown): number[] {
  if (!findErrorBy(error as Error, 'apiId', 'OFFSET_OUT_OF_RANGE')) return [];
  const { response } = error as { readonly response?: fetchV17.FetchResponse };
  const code = protocolErrors.OFFSET_OUT_OF_RANGE!.code;
  return (response?.responses ?? []).flatMap((topic) =>
    topic.partitions.filter((partition) => partition.errorCode === code).map((partition) => partition.partitionIndex),
  );
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
          this.waiting.push({ offset, message: this.takes(headers[eventTypeHeader]) ? incomingMessage(record, headers) : undefined });
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

export type GroupMemberOptions = {
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
export async function joinConsumerGroup(subscription: BusSubscription, options: GroupMemberOptions): Promise<Subscription> {
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
