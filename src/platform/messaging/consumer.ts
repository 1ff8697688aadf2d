import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { errorMessage, isConnectionFailure, type SqlClient, type SqlQueryable } from '../sql/sql-client.ts';
import type { SealedFields } from '../eventstore/types.ts';
import { EventDecodeError, type EventCatalog } from '../eventstore/event-catalog.ts';
import type { EventDefinition } from '../eventstore/event-definition.ts';
import { SealedValueError } from '../eventstore/personal-data.ts';
import type { Session, UnitOfWork } from '../eventstore/session.ts';
import type { Bus, Subscription } from './bus.ts';
import { backoffMs, startFollower, type Backoff } from '../runtime/follower.ts';
import { createSharedExclusiveLock } from '../runtime/shared-exclusive.ts';
import { partitionKeyOf, type EventMessage, type IncomingMessage } from './message.ts';

/**
 * An event as a handler receives it: checked, and upcast to the latest schema version; its
 * personal data revealed, and kept in `sealed` as it travelled (see StoredEvent.sealed).
 */
export type ConsumedEvent = EventMessage & { readonly sealed?: SealedFields };

/** An event of `Definition`'s type as its consumer receives it: upcast to that version, checked against it, and typed by it. */
export type ConsumedEventOf<Definition extends EventDefinition> = Definition extends EventDefinition
  ? Omit<ConsumedEvent, 'type' | 'data'> & { readonly type: Definition['type']; readonly data: Static<Definition['schema']> }
  : never;

/**
 * A consumer: the events it handles, each by its definition at the latest version, and
 * what it does with each, in the session that also records the event in its inbox.
 */
export type ConsumerDefinition<Definitions extends readonly EventDefinition[] = readonly EventDefinition[]> = {
  readonly name: string;
  readonly events: Definitions;
  // A method, so that a consumer of any events is a ConsumerDefinition: the platform's list of them is one type.
  handle(event: ConsumedEventOf<Definitions[number]>, session: Session): Promise<void>;
};

/** A consumer, its handler's events typed by the definitions it names. */
export function defineConsumer<const Definitions extends readonly EventDefinition[]>(
  definition: ConsumerDefinition<Definitions>,
): ConsumerDefinition<Definitions> {
  return definition;
}

export type ConsumerOptions = {
  readonly client: SqlClient;
  /**
   * Every version of every event type the platform reads (app/catalog.ts): a message is
   * upcast through it to the version the consumer names, which must be the latest.
   */
  readonly catalog: EventCatalog;
  /** The sessions the handler runs in; they reveal the personal data each message carries sealed. */
  readonly sessions: UnitOfWork;
  /** Attempts before a message is dead-lettered (default 5): failures of its handler, and ends of the process during it. */
  readonly maxAttempts?: number;
  /** Wait before the second attempt, at most: it doubles with each attempt after, less up to half at random (default 100 ms). */
  readonly firstRetryDelayMs?: number;
  /** How long to wait between looks while the database is unreachable (default 200 ms, doubling to 5 s, with jitter). */
  readonly outageBackoff?: Backoff;
  /** How often to look for redrive and discard requests (default 1 s). */
  readonly requestPollMs?: number;
  readonly onError?: (error: unknown) => void;
};

/**
 * Why a message was set aside: not an event envelope; a type or a version of it this consumer
 * does not read (a newer producer: redrive it once the consumer is upgraded); data that fails
 * its schema or does not open; a handler that kept throwing; or one whose process kept ending.
 */
export type DeadLetterReason = 'MALFORMED' | 'UNKNOWN_TYPE' | 'UNKNOWN_VERSION' | 'INVALID' | 'HANDLER_FAILED' | 'HANDLER_CRASHED';

