/**
 * Messaging benchmark: events per second and latency from an append's commit to a
 * consumer's handler, through the outbox relay and RabbitMQ, then Apache Kafka, on a real
 * PostgreSQL, each next to its raw ceiling measured in the same run (rabbitmq-client
 * publishing the same messages with confirms to one quorum queue and a bare consumer
 * acking each; @platformatic/kafka producing the same records, idempotent with acks=all,
 * to a topic of as many partitions, and a bare consumer group).
 *
 *   npm run bench:bus [-- --events 20000 --seconds 10 --writers 256 --streams 1000 --rate 500 --no-rabbitmq --no-kafka --no-pglite]
 *
 * Each path runs saturated (--events appended as fast as --writers can, which gives the
 * throughput; its latencies are mostly time spent in the backlog; 256 writers by default,
 * so that the appends outrun the bus as the ceiling's 500 unconfirmed publishes outrun
 * the broker: with 16, the bus kept up with the writers and the figure measured them) and paced (an open loop
 * at --rate events/s for --seconds, which gives the latency; by default at half the
 * saturated throughput of the Mutuo path, and the ceiling at that same rate). Mutuo's
 * paths also drain a backlog: --events appended with the relay held, then relayed and
 * handled from the moment it is let go (the bus path's own throughput, without the appends).
 *
 * DATABASE_URL, AMQP_URL and KAFKA_BROKERS pick the servers. Everything happens in a schema,
 * a queue, topics and a consumer topology of its own, removed at the end even on failure; the
 * shared exchange (mutuo.events) is removed too when this run created it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Connection, type Channel } from 'rabbitmq-client';
import { migrate } from '../src/platform/sql/migrate.ts';
import { createPgliteClient } from '../src/platform/sql/pglite.ts';
import { createPostgresClient } from '../src/platform/sql/postgres.ts';
import type { SqlClient } from '../src/platform/sql/sql-client.ts';
import { Type } from '@sinclair/typebox';
import { SqlEventStore, storedLog } from '../src/platform/eventstore/store.ts';
import { createEventCatalog } from '../src/platform/eventstore/event-catalog.ts';
import { defineEvent } from '../src/platform/eventstore/event-definition.ts';
import { testSessions, testVault } from '../src/platform/eventstore/testing.ts';
import { sampleEvent } from '../src/platform/sql/testing.ts';
import type { Bus } from '../src/platform/messaging/bus.ts';
import { createConsumer, defineConsumer } from '../src/platform/messaging/consumer.ts';
import { createInProcessBus } from '../src/platform/messaging/in-process-bus.ts';
import { messageHeaders, partitionCount, toEventMessage } from '../src/platform/messaging/message.ts';
import { createRabbitMqBus, eventsExchange } from '../src/platform/messaging/rabbitmq-bus.ts';
import { Admin, Consumer, ProduceAcks, Producer, compatibilityPartitioner, stringSerializer } from '@platformatic/kafka';
import { createKafkaBus } from '../src/platform/messaging/kafka-bus.ts';
import { eventIdHeader, eventRecord } from '../src/platform/messaging/kafka-records.ts';
import { startOutboxRelay } from '../src/platform/messaging/relay.ts';
import { deleteConsumerTopology } from '../src/platform/messaging/testing.ts';
import { migrationFolders } from '../src/app/migrations.ts';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    seconds: { type: 'string', default: '10' },
    writers: { type: 'string', default: '256' },
    streams: { type: 'string', default: '1000' },
    rate: { type: 'string' },
    'no-pglite': { type: 'boolean', default: false },
    'no-rabbitmq': { type: 'boolean', default: false },
    'no-kafka': { type: 'boolean', default: false },
    timeout: { type: 'string', default: '300' },
  },
});
const events = Number(args.events);
const seconds = Number(args.seconds);
const writers = Number(args.writers);
const streamCount = Number(args.streams);
const warmUpEvents = Math.min(1_000, events);
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const kafkaBrokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
/** The bench's own topics, removed at the end: Mutuo's (its groups named after it) and the ceiling's. */
const kafkaTopic = `mutuo.bench-${process.pid}.events`;
const rawKafkaTopic = `mutuo.bench-${process.pid}-raw.events`;
const schema = `mutuo_bench_${process.pid}`;
const consumerName = `bench-${process.pid}`;
const rawQueue = `mutuo.bench.raw.${process.pid}`;
const eventType = 'BenchTicked';
// The relay publishes up to a batch of 500 at once: the ceiling keeps as many unconfirmed.
const rawPublishesInFlight = 500;
/** A pass that handles nothing new for this long has failed. */
const stallMs = 30_000;

