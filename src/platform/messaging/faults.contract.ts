import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { defineEvent } from '../eventstore/event-definition.ts';
import type { SqlEventStore } from '../eventstore/store.ts';
import { sealingStore } from '../eventstore/testing.ts';
import { openTestPostgres, sampleEvent, type TestDatabase } from '../sql/testing.ts';
import { startTcpProxy, type TcpProxy } from '../tcp-proxy.fixture.ts';
import type { ConsumerOptions } from './consumer.ts';
import { createDeadLetters } from './dead-letters.ts';
import { waitUntil } from './messaging.contract.ts';

/** The event of the fault suite; v2 is what a newer producer writes, which a node reads only once upgraded (KNOWS_V2). */
export const FaultProbe = defineEvent('FaultProbe', 1, Type.Object({ n: Type.Integer() }));
export const FaultProbeV2 = defineEvent('FaultProbe', 2, Type.Object({ n: Type.Integer(), note: Type.String() }), {
  upcast: (previous) => ({ ...(previous as { n: number }), note: '' }),
});

/** How the nodes' consumers retry: quickly, so that the suite's cases end in seconds. */
export const faultConsumerOptions = {
  maxAttempts: 3,
  firstRetryDelayMs: 20,
  requestPollMs: 100,
  outageBackoff: { firstMs: 100, maxMs: 1_000 },
} satisfies Partial<ConsumerOptions>;

export type FaultRig = {
  /**
   * The broker the nodes use: the environment that names it to them (AMQP_URL, or
   * KAFKA_BROKERS and KAFKA_TOPIC), and how to restart it under load. None for the
   * in-process bus, each node's own: there, the node is restarted instead.
   */
  readonly broker?: { readonly env: Readonly<Record<string, string>>; readonly restart: () => Promise<void> };
  readonly dispose: () => Promise<void>;
};

type Node = {
  readonly name: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly alive: () => boolean;
  /** SIGTERM, and the exit it ends with. */
  readonly stop: () => Promise<void>;
};

const nodeProgram = new URL('./fault-node.fixture.ts', import.meta.url).pathname;

type Appended = { readonly eventId: string; readonly app: string; readonly version: number };

/**
 * The bus's promise under faults, written once and run against each bus with real
 * processes: nodes (fault-node.fixture.ts) run the relay and a consumer as the platform's
 * processes do, on PostgreSQL through a proxy that a case cuts. After each case: every
 * appended event is handled, parked or dead-lettered with its reason (nothing vanished);
 * each application's events were handled in append order; no effect happened twice; where
 * one application is at fault the others flowed meanwhile; and what was set aside, once
 * redriven, is handled in order, then what queued behind it.
 */