const Envelope = TypeCompiler.Compile(
  Type.Object({
    eventId: Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' }),
    type: Type.String({ minLength: 1 }),
    schemaVersion: Type.Integer({ minimum: 1 }),
    streamId: Type.String({ minLength: 1 }),
    streamVersion: Type.Integer({ minimum: 1 }),
    position: Type.Integer({ minimum: 1 }),
    partitionKey: Type.String({ minLength: 1 }),
    data: Type.Unknown(),
    metadata: Type.Object({
      correlationId: Type.String(),
      causationId: Type.Union([Type.String(), Type.Null()]),
      actor: Type.String(),
      occurredAt: Type.String(),
    }),
    recordedAt: Type.String(),
  }),
);

type Decoded = { ok: true; event: ConsumedEvent } | { ok: false; reason: DeadLetterReason; error: string };

type StoredMessage = { messageId: string | undefined; headers: Readonly<Record<string, unknown>>; body: unknown };

const openStatuses = `('dead', 'redrive_requested', 'discard_requested')`;

/** Whether a consumer ($1) must hold a partition key (`key`, an SQL expression) back: a dead letter or parked messages. */
const keyHeldBack = (key: string) => `EXISTS (SELECT 1 FROM mutuo_dead_letters WHERE consumer = $1 AND partition_key = ${key} AND status IN ${openStatuses})
  OR EXISTS (SELECT 1 FROM mutuo_parked WHERE consumer = $1 AND partition_key = ${key})`;

/** A message as dead letters and parked rows keep it. */
function storedMessage(message: StoredMessage): string {
  return JSON.stringify({ messageId: message.messageId ?? null, headers: message.headers, body: message.body });
}

/** Longer than any key the relay gives (an application's id): a longer one is not trusted to hold anything back. */
const maxPartitionKeyLength = 200;

/**
 * The partition key of a message that could not be decoded, so that its application's
 * later events wait behind it: the envelope's, else the relay's header, else the one its
 * stream id gives. None when the message names no stream at all.
 */
function partitionKeyOfMessage(message: StoredMessage): string | null {
  const body = (typeof message.body === 'object' && message.body !== null ? message.body : {}) as { partitionKey?: unknown; streamId?: unknown };
  const header = message.headers['x-partition-key'];
  const key =
    typeof body.partitionKey === 'string'
      ? body.partitionKey
      : typeof header === 'string'
        ? header
        : typeof body.streamId === 'string'
          ? partitionKeyOf(body.streamId)
          : null;
  return key && key.length <= maxPartitionKeyLength ? key : null;
}

/** The consumer is closing: the message in hand goes back to the bus, which hands it to the next consumer in order. */
export class ConsumerClosingError extends Error {
  constructor() {
    super('the consumer is closing');
    this.name = 'ConsumerClosingError';
  }
}

/** Rolls a batch back, to take its messages one at a time. */
class OneAtATime extends Error {}

/** How long the database may take to answer the probe that tells an outage from a failing message. */
const probeTimeoutMs = 2_000;

/**
 * Who may be in a handler at once, in this process, for every consumer in it. A process that
 * ends during handlers ends all of the ones in hand, in every partition; their messages come
 * back redelivered, and only one of them may be the cause. So a redelivered message is
 * handled alone (exclusive): its attempt is counted, and a crash while it is alone is its own.
 * Everything else is handled side by side (shared) as usual. A message that is innocent is
 * thus counted at most once, alone, and then handled; one that ends the process each time is
 * set aside after maxAttempts crashes of its own. The cost: after a restart, the messages
 * the bus hands back redelivered go one at a time.
 */
const handlers = createSharedExclusiveLock();

/**
 * The runtime around a consumer's handler. For each message, in one transaction: if an
 * earlier message of its partition key is dead or parked, park this one behind it (under
 * the key's lock); if the inbox already has the event, do nothing; else record it in
 * the inbox and run the handler.
 *
 * The consumer, not the bus, counts the attempts, and a delivery resolves only once its
 * outcome is recorded: the bus never requeues a message behind later ones, nor drops one.
 * - A handler that throws is tried again in place, with exponential backoff and jitter;
 *   after `maxAttempts` the message is dead-lettered and its key's later messages are
 *   parked behind it until it is redriven or discarded; other keys go on.
 * - A process that ends during the handler (killed, out of memory) leaves the message
 *   unacknowledged, and the bus delivers it again marked as such: each such attempt is
 *   counted in the database before the handler runs, and counts toward `maxAttempts`.
 * - While the database is unreachable nothing is counted: the consumer waits, probing it,
 *   and carries on where it was once it answers.
 * - A message that is not an event this consumer can read is dead-lettered at once, with
 *   the reason, and holds its key's later messages back like any other dead letter.
 */