type Figure = { readonly perSecond: number; readonly p50Ms: number; readonly p99Ms: number };
type Spread = { readonly p50Ms: number; readonly p99Ms: number };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function spread(values: number[]): Spread {
  values.sort((a, b) => a - b);
  return { p50Ms: percentile(values, 50), p99Ms: percentile(values, 99) };
}

/** Math.min and Math.max without spreading, which overflows the stack for large passes. */
function bounds(values: Iterable<number>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const value of values) {
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  return { min, max };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let interrupted = false;

/** What one measurement saw of each message: when it started counting, was relayed, was handled. */
class Pass {
  private readonly ids = new Set<string>();
  private readonly startedAt = new Map<string, number>();
  private readonly relayedAt = new Map<string, number>();
  private readonly seenAt = new Map<string, number>();
  private readonly transactionMs: number[] = [];

  expect(id: string): void {
    this.ids.add(id);
  }
  started(id: string): void {
    this.startedAt.set(id, performance.now());
  }
  relayed(id: string, at: number): void {
    if (this.ids.has(id) && !this.relayedAt.has(id)) this.relayedAt.set(id, at);
  }
  seen(id: string | undefined): void {
    if (id !== undefined && this.ids.has(id) && !this.seenAt.has(id)) this.seenAt.set(id, performance.now());
  }
  transaction(ms: number): void {
    this.transactionMs.push(ms);
  }

  async complete(): Promise<void> {
    let handled = -1;
    let progressedAt = performance.now();
    while (this.seenAt.size < this.ids.size) {
      if (interrupted) throw new Error('interrupted');
      if (this.seenAt.size !== handled) {
        handled = this.seenAt.size;
        progressedAt = performance.now();
      } else if (performance.now() - progressedAt > stallMs) {
        throw new Error(`stalled: ${handled} of ${this.ids.size} handled, none in the last ${stallMs / 1000} s`);
      }
      await sleep(10);
    }
  }

  /** Throughput from the first start to the last handling; latency from each one's start. */
  figure(): Figure {
    const first = bounds(this.startedAt.values()).min;
    const last = bounds(this.seenAt.values()).max;
    const latencies = [...this.seenAt].map(([id, at]) => at - this.startedAt.get(id)!);
    return { perSecond: this.ids.size / ((last - first) / 1000), ...spread(latencies) };
  }

  /** The backlog is let go: each message's time counts from now, as if just committed. */
  released(): void {
    const now = performance.now();
    for (const id of this.ids) this.startedAt.set(id, now);
  }

  startRate(): number {
    const { min, max } = bounds(this.startedAt.values());
    return this.ids.size / ((max - min) / 1000);
  }

  /** Where the time went: commit to the relay's publish, publish to handler, one consumer transaction. */
  breakdown(): { toRelay: Spread; toHandler: Spread; transaction: Spread; perTransaction: number } {
    const toRelay: number[] = [];
    const toHandler: number[] = [];
    for (const [id, relayed] of this.relayedAt) {
      toRelay.push(relayed - this.startedAt.get(id)!);
      toHandler.push(this.seenAt.get(id)! - relayed);
    }
    return {
      toRelay: spread(toRelay),
      toHandler: spread(toHandler),
      transaction: spread([...this.transactionMs]),
      perTransaction: this.ids.size / Math.max(1, this.transactionMs.length),
    };
  }
}

/** The measurement under way; handlers record into it. */
let current = new Pass();

type Path = {
  /** Sends message `i` of the pass, counting from its commit (Mutuo) or its publish (raw). */
  readonly send: (i: number) => Promise<void>;
  /** Sends at once in a saturated pass. */
  readonly concurrency: number;
  /** Mutuo's: stops the relay (what is appended then waits, committed, in the event table), and starts it again. */
  readonly relay?: { readonly hold: () => Promise<void>; readonly release: () => void };
};

/**
 * saturated: appended as fast as the writers can, relayed and handled meanwhile; paced: at a
 * rate; backlog: appended with the relay held, then relayed and handled from the moment it is
 * let go, which is the bus path's own throughput, without the appends' cost.
 */
type Load =
  | { readonly kind: 'saturated'; readonly events: number }
  | { readonly kind: 'paced'; readonly rate: number }
  | { readonly kind: 'backlog'; readonly events: number };

async function measure(path: Path, load: Load): Promise<Pass> {
  const pass = (current = new Pass());
  if (load.kind === 'saturated' || load.kind === 'backlog') {
    if (load.kind === 'backlog') await path.relay!.hold();
    let next = 0;
    await Promise.all(
      Array.from({ length: path.concurrency }, async () => {
        while (next < load.events && !interrupted) await path.send(next++);
      }),
    );
    if (load.kind === 'backlog') {
      pass.released();
      path.relay!.release();
    }
  } else {
    // Open loop: each send goes out on its schedule whatever the ones before it are doing.
    const total = Math.round(load.rate * seconds);
    const start = performance.now();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < total && !interrupted; i++) {
      const wait = start + (i * 1000) / load.rate - performance.now();
      if (wait > 0) await sleep(wait);
      sends.push(path.send(i));
    }
    await Promise.all(sends);
  }
  await pass.complete();
  return pass;
}

