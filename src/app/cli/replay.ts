import { parseArgs } from 'node:util';
import type { Admin } from '@platformatic/kafka';
import { applyReplay, planReplay, replayProgress, type ReplayPlan } from '../../platform/messaging/kafka-replay.ts';
import { UsageError } from './dlq.ts';
import { progressLine } from './projections.ts';

export const replayUsage = `usage: mutuo replay --consumer SERVICE --from POSITION|TIME [--yes] [--no-wait]

  Hands a service every event again from a point of the log, on Apache Kafka: its consumer
  group's offsets move back to the first event recorded at or after TIME (ISO 8601, e.g.
  2026-12-01T00:00:00Z) or at the event store's global POSITION. The service's inbox makes
  it safe: an event it has already handled is recognised and skipped, so a replay redoes
  only what its database no longer remembers (restored from a backup, or a new service
  that starts from history).

  Every replica of SERVICE must be stopped first: Kafka moves a group's offsets only while
  it has no member. Without --yes it shows what it would do and changes nothing. With it,
  it moves the offsets and then shows a progress bar while the service, started again,
  goes through the events (--no-wait returns at once).

  Needs KAFKA_BROKERS, and DATABASE_URL for --from POSITION.`;

/**
 * An event's recording time and its place in the log can disagree by up to a transaction's
 * length (positions follow transaction ids, taken at a transaction's first write). A replay
 * from a position starts this much earlier, so that none at or after it is left out; the
 * few earlier ones it hands over again are skipped by the inbox.
 */
export const positionMarginMs = 60_000;

export type ReplayDependencies = {
  readonly admin: Admin;
  readonly topic: string;
  /** The consumers the platform knows, by name. */
  readonly consumers: readonly string[];
  readonly groupOf: (consumer: string) => string;
  /** When the first event at or after a position was recorded; undefined past the end of the log. */
  readonly recordedAtOf?: (position: number) => Promise<Date | undefined>;
  readonly write: (text: string) => void;
  readonly interactive: boolean;
  readonly pollMs?: number;
  /** How long to wait for the service to go through the replay before giving up watching (the replay itself goes on). */
  readonly watchMs?: number;
};

async function startingAt(from: string, dependencies: ReplayDependencies): Promise<Date> {
  if (/^\d+$/.test(from)) {
    if (!dependencies.recordedAtOf) throw new UsageError('--from POSITION needs the event store: set DATABASE_URL');
    const recordedAt = await dependencies.recordedAtOf(Number(from));
    if (!recordedAt) throw new UsageError(`no event at or after position ${from}: nothing to replay`);
    return new Date(recordedAt.getTime() - positionMarginMs);
  }
  const time = new Date(from);
  if (!/^\d{4}-\d{2}-\d{2}/.test(from) || Number.isNaN(time.getTime())) {
    throw new UsageError(`--from takes a global position (digits) or an ISO 8601 time, not ${JSON.stringify(from)}`);
  }
  return time;
}

function describePlan(plan: ReplayPlan): string {
  const lines = plan.partitions
    .filter(({ from, end }) => end > from)
    .map(({ partition, from, end, committed }) => `  partition ${partition}: offset ${committed ?? 'none'} -> ${from} (${end - from} records to the end)`);
  return [
    `${plan.group} on ${plan.topic}: from ${plan.from.toISOString()}, ${plan.records} records handed over again`,
    ...(lines.length > 0 ? lines : ['  no record at or after that moment']),
  ].join('\n');
}

/** `mutuo replay ...`: writes the plan and the progress as it goes, returns the last line. */
export async function replayCommand(args: readonly string[], dependencies: ReplayDependencies): Promise<string> {
  let values: { consumer?: string; from?: string; yes?: boolean; 'no-wait'?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { consumer: { type: 'string' }, from: { type: 'string' }, yes: { type: 'boolean' }, 'no-wait': { type: 'boolean' } },
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${replayUsage}`);
  }
  const { consumer, from } = values;
  if (!consumer || !from) throw new UsageError(replayUsage);
  if (!dependencies.consumers.includes(consumer)) {
    throw new UsageError(`no consumer named ${consumer}; the platform's are: ${dependencies.consumers.join(', ')}`);
  }
  const plan = await planReplay(dependencies.admin, {
    topic: dependencies.topic,
    group: dependencies.groupOf(consumer),
    from: await startingAt(from, dependencies),
  });
  dependencies.write(`${describePlan(plan)}\n`);
  if (!values.yes) return 'nothing changed: run again with --yes to replay';
  await applyReplay(dependencies.admin, plan);
  if (values['no-wait'] || plan.records === 0) return `${plan.group} moved back: ${plan.records} records to hand over again once ${consumer} runs`;

  dependencies.write(`offsets moved; start ${consumer} again to go through them\n`);
  const startedAt = Date.now();
  const deadline = startedAt + (dependencies.watchMs ?? 24 * 3_600_000);
  for (;;) {
    const { replayed, total } = await replayProgress(dependencies.admin, plan);
    const elapsedS = (Date.now() - startedAt) / 1000;
    const perSecond = elapsedS > 0 ? replayed / elapsedS : 0;
    const done = replayed >= total;
    const line = progressLine({
      state: done ? 'done' : 'replaying',
      applied: replayed,
      total,
      eventsPerSecond: perSecond,
      etaSeconds: perSecond > 0 ? (total - replayed) / perSecond : null,
      parked: 0,
    });
    dependencies.write(dependencies.interactive ? `\r${line}` : `${line}\n`);
    if (done) break;
    if (Date.now() > deadline) {
      if (dependencies.interactive) dependencies.write('\n');
      return `stopped watching: ${replayed} of ${total} records handed over again so far (the replay goes on)`;
    }
    await new Promise((resolve) => setTimeout(resolve, dependencies.pollMs ?? 1_000));
  }
  if (dependencies.interactive) dependencies.write('\n');
  return `${consumer} went through ${plan.records} records again`;
}