export function createConsumer(definition: ConsumerDefinition, options: ConsumerOptions) {
  const { client, sessions } = options;
  const { name } = definition;
  const maxAttempts = options.maxAttempts ?? 5;
  const firstRetryDelayMs = options.firstRetryDelayMs ?? 100;
  const requestPollMs = options.requestPollMs ?? 1_000;
  const outageBackoff = options.outageBackoff ?? { firstMs: 200, maxMs: 5_000 };
  const eventTypes = definition.events.map((event) => event.type);
  const knownTypes = new Set(eventTypes);
  for (const event of definition.events) {
    const latest = options.catalog.latestVersion(event.type);
    if (event.schemaVersion !== latest) {
      throw new Error(`consumer ${name} handles ${event.type} v${event.schemaVersion}, but the platform reads it at v${latest}: name the latest definition`);
    }
  }
  let closing = false;

  async function decode(message: StoredMessage & { bodyIsJson?: boolean }, db: SqlQueryable = client): Promise<Decoded> {
    if (message.bodyIsJson === false) return { ok: false, reason: 'MALFORMED', error: 'the body is not JSON' };
    if (!Envelope.Check(message.body)) {
      const first = Envelope.Errors(message.body).First();
      return { ok: false, reason: 'MALFORMED', error: `not an event envelope: ${first ? `${first.path || '/'} ${first.message}` : 'invalid'}` };
    }
    const envelope = message.body;
    if (message.messageId !== undefined && message.messageId !== envelope.eventId) {
      return { ok: false, reason: 'MALFORMED', error: `message-id ${message.messageId} is not the event id ${envelope.eventId}` };
    }
    if (!knownTypes.has(envelope.type)) {
      return { ok: false, reason: 'UNKNOWN_TYPE', error: `${name} does not handle events of type ${envelope.type}` };
    }
    let data: unknown;
    let sealed: SealedFields | undefined;
    // Messages carry personal data sealed, as stored. A sealed value that does not open is the
    // message's fault, for good; any other failure (the keys' database away) throws, and is
    // waited out like any outage.
    try {
      ({ data, sealed } = (await sessions.reveal([envelope], db))[0]!);
    } catch (error) {
      if (error instanceof SealedValueError) return { ok: false, reason: 'INVALID', error: error.message };
      throw error;
    }
    try {
      const current = options.catalog.decode(envelope.type, envelope.schemaVersion, data);
      return { ok: true, event: { ...envelope, schemaVersion: current.schemaVersion, data: current.data, ...(sealed ? { sealed } : {}) } };
    } catch (error) {
      const reason = error instanceof EventDecodeError ? error.reason : 'INVALID';
      return { ok: false, reason, error: error instanceof Error ? error.message : String(error) };
    }
  }

  /**
   * The handler, given an event decoded above: of one of the types it names (any other is
   * dead-lettered as UNKNOWN_TYPE) at the version it names (checked when it was created).
   */
  const handle = (event: ConsumedEvent, session: Session) => definition.handle(event, session);

  async function lockKey(tx: SqlQueryable, partitionKey: string): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${name}/${partitionKey}`]);
  }

  async function isBlocked(tx: SqlQueryable, partitionKey: string): Promise<boolean> {
    const rows = await tx.query<{ blocked: boolean }>(`SELECT ${keyHeldBack('$2')} AS blocked`, [name, partitionKey]);
    return rows[0]?.blocked === true;
  }

  /** Inbox and handler in the session; nothing when the inbox shows the event was handled already. */
  async function handleOnce(session: Session, event: ConsumedEvent): Promise<void> {
    const fresh = await session.tx.query('INSERT INTO mutuo_inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING event_id', [
      name,
      event.eventId,
    ]);
    if (fresh.length > 0) await handle(event, session);
  }

  /** Waits, unless the consumer is closing: then the message in hand goes back to the bus. */
  async function pause(ms: number): Promise<void> {
    if (closing) throw new ConsumerClosingError();
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (closing) throw new ConsumerClosingError();
  }

  /** Whether the database answers now. */
  async function reachable(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.query('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer')), probeTimeoutMs);
        }),
      ]);
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A failure that is the database's (its connection lost, or it does not answer), not the message's: it counts as no attempt. */
  async function isOutage(error: unknown): Promise<boolean> {
    return isConnectionFailure(error) || !(await reachable());
  }

  /**
   * Runs `attempt` in a fresh session until it commits, waiting out the database's outages
   * uncounted, and trying again after a failure of its own, with backoff, until `maxAttempts`
   * failures (`attemptsBefore` already happened); resolves with the last error then, or none.
   */
  async function withRetries(attempt: (session: Session) => Promise<void>, attemptsBefore = 0): Promise<{ error?: unknown; attempts: number }> {
    let outages = 0;
    for (let attempts = attemptsBefore + 1; ; ) {
      try {
        await sessions.run(attempt);
        return { attempts };
      } catch (error) {
        if (error instanceof ConsumerClosingError) throw error;
        if (await isOutage(error)) {
          options.onError?.(error);
          await pause(backoffMs(outages++, outageBackoff, Math.random));
          continue;
        }
        outages = 0;
        if (attempts >= maxAttempts) return { error, attempts };
        const failures = attempts - attemptsBefore - 1;
        await pause(backoffMs(failures, { firstMs: firstRetryDelayMs, maxMs: firstRetryDelayMs * 2 ** maxAttempts }, Math.random));
        attempts++;
      }
    }
  }

  /**
   * Records what must not be lost (a dead letter, an attempt), trying again until it is: a
   * failure here is the database's, whether it says so or not, and the message stays in hand.
   */
  async function durably<T>(write: () => Promise<T>): Promise<T> {
    for (let failures = 0; ; failures++) {
      try {
        return await write();
      } catch (error) {
        options.onError?.(error);
        await pause(backoffMs(failures, outageBackoff, Math.random));
      }
    }
  }

  async function deadLetter(
    db: SqlQueryable,
    message: StoredMessage,
    failure: { reason: DeadLetterReason; error: string; attempts: number; partitionKey: string | null; event?: ConsumedEvent },
  ): Promise<void> {
    const body = message.body as { eventId?: unknown; type?: unknown } | null;
    const eventId = failure.event?.eventId ?? (typeof body?.eventId === 'string' && /^[0-9a-f-]{36}$/i.test(body.eventId) ? body.eventId : null);
    const eventType = failure.event?.type ?? (typeof body?.type === 'string' ? body.type.slice(0, 200) : null);
    await db.query(
      `INSERT INTO mutuo_dead_letters (consumer, partition_key, event_id, event_type, reason, error, attempts, message)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)`,
      [name, failure.partitionKey, eventId, eventType, failure.reason, failure.error.slice(0, 4_000), failure.attempts, storedMessage(message)],
    );
  }

  /**
   * Sets a message aside for good (until an operator redrives or discards it): parked, if its
   * key is already held back by an earlier one, else dead-lettered, holding its key's later
   * messages back. Decided under the key's lock, which the release of parked messages takes too.
   */
  async function setAside(message: StoredMessage, failure: { reason: DeadLetterReason; error: string; attempts: number; event?: ConsumedEvent }) {
    const partitionKey = failure.event?.partitionKey ?? partitionKeyOfMessage(message);
    await durably(() =>
      client.transaction(async (tx) => {
        if (partitionKey !== null) {
          await lockKey(tx, partitionKey);
          if (await isBlocked(tx, partitionKey)) {
            await park(tx, partitionKey, message);
            return;
          }
        }
        await deadLetter(tx, message, { ...failure, partitionKey });
      }),
    );
  }

  async function park(tx: SqlQueryable, partitionKey: string, message: StoredMessage): Promise<void> {
    await tx.query('INSERT INTO mutuo_parked (consumer, partition_key, message) VALUES ($1, $2, $3::jsonb)', [name, partitionKey, storedMessage(message)]);
  }

  /**
   * Counts an attempt at a message that may have been delivered before and not finished
   * (the process ended during its handler), before the handler runs again: how many there
   * have been, this one included; 0 when the inbox shows it was handled.
   */
  async function countAttempt(eventId: string): Promise<number> {
    const [row] = await client.query<{ attempts: number }>(
      `INSERT INTO mutuo_consumer_attempts (consumer, event_id, attempts)
       SELECT $1, $2, 1 WHERE NOT EXISTS (SELECT 1 FROM mutuo_inbox WHERE consumer = $1 AND event_id = $2)
       ON CONFLICT (consumer, event_id) DO UPDATE SET attempts = mutuo_consumer_attempts.attempts + 1, last_attempt_at = now()
       RETURNING attempts`,
      [name, eventId],
    );
    return row?.attempts ?? 0;
  }

  const describe = errorMessage;

  /**
   * The common path, one statement for a partition's messages (one, or a batch): unless
   * something holds one of their keys back (then nothing is recorded), record the events in
   * the inbox, and answer the ids of those not handled before. No lock is needed then: only
   * a dead letter or parked messages (which this statement would see) give another process a
   * reason to touch a key, and a replica still finishing the same message at a failover is
   * held off by the inbox's unique key.
   */
  async function recordInInbox(tx: SqlQueryable, events: readonly ConsumedEvent[]): Promise<{ blocked: boolean; fresh: Set<string> }> {
    const [state] = await tx.query<{ blocked: boolean; fresh: string[] }>(
      `WITH blocked AS (SELECT EXISTS (SELECT 1 FROM unnest($2::text[]) AS k(key) WHERE ${keyHeldBack('k.key')}) AS yes),
       inbox AS (
         INSERT INTO mutuo_inbox (consumer, event_id) SELECT $1, id FROM unnest($3::uuid[]) AS e(id), blocked WHERE NOT blocked.yes
         ON CONFLICT DO NOTHING RETURNING event_id)
       SELECT blocked.yes AS blocked, ARRAY(SELECT event_id::text FROM inbox) AS fresh FROM blocked`,
      [name, [...new Set(events.map((event) => event.partitionKey))], events.map((event) => event.eventId)],
    );
    return { blocked: state?.blocked === true, fresh: new Set(state?.fresh ?? []) };
  }

  async function deliver(message: IncomingMessage): Promise<void> {
    const decoded = await durably(() => decode(message));
    if (!decoded.ok) {
      await setAside(message, { reason: decoded.reason, error: decoded.error, attempts: 1 });
      return;
    }
    const event = decoded.event;
    await (message.redelivered ? handlers.exclusive : handlers.shared)(() => deliverDecoded(message, event));
  }

  async function deliverDecoded(message: IncomingMessage, event: ConsumedEvent): Promise<void> {
    // A delivery that may repeat one the process did not live through: count it first, in
    // its own commit, so that a handler that ends the process every time is set aside.
    const unfinished = message.redelivered ? await durably(() => countAttempt(event.eventId)) : 0;
    if (unfinished > maxAttempts) {
      const error = `the consumer stopped ${unfinished - 1} times while handling it (its process ended or was killed)`;
      await setAside(message, { reason: 'HANDLER_CRASHED', error, attempts: unfinished - 1, event });
    } else {
      const outcome = await withRetries(
        async (session) => {
          const { tx } = session;
          const { blocked, fresh } = await recordInInbox(tx, [event]);
          if (!blocked) {
            if (fresh.has(event.eventId)) await handle(event, session);
            return;
          }
          // Held back: decide under the key's lock, which the release of parked messages takes too.
          await lockKey(tx, event.partitionKey);
          if (await isBlocked(tx, event.partitionKey)) {
            await park(tx, event.partitionKey, message);
            return;
          }
          await handleOnce(session, event);
        },
        Math.max(0, unfinished - 1),
      );
      if (outcome.error !== undefined) {
        await setAside(message, { reason: 'HANDLER_FAILED', error: describe(outcome.error), attempts: outcome.attempts, event });
      }
    }
    if (unfinished > 0) {
      await durably(() => client.query('DELETE FROM mutuo_consumer_attempts WHERE consumer = $1 AND event_id = $2', [name, event.eventId]));
    }
  }

  /**
   * A partition's messages, in order. The common case (each decodes, none may repeat an
   * attempt its process did not live through, nothing holds its key back, every handler
   * succeeds) is one transaction for them all, with one statement for their inbox rows and
   * their keys: one commit and one round trip instead of one each per message. Anything
   * else rolls the batch back and takes its messages one at a time, as `deliver` does.
   */
  async function deliverBatch(messages: readonly IncomingMessage[]): Promise<void> {
    if (messages.length > 1 && messages.every((message) => !message.redelivered)) {
      const events = await durably(async () => {
        const decoded: ConsumedEvent[] = [];
        for (const message of messages) {
          const one = await decode(message);
          if (!one.ok) return undefined;
          decoded.push(one.event);
        }
        return decoded;
      });
      if (events) {
        try {
          await handlers.shared(() =>
            sessions.run(async (session) => {
              const { blocked, fresh } = await recordInInbox(session.tx, events);
              if (blocked) throw new OneAtATime();
              // Taken out as handled: a message the batch holds twice has one effect.
              for (const event of events) if (fresh.delete(event.eventId)) await handle(event, session);
            }),
          );
          return;
        } catch (error) {
          if (error instanceof ConsumerClosingError) throw error;
          // A handler failed, the database went away, or a key is held back: one at a time.
        }
      }
    }
    for (const message of messages) await deliver(message);
  }

  /** Handles a key's parked messages in order, until none is left or one fails for good. */
  async function releaseParked(partitionKey: string): Promise<void> {
    for (;;) {
      let parked: { id: string; message: StoredMessage } | undefined;
      let undecodable: Extract<Decoded, { ok: false }> | undefined;
      const outcome = await handlers.shared(() =>
        withRetries(async (session) => {
          const { tx } = session;
          await lockKey(tx, partitionKey);
          const [open] = await tx.query(`SELECT 1 FROM mutuo_dead_letters WHERE consumer = $1 AND partition_key = $2 AND status IN ${openStatuses} LIMIT 1`, [
            name,
            partitionKey,
          ]);
          parked = undefined;
          undecodable = undefined;
          if (open) return;
          const [next] = await tx.query<{ id: string; message: StoredMessage }>(
            'SELECT id, message FROM mutuo_parked WHERE consumer = $1 AND partition_key = $2 ORDER BY id LIMIT 1',
            [name, partitionKey],
          );
          if (!next) return;
          parked = next;
          const decoded = await decode(next.message, tx);
          if (!decoded.ok) {
            // Still not readable (a version this consumer does not know yet, say): it becomes the key's dead letter at once.
            undecodable = decoded;
            await tx.query('DELETE FROM mutuo_parked WHERE id = $1', [next.id]);
            await deadLetter(tx, next.message, { reason: decoded.reason, error: decoded.error, attempts: 1, partitionKey });
            return;
          }
          await handleOnce(session, decoded.event);
          await tx.query('DELETE FROM mutuo_parked WHERE id = $1', [next.id]);
        }),
      );
      if (!parked || undecodable) return;
      if (outcome.error !== undefined) {
        const { id, message } = parked;
        const decoded = await durably(() => decode(message));
        const failure = outcome.error;
        await durably(() =>
          client.transaction(async (tx) => {
            await tx.query('DELETE FROM mutuo_parked WHERE id = $1', [id]);
            await deadLetter(tx, message, {
              reason: decoded.ok ? 'HANDLER_FAILED' : decoded.reason,
              error: describe(failure),
              attempts: outcome.attempts,
              partitionKey,
              ...(decoded.ok ? { event: decoded.event } : {}),
            });
          }),
        );
        return;
      }
    }
  }

  async function redrive(id: string): Promise<void> {
    // Claim the request: back to 'dead' (still holding its key's later messages) while it runs.
    const [row] = await client.query<{ message: StoredMessage; attempts: number; partition_key: string | null }>(
      `UPDATE mutuo_dead_letters SET status = 'dead' WHERE id = $1 AND consumer = $2 AND status = 'redrive_requested'
       RETURNING message, attempts, partition_key`,
      [id, name],
    );
    if (!row) return;
    const decoded = await decode(row.message);
    if (!decoded.ok) {
      await client.query(`UPDATE mutuo_dead_letters SET attempts = attempts + 1, error = $2 WHERE id = $1`, [id, decoded.error]);
      return;
    }
    const outcome = await withRetries(async (session) => {
      await handleOnce(session, decoded.event);
      await session.tx.query(`UPDATE mutuo_dead_letters SET status = 'redriven', resolved_at = now() WHERE id = $1`, [id]);
    }, row.attempts);
    if (outcome.error !== undefined) {
      await client.query(`UPDATE mutuo_dead_letters SET attempts = $2, error = $3 WHERE id = $1`, [id, outcome.attempts, describe(outcome.error)]);
      return;
    }
    if (row.partition_key) await releaseParked(row.partition_key);
  }

  async function discard(id: string): Promise<void> {
    const [row] = await client.query<{ partition_key: string | null }>(
      `UPDATE mutuo_dead_letters SET status = 'discarded', resolved_at = now()
        WHERE id = $1 AND consumer = $2 AND status = 'discard_requested' RETURNING partition_key`,
      [id, name],
    );
    if (row?.partition_key) await releaseParked(row.partition_key);
  }

  /** Carries out the redrive and discard requests waiting for this consumer. */
  async function processRequests(): Promise<void> {
    const requests = await client.query<{ id: string; status: string }>(
      `SELECT id::text AS id, status FROM mutuo_dead_letters
        WHERE consumer = $1 AND status IN ('redrive_requested', 'discard_requested') ORDER BY id`,
      [name],
    );
    for (const request of requests) {
      if (request.status === 'redrive_requested') await redrive(request.id);
      else await discard(request.id);
    }
  }

  return {
    name,
    eventTypes,
    deliver,
    deliverBatch,
    processRequests,
    /**
     * Subscribes to the bus and starts carrying out requests, every `requestPollMs` and
     * whenever `checkRequests` is called (by whoever recorded one), backing off while they
     * fail (the database away); close() stops both, gracefully: the message in hand is
     * finished, or, if it is waiting for the database, handed back to the bus.
     */
    async start(bus: Bus): Promise<Subscription & { readonly checkRequests: () => void }> {
      closing = false;
      const subscription = await bus.subscribe({ consumer: name, eventTypes, deliver: deliverBatch });
      const requests = startFollower({
        step: async () => {
          await processRequests();
          return { sleepMs: requestPollMs };
        },
        backoff: { firstMs: requestPollMs, maxMs: Math.max(requestPollMs, 10_000) },
        onError: (error) => {
          if (!(error instanceof ConsumerClosingError)) options.onError?.(error);
        },
      });
      return {
        checkRequests: requests.wake,
        close: async () => {
          closing = true;
          const stopping = requests.stop();
          await subscription.close();
          await stopping;
        },
      };
    },
  };
}

export type Consumer = ReturnType<typeof createConsumer>;