/** Cleanups run last registered first, each at most once and each given 15 s. */
const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
function onCleanup(what: string, run: () => Promise<unknown>): void {
  cleanups.push({ what, run });
}
let cleaning: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const { what, run } of cleanups.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('took over 15 s')), 15_000)));
      await Promise.race([run(), timeout])
        .catch((error: unknown) => console.error(`cleanup: ${what} failed:`, error instanceof Error ? error.message : error))
        .finally(() => clearTimeout(timer));
    }
  })();
  return cleaning;
}
function abandon(why: string): void {
  console.error(why);
  interrupted = true;
  void cleanUp().finally(() => process.exit(1));
}
process.once('SIGINT', () => abandon('interrupted: cleaning up'));
setTimeout(() => abandon(`the run took over ${args.timeout} s: cleaning up`), Number(args.timeout) * 1000).unref();

const errors = new Map<string, number>();
const reportError = (where: string) => (error: unknown) => {
  const count = (errors.get(where) ?? 0) + 1;
  errors.set(where, count);
  if (count <= 3) console.error(`${where}:`, error instanceof Error ? error.message : error);
};

const BenchTicked = defineEvent(eventType, 1, Type.Object({ n: Type.Integer() }));

/**
 * The production path, wired as the composition root wires it: one client for the store,
 * the relay and the consumer, the relay woken by every append; the handler only notes
 * that it saw the event, inside the consumer's transaction that records it in the inbox.
 */
async function openMutuo(client: SqlClient, bus: Bus, maxConcurrentWrites: number): Promise<Path> {
  const observed: Bus = {
    declare: (consumers) => bus.declare(consumers),
    publish: (messages, options) => {
      const at = performance.now();
      for (const message of messages) current.relayed(message.eventId, at);
      return bus.publish(messages, options);
    },
    subscribe: (subscription) => bus.subscribe(subscription),
    close: () => bus.close(),
  };
  const timed: SqlClient = {
    ...client,
    transaction: async (work) => {
      const start = performance.now();
      try {
        return await client.transaction(work);
      } finally {
        current.transaction(performance.now() - start);
      }
    },
  };
  const store = new SqlEventStore(client, { maxConcurrentWrites, personalData: testVault(client) });
  const startRelay = () => startOutboxRelay({ client, store: storedLog(client), bus: observed, onError: reportError('relay') });
  let relay = startRelay();
  onCleanup('stop the relay', () => relay.stop());
  store.onAppend(() => relay.wake());
  const consumer = createConsumer(defineConsumer({ name: consumerName, events: [BenchTicked], handle: async (event) => current.seen(event.eventId) }), {
    client: timed,
    sessions: testSessions(timed),
    catalog: createEventCatalog([BenchTicked]),
    onError: reportError('consumer'),
  });
  const subscription = await consumer.start(observed);
  onCleanup('close the subscription', () => subscription.close());
  const streams = Array.from({ length: streamCount }, () => `application-${randomUUID()}`);
  return {
    concurrency: writers,
    relay: {
      hold: () => relay.stop(),
      release: () => {
        relay = startRelay();
      },
    },
    async send(i) {
      const event = sampleEvent(eventType, { n: i });
      current.expect(event.eventId);
      await store.appendToStream(streams[Math.floor(Math.random() * streams.length)]!, [event], 'any');
      current.started(event.eventId);
    },
  };
}