export function describeBusFaults(adapter: string, openRig: () => Promise<FaultRig>): void {
  describe(`the bus under faults: ${adapter}`, () => {
    let rig: FaultRig;
    let proxy: TcpProxy;
    const nodes: Node[] = [];
    /** Supervisors' stops: a case that fails must not leave one starting its node again for ever. */
    const supervisors: (() => Promise<void>)[] = [];
    const databases: TestDatabase[] = [];

    before(async () => {
      rig = await openRig();
      proxy = await startTcpProxy({ target: (await openCaseDatabase()).connectionString! });
    });
    after(async () => {
      await Promise.all(supervisors.map((stop) => stop()));
      await Promise.all(nodes.map((node) => node.stop()));
      await proxy?.close();
      for (const database of databases) await database.dispose();
      await rig?.dispose();
    });

    async function openCaseDatabase(): Promise<TestDatabase> {
      const database = await openTestPostgres(10);
      databases.push(database);
      await database.client.exec(`
        CREATE TABLE fault_behaviour (partition_key text NOT NULL, stream_version integer, action text NOT NULL);
        CREATE TABLE fault_effects (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, consumer text NOT NULL,
          partition_key text NOT NULL, event_id uuid NOT NULL, stream_version integer NOT NULL, node text NOT NULL)`);
      return database;
    }

    /** One case's world: its own schema, consumer and nodes, and the checks. */
    async function openCase() {
      const database = await openCaseDatabase();
      const store: SqlEventStore = sealingStore(database.client);
      const consumer = `faults-${randomUUID().slice(0, 8)}`;
      // The nodes reach this case's schema through the proxy.
      const viaProxy = new URL(database.connectionString!);
      viaProxy.host = `${proxy.host}:${proxy.port}`;
      const appended: Appended[] = [];
      const deadLetters = createDeadLetters(database.client);

      async function startNode(name: string, env: Record<string, string> = {}): Promise<Node> {
        const child = spawn(process.execPath, ['--import', 'tsx', nodeProgram], {
          env: {
            ...process.env,
            // Only the rig names a broker: none that this process's environment names leaks in.
            AMQP_URL: '',
            KAFKA_BROKERS: '',
            ...rig.broker?.env,
            DATABASE_URL: viaProxy.toString(),
            CONSUMER: consumer,
            NODE_NAME: name,
            ...env,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        const keep = (chunk: Buffer) => {
          output = (output + chunk.toString()).slice(-20_000);
        };
        child.stdout.on('data', keep);
        child.stderr.on('data', keep);
        const exited = once(child, 'exit');
        await new Promise<void>((resolve, reject) => {
          const look = () => output.includes(`ready ${name}`) && resolve();
          child.stdout.on('data', look);
          void exited.then(([code]) => reject(new Error(`node ${name} exited with ${code} before it was ready:\n${output}`)));
        });
        const node: Node = {
          name,
          child,
          output: () => output,
          alive: () => child.exitCode === null && child.signalCode === null,
          stop: async () => {
            if (!node.alive()) return;
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
            await exited;
            clearTimeout(timer);
          },
        };
        nodes.push(node);
        return node;
      }

      /** A node that a supervisor starts again whenever it ends on its own, as systemd or Kubernetes would. */
      async function supervise(name: string, env: Record<string, string> = {}) {
        let stopping = false;
        let restarts = 0;
        const ended: string[] = [];
        let current = await startNode(name, env);
        const watch = (node: Node) => {
          node.child.once('exit', () => {
            if (stopping) return;
            restarts++;
            ended.push(node.output());
            void (async () => {
              await sleep(200);
              if (stopping) return;
              current = await startNode(name, env);
              watch(current);
            })();
          });
        };
        watch(current);
        const stop = async () => {
          stopping = true;
          await current.stop();
        };
        supervisors.push(stop);
        /** What the last runs printed, the current one last: for a case's failure. */
        const history = () => [...ended.slice(-2), current.output()].join('\n--- the supervisor started it again ---\n');
        return { restarts: () => restarts, current: () => current, history, stop };
      }

      async function append(app: string, count: number, options: { schemaVersion?: number } = {}): Promise<void> {
        for (let i = 0; i < count; i++) {
          const version = appended.filter((event) => event.app === app).length + 1;
          const data = options.schemaVersion === 2 ? { n: version, note: 'from a newer producer' } : { n: version };
          const event = { ...sampleEvent(FaultProbe.type, data), ...(options.schemaVersion ? { schemaVersion: options.schemaVersion } : {}) };
          await store.appendToStream(`application-${app}`, [event], version - 1);
          appended.push({ eventId: event.eventId, app, version });
        }
      }

      const effects = () =>
        database.client.query<{ event_id: string; partition_key: string; stream_version: number; node: string }>(
          'SELECT event_id::text AS event_id, partition_key, stream_version, node FROM fault_effects WHERE consumer = $1 ORDER BY seq',
          [consumer],
        );
      const handledOf = async (apps: readonly string[]) => (await effects()).filter((effect) => apps.includes(effect.partition_key)).length;
      const appendedOf = (apps: readonly string[]) => appended.filter((event) => apps.includes(event.app)).length;
      const untilHandled = (apps: readonly string[], what: string, timeoutMs = 60_000) =>
        waitUntil(async () => (await handledOf(apps)) >= appendedOf(apps), what, timeoutMs).catch(async (error: Error) => {
          throw new Error(`${error.message}\n${await whereThingsStand(apps)}`);
        });

      /** Where the relay, the consumer and the effects stand: for a case that timed out to say. */
      async function whereThingsStand(apps: readonly string[]): Promise<string> {
        const query = (sql: string, params: unknown[] = [consumer]) => database.client.query(sql, params).then((rows) => JSON.stringify(rows));
        return [
          `handled ${await handledOf(apps)} of ${appendedOf(apps)} appended`,
          `relay: ${await query('SELECT position, lease_until < now() AS lapsed FROM mutuo_relay', [])}`,
          `log: ${await query('SELECT max(position) AS head, pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 65536 AS horizon FROM mutuo_events', [])}`,
          `attempts: ${await query('SELECT event_id, attempts FROM mutuo_consumer_attempts WHERE consumer = $1')}`,
          `set aside: ${await query('SELECT reason, status, partition_key FROM mutuo_dead_letters WHERE consumer = $1')}, parked ${await query('SELECT count(*) FROM mutuo_parked WHERE consumer = $1')}`,
          `inbox: ${await query('SELECT count(*) FROM mutuo_inbox WHERE consumer = $1')}`,
        ].join('\n');
      }

      /** The invariants, over everything this case appended; returns what was set aside, by event id. */
      async function verify(): Promise<Map<string, string>> {
        const handled = await effects();
        const parked = new Set(
          (
            await database.client.query<{ event_id: string }>(`SELECT message->'body'->>'eventId' AS event_id FROM mutuo_parked WHERE consumer = $1`, [
              consumer,
            ])
          ).map((row) => row.event_id),
        );
        const dead = new Map(
          (await deadLetters.list({ consumer, status: 'open', limit: 1_000 })).map((letter) => {
            assert.ok(letter.reason && letter.error, `dead letter ${letter.id} says why`);
            return [letter.eventId!, `${letter.reason}: ${letter.error}`] as const;
          }),
        );
        const inbox = new Set(
          (await database.client.query<{ event_id: string }>('SELECT event_id::text AS event_id FROM mutuo_inbox WHERE consumer = $1', [consumer])).map(
            (row) => row.event_id,
          ),
        );
        for (const event of appended) {
          const times = handled.filter((effect) => effect.event_id === event.eventId).length;
          assert.ok(times <= 1, `event ${event.version} of ${event.app} had its effect ${times} times`);
          const outcomes = [times === 1, parked.has(event.eventId), dead.has(event.eventId)].filter(Boolean).length;
          assert.equal(outcomes, 1, `event ${event.version} of ${event.app} is handled, parked or dead-lettered, once (${outcomes} outcomes)`);
          if (times === 1) assert.ok(inbox.has(event.eventId), `event ${event.version} of ${event.app} is in the inbox`);
        }
        for (const app of new Set(appended.map((event) => event.app))) {
          const versions = handled.filter((effect) => effect.partition_key === app).map((effect) => effect.stream_version);
          assert.deepEqual(
            versions,
            [...versions].sort((a, b) => a - b),
            `${app} handled in append order`,
          );
        }
        const setAside = new Map<string, string>(dead);
        for (const eventId of parked) setAside.set(eventId, 'parked');
        return setAside;
      }

      /** Redrives the application's dead letter, and waits until all of its events are handled. */
      async function redrive(app: string): Promise<void> {
        const [letter] = (await deadLetters.list({ consumer, status: 'open' })).filter((candidate) => candidate.partitionKey === app);
        assert.ok(letter, `${app} has a dead letter`);
        await deadLetters.requestRedrive(letter.id);
        await untilHandled([app], `the redrive releases ${app}, in order`);
      }

      return {
        database,
        consumer,
        appended,
        deadLetters,
        startNode,
        supervise,
        append,
        effects,
        untilHandled,
        verify,
        redrive,
        heal: (app: string) => database.client.query('DELETE FROM fault_behaviour WHERE partition_key = $1', [app]),
        behave: (app: string, version: number | null, action: 'fail' | 'exit') =>
          database.client.query('INSERT INTO fault_behaviour (partition_key, stream_version, action) VALUES ($1, $2, $3)', [app, version, action]),
      };
    }

    const apps = (count: number) => Array.from({ length: count }, () => randomUUID());

    for (const [label, cutMs, mode] of [
      ['2 s, as a network partition', 2_000, 'blackhole'],
      ['60 s, as a server gone', 60_000, 'refuse'],
    ] as const) {
      it(`(a) loses, reorders and repeats nothing through a database cut of ${label}`, async () => {
        const world = await openCase();
        // On a broker, the events are relayed by another process that still reaches the
        // database, as another service's relay would: the cut consumer is handed messages all
        // through the cut. (The in-process bus lives in the consumer's process, relay and all.)
        const relay = rig.broker ? await world.startNode('a-relay', { ROLE: 'relay', DATABASE_URL: world.database.connectionString! }) : undefined;
        const node = await world.startNode('a', rig.broker ? { ROLE: 'consumer' } : {});
        const flowing = apps(5);
        for (const app of flowing) await world.append(app, 2);
        await world.untilHandled(flowing, 'the first events are handled');
        await proxy.cut(mode);
        const cutEnds = Date.now() + cutMs;
        // Events keep being committed (by processes that still reach the database) all through the cut.
        while (Date.now() < cutEnds) {
          for (const app of flowing) await world.append(app, 1);
          await sleep(Math.min(1_000, cutMs / 4));
        }
        await proxy.restore();
        for (const app of flowing) await world.append(app, 1);
        await world.untilHandled(flowing, 'every event committed during the cut is handled', 90_000);
        assert.deepEqual([...(await world.verify())], [], 'an outage sets nothing aside');
        assert.ok(node.alive(), `the node outlived the cut:\n${node.output()}`);
        await node.stop();
        await relay?.stop();
      });
    }

    it('(b) sets aside a message whose handler ends the process each time, and the healthy ones behind it flow', async () => {
      const world = await openCase();
      const [poisoned] = apps(1) as [string];
      const healthy = apps(4);
      await world.behave(poisoned, 2, 'exit');
      // Slow handlers keep healthy messages of other partitions in hand when the process ends:
      // their attempts must not be counted against them.
      const node = await world.supervise('b', { HANDLER_DELAY_MS: '100' });
      await world.append(poisoned, 4);
      for (const app of healthy) await world.append(app, 3);
      const explained = (error: Error) => {
        throw new Error(`${error.message}; the node was restarted ${node.restarts()} times, its last runs printed:\n${node.history()}`);
      };
      // Each attempt costs the node a death and a start: the supervisor is given time.
      await world.untilHandled(healthy, 'the healthy applications are handled while the poisoned one crashes its consumer', 120_000).catch(explained);
      await waitUntil(
        async () => (await world.deadLetters.list({ consumer: world.consumer })).some((d) => d.parked === 2),
        'the poisoned message is set aside',
        120_000,
      ).catch(explained);
      const [dead] = await world.deadLetters.list({ consumer: world.consumer });
      assert.equal(dead?.reason, 'HANDLER_CRASHED');
      assert.ok(node.restarts() >= faultConsumerOptions.maxAttempts, `the supervisor restarted the node ${node.restarts()} times`);
      assert.equal((await world.verify()).size, 3, 'the poisoned message and the two behind it are set aside');
      await world.heal(poisoned);
      await world.redrive(poisoned);
      assert.deepEqual([...(await world.verify())], []);
      await node.stop();
    });

    it('(c) delivers to a consumer that starts for the first time after the events were published', async () => {
      const world = await openCase();
      const early = apps(3);
      for (const app of early) await world.append(app, 3);
      // On a broker, a node that only relays publishes them before any consumer has started;
      // on the in-process bus, the node's relay starts before its consumer subscribes, as the platform's does.
      const relay = rig.broker ? await world.startNode('c-relay', { ROLE: 'relay' }) : undefined;
      if (relay) {
        await waitUntil(async () => {
          const [row] = await world.database.client.query<{ position: string }>('SELECT max(position)::text AS position FROM mutuo_relay');
          const [head] = await world.database.client.query<{ position: string }>('SELECT max(position)::text AS position FROM mutuo_events');
          return row?.position !== undefined && row.position === head?.position;
        }, 'the relay has published every event');
      }
      const node = await world.startNode('c', rig.broker ? { ROLE: 'consumer' } : { CONSUMER_START_DELAY_MS: '1000' });
      await world.untilHandled(early, 'the events published before the consumer started are handled');
      assert.deepEqual([...(await world.verify())], []);
      await node.stop();
      await relay?.stop();
    });

    it('(d) sets aside an event of a version the consumer does not know with its application, and handles it in order once upgraded', async () => {
      const world = await openCase();
      const [newer] = apps(1) as [string];
      const others = apps(3);
      const node = await world.startNode('d');
      await world.append(newer, 1);
      await world.append(newer, 1, { schemaVersion: 2 });
      await world.append(newer, 2);
      for (const app of others) await world.append(app, 3);
      await world.untilHandled(others, 'the other applications flow');
      await waitUntil(async () => (await world.deadLetters.list({ consumer: world.consumer })).some((d) => d.parked === 2), 'the later events are parked');
      const [dead] = await world.deadLetters.list({ consumer: world.consumer });
      assert.deepEqual([dead?.reason, dead?.partitionKey], ['UNKNOWN_VERSION', newer]);
      assert.equal((await world.verify()).size, 3);
      // The consumer is upgraded: it reads v2 now. Then the operator redrives.
      await node.stop();
      const upgraded = await world.startNode('d-upgraded', { KNOWS_V2: '1' });
      await world.redrive(newer);
      assert.deepEqual([...(await world.verify())], []);
      await upgraded.stop();
    });

    it('(e) loses, reorders and repeats nothing when the broker restarts under load', async () => {
      const world = await openCase();
      let node = await world.startNode('e');
      const flowing = apps(8);
      const load = (async () => {
        for (let round = 0; round < 10; round++) {
          for (const app of flowing) await world.append(app, 1);
          await sleep(150);
        }
      })();
      await sleep(400);
      if (rig.broker) await rig.broker.restart();
      else {
        // The in-process bus is the node's: its restart is the broker's.
        await node.stop();
        node = await world.startNode('e-again');
      }
      await load;
      await world.untilHandled(flowing, 'every event is handled after the restart', 90_000);
      assert.deepEqual([...(await world.verify())], []);
      await node.stop();
    });

    it('(f) loses, reorders and repeats nothing when a replica is killed in the middle of a batch, with another running', async () => {
      const world = await openCase();
      const env = { HANDLER_DELAY_MS: '15', RELAY_LEASE_MS: '1000' };
      const first = await world.startNode('f-1', env);
      const second = await world.startNode('f-2', env);
      const flowing = apps(10);
      for (const app of flowing) await world.append(app, 8);
      await waitUntil(async () => (await world.effects()).length >= 20, 'the replicas are handling');
      // Kill one that is handling messages now.
      const busy = (await world.effects()).at(-1)!.node === 'f-1' ? first : second;
      busy.child.kill('SIGKILL');
      const survivor = busy === first ? second : first;
      await world.untilHandled(flowing, 'the surviving replica handles every event', 90_000);
      assert.ok(survivor.alive());
      assert.deepEqual([...(await world.verify())], []);
      await survivor.stop();
    });

    it('(g) sets aside a failing message with its application while the others flow, and releases it in order once redriven', async () => {
      const world = await openCase();
      const [failing] = apps(1) as [string];
      const healthy = apps(4);
      await world.behave(failing, 2, 'fail');
      const node = await world.startNode('g');
      await world.append(failing, 4);
      for (const app of healthy) await world.append(app, 3);
      await world.untilHandled(healthy, 'the other applications flow while one fails');
      await waitUntil(async () => (await world.deadLetters.list({ consumer: world.consumer })).some((d) => d.parked === 2), 'the failing message is set aside');
      const [dead] = await world.deadLetters.list({ consumer: world.consumer });
      assert.deepEqual([dead?.reason, dead?.attempts], ['HANDLER_FAILED', faultConsumerOptions.maxAttempts]);
      // Still held back: a new event of that application waits behind it too.
      await world.append(failing, 1);
      await waitUntil(async () => (await world.deadLetters.get(dead!.id)).parked === 3, 'the new event is parked too');
      await world.heal(failing);
      await world.redrive(failing);
      assert.deepEqual([...(await world.verify())], []);
      assert.ok(node.alive());
      await node.stop();
    });
  });
}
