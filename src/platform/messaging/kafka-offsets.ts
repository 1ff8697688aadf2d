import type { Admin } from '@platformatic/kafka';

/** The topic's partitions, by index. */
export async function partitionsOf(admin: Admin, topic: string): Promise<number[]> {
  const count = (await admin.metadata({ topics: [topic] })).topics.get(topic)?.partitionsCount ?? 0;
  return Array.from({ length: count }, (_, partition) => partition);
}

/**
 * For each partition, the offset of its first record stamped at or after `timestamp`, or at
 * one of ListOffsets' special timestamps (the end, the start); -1 where no record is.
 */
export async function offsetsAt(admin: Admin, topic: string, partitions: readonly number[], timestamp: bigint): Promise<Map<number, bigint>> {
  const [listed] = await admin.listOffsets({ topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }] });
  return new Map((listed?.partitions ?? []).map((partition) => [partition.partitionIndex, partition.offset]));
}

/** The group's committed offset per partition of the topic; a partition it never committed on is absent. */
export async function committedOffsets(admin: Admin, topic: string, group: string): Promise<Map<number, bigint>> {
  const [listed] = await admin.listConsumerGroupOffsets({ groups: [group] });
  const partitions = listed?.topics.find((entry) => entry.name === topic)?.partitions ?? [];
  // -1 is Kafka's "nothing committed".
  return new Map(partitions.filter((partition) => partition.committedOffset >= 0n).map((partition) => [partition.partitionIndex, partition.committedOffset]));
}

/** The group's members and state: the broker takes offsets from outside a group only while it has none. */
export async function groupMembers(admin: Admin, group: string): Promise<{ readonly members: number; readonly state: string | undefined }> {
  const described = (await admin.describeGroups({ groups: [group] })).get(group);
  return { members: described?.members.size ?? 0, state: described?.state };
}