/** An event message as the relay publishes it, to give the ceiling the same body and headers. */
function sampleMessage() {
  const event = sampleEvent(eventType, { n: events });
  // A position the size a real one has (transaction id × 65536).
  const message = toEventMessage({
    ...event,
    schemaVersion: 1,
    position: 1_000_000 * 65_536,
    streamId: `application-${randomUUID()}`,
    streamVersion: 20,
    recordedAt: new Date(),
  });
  return { message, headers: messageHeaders(message), bytes: Buffer.byteLength(JSON.stringify(message)) };
}

async function openRaw(connection: Connection): Promise<Path> {
  const consumer = connection.createConsumer(
    { queue: rawQueue, queueOptions: { durable: true, arguments: { 'x-queue-type': 'quorum' } }, qos: { prefetchCount: 64 } },
    (message) => current.seen(message.messageId),
  );
  consumer.on('error', reportError('raw consumer'));
  onCleanup('close the raw consumer', () => consumer.close());
  await new Promise<void>((resolve) => consumer.once('ready', () => resolve()));
  const publisher = connection.createPublisher({ confirm: true });
  onCleanup('close the raw publisher', () => publisher.close());
  const { message, headers } = sampleMessage();
  return {
    concurrency: rawPublishesInFlight,
    async send() {
      const id = randomUUID();
      current.expect(id);
      current.started(id);
      await publisher.send({ routingKey: rawQueue, messageId: id, correlationId: message.metadata.correlationId, durable: true, headers }, message);
    },
  };
}

/**
 * The Kafka ceiling: a producer set as the bus sets its own (idempotent, acks=all, the
 * Java-compatible partitioner) sending the record the relay would send, on a topic with as
 * many partitions as Mutuo's; and a bare consumer group reading it from the start,
 * committing by the clock. Sends are batched as Kafka's own producers batch them (and as
 * the relay does): what is waiting goes out together, up to 500 records a request, with up
 * to 5 requests in flight (the most an idempotent producer may have); one record per request
 * would measure the round trips, not the broker.
 */
