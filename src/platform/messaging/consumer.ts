import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { errorMessage, type SqlClient, type SqlQueryable } from '../sql/sql-client.ts';
import type { SealedFields } from '../eventstore/types.ts';
import type { EventCatalog } from '../eventstore/event-catalog.ts';
import type { EventDefinition } from '../eventstore/event-definition.ts';
import { SealedValueError } from '../eventstore/personal-data.ts';
import type { Session, UnitOfWork } from '../eventstore/session.ts';
import type { Bus, Subscription } from './bus.ts';
import { backoffMs, startFollower } from '../runtime/follower.ts';
import type { EventMessage, IncomingMessage } from './message.ts';

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
  /** Attempts before a message is dead-lettered (default 5). */
  readonly maxAttempts?: number;
  /** Wait before the second attempt, at most: it doubles with each attempt after, less up to half at random (default 100 ms). */
  readonly firstRetryDelayMs?: number;
  /** How often to look for redrive and discard requests (default 1 s). */
  readonly requestPollMs?: number;
  readonly onError?: (error: unknown) => void;
};

export type DeadLetterReason = 'MALFORMED' | 'UNKNOWN_TYPE' | 'INVALID' | 'HANDLER_FAILED';

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

/** Whether a consumer ($1) must hold a partition key ($2) back: a dead letter or parked messages. */
const keyHeldBackSql = `EXISTS (SELECT 1 FROM mutuo_dead_letters WHERE consumer = $1 AND partition_key = $2 AND status IN ${openStatuses})
  OR EXISTS (SELECT 1 FROM mutuo_parked WHERE consumer = $1 AND partition_key = $2)`;

/** A message as dead letters and parked rows keep it. */
function storedMessage(message: StoredMessage): string {
  return JSON.stringify({ messageId: message.messageId ?? null, headers: message.headers, body: message.body });
}

/**
 * The runtime around a consumer's handler. For each message, in one transaction: if an
 * earlier message of its partition key is dead or parked, park this one behind it (under
 * the key's lock); if the inbox already has the event, do nothing; else record it in
 * the inbox and run the handler. A handler that throws is retried with
 * exponential backoff, then the message is dead-lettered and the key's later messages
 * are parked until the dead letter is redriven or discarded. A message that is not an
 * event this consumer can read is dead-lettered at once, with the reason.
 */
