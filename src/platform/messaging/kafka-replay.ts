import { ListOffsetTimestamps, type Admin } from '@platformatic/kafka';
import { committedOffsets, groupMembers, offsetsAt, partitionsOf } from './kafka-offsets.ts';

/** Where a partition of a replay starts and where the log ended when it was planned. */
export type PartitionReplay = { readonly partition: number; readonly from: bigint; readonly end: bigint; readonly committed: bigint | undefined };

/** A consumer group's offsets to move back (or forward) to a moment of the log. */
export type ReplayPlan = {
  readonly topic: string;
  readonly group: string;
  /** Records are stamped with their event's recording time: the first record at or after this moment is where each partition starts again. */
  readonly from: Date;
  readonly partitions: readonly PartitionReplay[];
  /** Records from the new offsets to the end of the log: what the group will be handed again (or anew). */
  readonly records: number;
};

export class ReplayRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayRefusedError';
  }
}

/** Kafka's "no record at or after this timestamp": the partition starts at its end. */
const noRecordAfter = -1n;

/**
 * What a replay from `from` would do to the group: for each partition, the first record
 * stamped at or after that moment (the end, where there is none), and how many records
 * lie from there to the end of the log.
 */
export async function planReplay(admin: Admin, options: { readonly topic: string; readonly group: string; readonly from: Date }): Promise<ReplayPlan> {
  const { topic, group, from } = options;
  if (!(await admin.listTopics()).includes(topic)) throw new ReplayRefusedError(`the topic ${topic} does not exist on this cluster`);
  const partitions = await partitionsOf(admin, topic);
  const [starts, ends, committed] = await Promise.all([
    offsetsAt(admin, topic, partitions, BigInt(from.getTime())),
    offsetsAt(admin, topic, partitions, ListOffsetTimestamps.LATEST),
    committedOffsets(admin, topic, group),
  ]);
  const planned = partitions.map((partition) => {
    const end = ends.get(partition) ?? 0n;
    const start = starts.get(partition);
    return { partition, from: start === undefined || start === noRecordAfter ? end : start, end, committed: committed.get(partition) };
  });
  return { topic, group, from, partitions: planned, records: planned.reduce((sum, p) => sum + Number(p.end - p.from), 0) };
}

/**
 * Moves the group's offsets as planned. Kafka takes offsets only from a group with no
 * member, so every replica of the service must be stopped first: refused, saying so,
 * while any runs.
 */
export async function applyReplay(admin: Admin, plan: ReplayPlan): Promise<void> {
  const { members, state } = await groupMembers(admin, plan.group);
  if (members > 0) {
    throw new ReplayRefusedError(
      `the consumer group ${plan.group} has ${members} member${members === 1 ? '' : 's'} (${state}): stop every replica of the service, then replay`,
    );
  }
  await admin.alterConsumerGroupOffsets({
    groupId: plan.group,
    topics: [{ name: plan.topic, partitionOffsets: plan.partitions.map(({ partition, from }) => ({ partition, offset: from })) }],
  });
}

/** How far the group has come through a replay: records handed over again since the plan, of `plan.records`. */
export async function replayProgress(admin: Admin, plan: ReplayPlan): Promise<{ readonly replayed: number; readonly total: number }> {
  const committed = await committedOffsets(admin, plan.topic, plan.group);
  const replayed = plan.partitions.reduce((sum, { partition, from, end }) => {
    const at = Number(committed.get(partition) ?? from);
    return sum + Math.min(Math.max(at, Number(from)), Number(end)) - Number(from);
  }, 0);
  return { replayed, total: plan.records };
}