async function openRawKafka(admin: Admin): Promise<Path> {
  await admin.createTopics({ topics: [rawKafkaTopic], partitions: partitionCount, replicas: -1 });
  onCleanup(`delete topic ${rawKafkaTopic}`, () => admin.deleteTopics({ topics: [rawKafkaTopic] }));
  const producer = new Producer({
    clientId: 'mutuo-bench-raw',
    bootstrapBrokers: kafkaBrokers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    partitioner: compatibilityPartitioner,
    serializers: { key: stringSerializer, headerKey: stringSerializer, headerValue: stringSerializer },
  });
  onCleanup('close the raw Kafka producer', () => producer.close());
  const group = `${rawKafkaTopic}.consumer`;
  const consumer = new Consumer({ groupId: group, clientId: 'mutuo-bench-raw', bootstrapBrokers: kafkaBrokers });
  onCleanup(`delete group ${group}`, () => admin.deleteGroups({ groups: [group] }));
  onCleanup('close the raw Kafka consumer', () => consumer.close(true));
  const stream = await consumer.consume({ topics: [rawKafkaTopic], mode: 'earliest', autocommit: 1_000 });
  stream.on('data', (record) => {
    for (const [name, value] of record.headers) if (name.toString() === eventIdHeader) current.seen(value.toString());
  });
  stream.on('error', reportError('raw Kafka consumer'));
  const { message } = sampleMessage();
  type Waiting = { readonly id: string; readonly resolve: () => void; readonly reject: (error: unknown) => void };
  let waiting: Waiting[] = [];
  let inFlight = 0;
  const flush = () => {
    while (inFlight < 5 && waiting.length > 0) {
      const batch = waiting.slice(0, 500);
      waiting = waiting.slice(batch.length);
      inFlight++;
      producer
        .send({ messages: batch.map(({ id }) => eventRecord(rawKafkaTopic, { ...message, eventId: id }, {})) })
        .then(
          () => {
            for (const { resolve } of batch) resolve();
          },
          (error: unknown) => {
            for (const { reject } of batch) reject(error);
          },
        )
        .finally(() => {
          inFlight--;
          flush();
        });
    }
  };
  return {
    concurrency: rawPublishesInFlight,
    send() {
      const id = randomUUID();
      current.expect(id);
      current.started(id);
      return new Promise<void>((resolve, reject) => {
        waiting.push({ id, resolve, reject });
        // Whatever the other senders add in this turn goes out with it.
        queueMicrotask(flush);
      });
    },
  };
}

/** Whether an exchange or queue is there, by a passive declare on a channel of its own (a miss closes it). */
async function exists(connection: Connection, kind: 'exchange' | 'queue', name: string): Promise<boolean> {
  const channel = await connection.acquire();
  try {
    if (kind === 'exchange') await channel.exchangeDeclare({ exchange: name, passive: true });
    else await channel.queueDeclare({ queue: name, passive: true });
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'NOT_FOUND') return false;
    throw error;
  } finally {
    await channel.close();
  }
}

/** Deletes what this run created of the topology every Mutuo shares, unless someone else uses it by now. */
async function deleteSharedTopology(connection: Connection, created: { events: boolean }) {
  const attempt = async (name: string, remove: (channel: Channel) => Promise<unknown>) => {
    const channel = await connection.acquire();
    try {
      await remove(channel);
      console.error(`removed ${name}, which this run created`);
    } catch (error) {
      // In use (PRECONDITION_FAILED) or gone: either way it is not ours to remove.
      if (!['PRECONDITION_FAILED', 'NOT_FOUND'].includes((error as { code?: string }).code ?? '')) throw error;
      console.error(`left ${name}, which this run created: someone else uses it now`);
    } finally {
      await channel.close();
    }
  };
  if (created.events) await attempt(`exchange ${eventsExchange}`, (c) => c.exchangeDelete({ exchange: eventsExchange, ifUnused: true }));
}

type Row = { what: string; load: string; figure: Figure; ofCeiling?: number; breakdown?: ReturnType<Pass['breakdown']> };
const rows: Row[] = [];
const loadLabel = (load: Load) =>
  load.kind === 'saturated'
    ? `saturated, ${load.events} events`
    : load.kind === 'backlog'
      ? `backlog of ${load.events} committed events`
      : `paced ${load.rate}/s for ${seconds} s`;
const rateFrom = (figure: Figure) => Math.max(10, Math.floor(figure.perSecond / 2 / 10) * 10);

async function run(what: string, path: Path, load: Load, options: { ceiling?: Figure | 'itself'; breakdown?: boolean } = {}): Promise<Figure> {
  const pass = await measure(path, load);
  const figure = pass.figure();
  const ceiling = options.ceiling === 'itself' ? figure : options.ceiling;
  rows.push({
    what,
    load: loadLabel(load),
    figure,
    ...(ceiling ? { ofCeiling: figure.perSecond / ceiling.perSecond } : {}),
    ...(options.breakdown ? { breakdown: pass.breakdown() } : {}),
  });
  const started = load.kind === 'saturated' ? `, started at ${pass.startRate().toFixed(0)}/s` : '';
  console.error(`${what}, ${loadLabel(load)}: ${figure.perSecond.toFixed(0)}/s${started}, p50 ${figure.p50Ms.toFixed(1)} ms`);
  return figure;
}