export function createConsumer(definition: ConsumerDefinition, options: ConsumerOptions) {
  const { client, sessions } = options;
  const { name } = definition;
  const maxAttempts = options.maxAttempts ?? 5;
  const firstRetryDelayMs = options.firstRetryDelayMs ?? 100;
  const requestPollMs = options.requestPollMs ?? 1_000;
  const eventTypes = definition.events.map((event) => event.type);
  const knownTypes = new Set(eventTypes);
  for (const event of definition.events) {
    const latest = options.catalog.latestVersion(event.type);
    if (event.schemaVersion !== latest) {
      throw new Error(`consumer ${name} handles ${event.type} v${event.schemaVersion}, but the platform reads it at v${latest}: name the latest definition`);
    }
  }

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
    // message's fault, for good; any other failure (the keys' database away) throws, and the
    // message is delivered again later.
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
      const reason = (error as { reason?: string }).reason === 'UNKNOWN_TYPE' ? 'UNKNOWN_TYPE' : 'INVALID';
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
    const rows = await tx.query<{ blocked: boolean }>(`SELECT ${keyHeldBackSql} AS blocked`, [name, partitionKey]);
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

  /**
   * Runs `attempt` in a fresh session until it commits or the attempts run out; resolves
   * with the last error, or none on success.
   */
  async function withRetries(attempt: (session: Session) => Promise<void>, attemptsBefore = 0): Promise<{ error?: unknown; attempts: number }> {
    for (let attempts = attemptsBefore + 1; ; attempts++) {
      try {
        await sessions.run(attempt);
        return { attempts };
      } catch (error) {
        if (attempts - attemptsBefore >= maxAttempts) return { error, attempts };
        const delayMs = backoffMs(attempts - attemptsBefore - 1, { firstMs: firstRetryDelayMs, maxMs: firstRetryDelayMs * 2 ** maxAttempts }, Math.random);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  async function deadLetter(
    db: SqlQueryable,
    message: StoredMessage,
    failure: { reason: DeadLetterReason; error: string; attempts: number; event?: ConsumedEvent },
  ): Promise<void> {
    const body = message.body as { eventId?: unknown; type?: unknown } | null;
    const eventId = failure.event?.eventId ?? (typeof body?.eventId === 'string' && /^[0-9a-f-]{36}$/i.test(body.eventId) ? body.eventId : null);
    const eventType = failure.event?.type ?? (typeof body?.type === 'string' ? body.type : null);
    await db.query(
      `INSERT INTO mutuo_dead_letters (consumer, partition_key, event_id, event_type, reason, error, attempts, message)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)`,
      [name, failure.event?.partitionKey ?? null, eventId, eventType, failure.reason, failure.error.slice(0, 4_000), failure.attempts, storedMessage(message)],
    );
  }

  const describe = errorMessage;

  async function deliver(message: IncomingMessage): Promise<void> {
    const decoded = await decode(message);
    if (!decoded.ok) {
      await deadLetter(client, message, { reason: decoded.reason, error: decoded.error, attempts: 1 });
      return;
    }
    const event = decoded.event;
    const outcome = await withRetries(async (session) => {
      const { tx } = session;
      // Common case, one statement: nothing holds the key back, so record the event in the
      // inbox. No lock is needed then: only a dead letter or parked messages (which this
      // statement would see) give another process a reason to touch this key, and a replica
      // still finishing the same message at a failover is held off by the inbox's unique key.
      const [state] = await tx.query<{ blocked: boolean; fresh: boolean }>(
        `WITH blocked AS (SELECT ${keyHeldBackSql} AS yes),
         inbox AS (
           INSERT INTO mutuo_inbox (consumer, event_id) SELECT $1, $3 FROM blocked WHERE NOT blocked.yes
           ON CONFLICT DO NOTHING RETURNING event_id)
         SELECT blocked.yes AS blocked, EXISTS (SELECT 1 FROM inbox) AS fresh FROM blocked`,
        [name, event.partitionKey, event.eventId],
      );
      if (!state?.blocked) {
        if (state?.fresh) await handle(event, session);
        return;
      }
      // Held back: decide under the key's lock, which the release of parked messages takes too.
      await lockKey(tx, event.partitionKey);
      if (await isBlocked(tx, event.partitionKey)) {
        await tx.query('INSERT INTO mutuo_parked (consumer, partition_key, message) VALUES ($1, $2, $3::jsonb)', [
          name,
          event.partitionKey,
          storedMessage(message),
        ]);
        return;
      }
      await handleOnce(session, event);
    });
    // Recording the dead letter may fail too (the database is away): then this throws,
    // and the bus delivers the message again later.
    if (outcome.error !== undefined) {
      await deadLetter(client, message, { reason: 'HANDLER_FAILED', error: describe(outcome.error), attempts: outcome.attempts, event });
    }
  }

  /** Handles a key's parked messages in order, until none is left or one fails for good. */
  async function releaseParked(partitionKey: string): Promise<void> {
    for (;;) {
      let parked: { id: string; message: StoredMessage } | undefined;
      let failed: { error: unknown; attempts: number } | undefined;
      const outcome = await withRetries(async (session) => {
        const { tx } = session;
        await lockKey(tx, partitionKey);
        const [open] = await tx.query(`SELECT 1 FROM mutuo_dead_letters WHERE consumer = $1 AND partition_key = $2 AND status IN ${openStatuses} LIMIT 1`, [
          name,
          partitionKey,
        ]);
        parked = undefined;
        if (open) return;
        const [next] = await tx.query<{ id: string; message: StoredMessage }>(
          'SELECT id, message FROM mutuo_parked WHERE consumer = $1 AND partition_key = $2 ORDER BY id LIMIT 1',
          [name, partitionKey],
        );
        if (!next) return;
        parked = next;
        const decoded = await decode(next.message, tx);
        if (!decoded.ok) throw new Error(decoded.error);
        await handleOnce(session, decoded.event);
        await tx.query('DELETE FROM mutuo_parked WHERE id = $1', [next.id]);
      });
      if (outcome.error !== undefined) failed = { error: outcome.error, attempts: outcome.attempts };
      if (!parked) return;
      if (failed) {
        const message = parked.message;
        const decoded = await decode(message);
        await client.transaction(async (tx) => {
          await tx.query('DELETE FROM mutuo_parked WHERE id = $1', [parked!.id]);
          await deadLetter(tx, message, {
            reason: decoded.ok ? 'HANDLER_FAILED' : decoded.reason,
            error: describe(failed!.error),
            attempts: failed!.attempts,
            ...(decoded.ok ? { event: decoded.event } : {}),
          });
        });
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
    deliver,
    processRequests,
    /**
     * Subscribes to the bus and starts carrying out requests, every `requestPollMs` and
     * whenever `checkRequests` is called (by whoever recorded one), backing off while they
     * fail (the database away); close() stops both, gracefully.
     */
    async start(bus: Bus): Promise<Subscription & { readonly checkRequests: () => void }> {
      const subscription = await bus.subscribe({ consumer: name, eventTypes, deliver });
      const requests = startFollower({
        step: async () => {
          await processRequests();
          return { sleepMs: requestPollMs };
        },
        backoff: { firstMs: requestPollMs, maxMs: Math.max(requestPollMs, 10_000) },
        onError: options.onError,
      });
      return {
        checkRequests: requests.wake,
        close: async () => {
          const stopping = requests.stop();
          await subscription.close();
          await stopping;
        },
      };
    },
  };
}

export type Consumer = ReturnType<typeof createConsumer>;