/**
 * One broker's passes: its ceiling saturated, then Mutuo's path (opened once the ceiling is
 * measured) saturated and drained against it, then both paced at one rate, well below
 * saturation, where they differ in latency only: no share of the ceiling there.
 */
async function compareWithCeiling(ceilingWhat: string, raw: Path, mutuoWhat: string, openMutuoPath: () => Promise<Path>): Promise<void> {
  await measure(raw, { kind: 'saturated', events: warmUpEvents });
  const ceiling = await run(ceilingWhat, raw, { kind: 'saturated', events }, { ceiling: 'itself' });
  const mutuo = await openMutuoPath();
  await measure(mutuo, { kind: 'saturated', events: warmUpEvents });
  const saturated = await run(mutuoWhat, mutuo, { kind: 'saturated', events }, { ceiling, breakdown: true });
  await run(mutuoWhat, mutuo, { kind: 'backlog', events }, { ceiling, breakdown: true });
  const rate = args.rate ? Number(args.rate) : rateFrom(saturated);
  await run(ceilingWhat, raw, { kind: 'paced', rate });
  await run(mutuoWhat, mutuo, { kind: 'paced', rate }, { breakdown: true });
}

/** A pool on a schema of the run's own, migrated: each broker's relay and consumer start from nothing. */
async function openSchema(admin: pg.Client, name: string): Promise<SqlClient> {
  await admin.query(`CREATE SCHEMA ${name}`);
  onCleanup(`drop schema ${name}`, () => admin.query(`DROP SCHEMA ${name} CASCADE`));
  const client = createPostgresClient({ connectionString: databaseUrl, schema: name, maxConnections: 20 });
  onCleanup(`close the PostgreSQL pool on ${name}`, () => client.close());
  await migrate(client, migrationFolders);
  return client;
}

console.error(`schema ${schema}, queue ${rawQueue}, consumer ${consumerName}`);
let machine = `Node ${process.version} on ${process.platform}/${process.arch}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`;
const sample = sampleMessage();
try {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  onCleanup('close the admin connection', () => admin.end());
  const [version] = (await admin.query<{ server_version: string }>('SHOW server_version')).rows;
  machine += `; PostgreSQL ${version?.server_version} at ${databaseUrl.replace(/\/\/[^@]*@/, '//')}`;
  if (!args['no-rabbitmq']) {
    machine += `; RabbitMQ at ${amqpUrl.replace(/\/\/[^@]*@/, '//')}`;
    const amqp = new Connection({ url: amqpUrl, connectionName: 'mutuo-bench', retryLow: 200, retryHigh: 2_000 });
    amqp.on('error', reportError('RabbitMQ'));
    onCleanup('close the RabbitMQ connection', () => amqp.close());
    const created = {
      events: !(await exists(amqp, 'exchange', eventsExchange)),
    };
    onCleanup('delete the shared exchanges this run created', () => deleteSharedTopology(amqp, created));
    onCleanup(`delete queue ${rawQueue}`, () => amqp.queueDelete({ queue: rawQueue }));
    await compareWithCeiling(
      'raw rabbitmq-client: confirmed publish → 1 quorum queue → bare consumer (ceiling)',
      await openRaw(amqp),
      'Mutuo: append → outbox relay → RabbitMQ → consumer (inbox)',
      async () => {
        onCleanup(`delete the topology of consumer ${consumerName}`, () => deleteConsumerTopology(consumerName, amqpUrl));
        const client = await openSchema(admin, schema);
        const bus = await createRabbitMqBus({ url: amqpUrl, onError: reportError('bus') });
        onCleanup('close the RabbitMQ bus', () => bus.close());
        return openMutuo(client, bus, 4);
      },
    );
  }

  if (!args['no-kafka']) {
    const kafkaAdmin = new Admin({ clientId: 'mutuo-bench', bootstrapBrokers: kafkaBrokers });
    onCleanup('close the Kafka admin', () => kafkaAdmin.close());
    machine += `; Apache Kafka at ${kafkaBrokers.join(',')}`;
    await compareWithCeiling(
      'raw @platformatic/kafka: idempotent produce (acks=all) → 16 partitions → bare consumer group (ceiling)',
      await openRawKafka(kafkaAdmin),
      'Mutuo: append → outbox relay → Kafka → consumer group (inbox)',
      async () => {
        const client = await openSchema(admin, `${schema}_kafka`);
        const bus = await createKafkaBus({ brokers: kafkaBrokers, topic: kafkaTopic, partitions: partitionCount, onError: reportError('Kafka bus') });
        onCleanup(`delete topic ${kafkaTopic}`, () => kafkaAdmin.deleteTopics({ topics: [kafkaTopic] }));
        onCleanup('close the Kafka bus', () => bus.close());
        return openMutuo(client, bus, 4);
      },
    );
  }

  if (!args['no-pglite']) {
    // On disk, as the composition root keeps it: in memory it would skip the writes a real one does.
    const folder = await mkdtemp(join(tmpdir(), 'mutuo-bench-'));
    onCleanup(`remove ${folder}`, () => rm(folder, { recursive: true, force: true }));
    const embedded = await createPgliteClient(folder);
    onCleanup('close PGlite', () => embedded.close());
    await migrate(embedded, migrationFolders);
    const inProcess = createInProcessBus();
    onCleanup('close the in-process bus', () => inProcess.close());
    // As the composition root does: PGlite has one connection, a second write would only queue.
    const mutuoEmbedded = await openMutuo(embedded, inProcess, 1);
    const embeddedWhat = 'Mutuo embedded: append → outbox relay → in-process bus → consumer, PGlite on disk (no broker, no ceiling)';
    await measure(mutuoEmbedded, { kind: 'saturated', events: warmUpEvents });
    const embeddedSaturated = await run(embeddedWhat, mutuoEmbedded, { kind: 'saturated', events }, { breakdown: true });
    await run(embeddedWhat, mutuoEmbedded, { kind: 'backlog', events }, { breakdown: true });
    const embeddedRate = args.rate ? Number(args.rate) : rateFrom(embeddedSaturated);
    await run(embeddedWhat, mutuoEmbedded, { kind: 'paced', rate: embeddedRate }, { breakdown: true });
  }
} finally {
  await cleanUp();
}

const ms = (value: number) => value.toFixed(1);
console.log(machine);
console.log(
  `${events} events saturated (${writers} writers over ${streamCount} streams; the ceiling keeps ${rawPublishesInFlight} publishes unconfirmed), then paced for ${seconds} s; ` +
    `messages of ${sample.bytes} bytes of JSON and ${Object.keys(sample.headers).length} headers; Mutuo consumes from ${partitionCount} partition queues; after ${warmUpEvents} messages of warm-up per path\n`,
);
console.log('| path | load | per second | p50 ms | p99 ms | of ceiling |');
console.log('| --- | --- | ---: | ---: | ---: | ---: |');
for (const { what, load, figure, ofCeiling } of rows) {
  const share = ofCeiling === undefined ? '—' : `${(100 * ofCeiling).toFixed(0)} %`;
  console.log(`| ${what} | ${load} | ${figure.perSecond.toFixed(0)} | ${ms(figure.p50Ms)} | ${ms(figure.p99Ms)} | ${share} |`);
}
console.log('\nWhere the time goes, p50 / p99 ms:\n');
console.log('| path | load | commit → relay publishes | relay publishes → handler | one consumer transaction | events per consumer transaction |');
console.log('| --- | --- | ---: | ---: | ---: | ---: |');
for (const { what, load, breakdown } of rows) {
  if (!breakdown) continue;
  const cell = (s: Spread) => `${ms(s.p50Ms)} / ${ms(s.p99Ms)}`;
  console.log(
    `| ${what} | ${load} | ${cell(breakdown.toRelay)} | ${cell(breakdown.toHandler)} | ${cell(breakdown.transaction)} | ${breakdown.perTransaction.toFixed(1)} |`,
  );
}
if (errors.size > 0) console.log(`\nErrors reported along the way: ${[...errors].map(([where, count]) => `${where} ${count}`).join(', ')}`);
