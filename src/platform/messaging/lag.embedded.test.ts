import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { openTestPglite, sampleEvent, type TestDatabase } from '../sql/testing.ts';
import { sealingStore } from '../eventstore/testing.ts';
import type { SqlEventStore } from '../eventstore/store.ts';
import { consumerLag, registerConsumers, relayLag } from './lag.ts';

describe('the lag of a consumer, read from the database alone', () => {
  let database: TestDatabase;
  let store: SqlEventStore;
  before(async () => {
    database = await openTestPglite();
    store = sealingStore(database.client);
  });
  after(() => database.dispose());

  /** What a consumer can do with an event: handle it (its inbox), dead-letter it, or park it behind a dead letter. */
  const pass = async (consumer: string, eventId: string, how: 'inbox' | 'dead' | 'parked') => {
    if (how === 'inbox') await database.client.query('INSERT INTO mutuo_inbox (consumer, event_id) VALUES ($1, $2)', [consumer, eventId]);
    if (how === 'dead') {
      await database.client.query(
        `INSERT INTO mutuo_dead_letters (consumer, partition_key, event_id, event_type, reason, error, attempts, message)
         VALUES ($1, 'k', $2, 'T', 'HANDLER_FAILED', 'boom', 5, '{}'::jsonb)`,
        [consumer, eventId],
      );
    }
    if (how === 'parked') {
      await database.client.query(`INSERT INTO mutuo_parked (consumer, partition_key, message) VALUES ($1, 'k', $2::jsonb)`, [
        consumer,
        JSON.stringify({ messageId: eventId, headers: {}, body: { eventId } }),
      ]);
    }
  };

  it('is every event of its types it has not handled, dead-lettered or parked, however it looks and remembers, and whatever its types become', async () => {
    const op = fc.oneof(
      fc.record({ op: fc.constant('append' as const), type: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ op: fc.constant('pass' as const), pick: fc.nat(), how: fc.constantFrom('inbox' as const, 'dead' as const, 'parked' as const) }),
      fc.record({ op: fc.constant('look' as const), remember: fc.boolean() }),
      fc.record({ op: fc.constant('retype' as const), types: fc.subarray([0, 1, 2], { minLength: 1 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
        const consumer = `lag-${randomUUID()}`;
        const typeNames = [0, 1, 2].map((i) => `Lag${i}-${consumer}`);
        let types = [0, 1];
        const events: { id: string; type: number; passed: boolean }[] = [];
        await registerConsumers(database.client, [{ name: consumer, eventTypes: types.map((t) => typeNames[t]!) }]);
        const look = async (remember: boolean) => {
          const lag = await consumerLag(database.client, consumer, { remember });
          const expected = events.filter((event) => types.includes(event.type) && !event.passed).length;
          assert.equal(lag?.behindEvents, expected);
          if (expected === 0) assert.equal(lag?.lagMs, 0);
        };
        for (const step of ops) {
          if (step.op === 'append') {
            const event = sampleEvent(typeNames[step.type]);
            await store.appendToStream(`lag-${randomUUID()}`, [event], 'no_stream');
            events.push({ id: event.eventId, type: step.type, passed: false });
          } else if (step.op === 'pass') {
            const waiting = events.filter((event) => !event.passed);
            if (waiting.length === 0) continue;
            const event = waiting[step.pick % waiting.length]!;
            await pass(consumer, event.id, step.how);
            event.passed = true;
          } else if (step.op === 'retype') {
            types = step.types;
            await registerConsumers(database.client, [{ name: consumer, eventTypes: types.map((t) => typeNames[t]!) }]);
          } else await look(step.remember);
        }
        await look(true);
        await look(false);
      }),
      { numRuns: 40 },
    );
  });

  it('counts its open dead letters and parked messages, and is nothing for a consumer no process registered', async () => {
    const consumer = `lag-${randomUUID()}`;
    await registerConsumers(database.client, [{ name: consumer, eventTypes: ['LagCounted'] }]);
    const [first, second] = [sampleEvent('LagCounted'), sampleEvent('LagCounted')];
    await store.appendToStream(`lag-${randomUUID()}`, [first!, second!], 'no_stream');
    await pass(consumer, first!.eventId, 'dead');
    await pass(consumer, second!.eventId, 'parked');
    const lag = await consumerLag(database.client, consumer);
    assert.deepEqual({ behind: lag?.behindEvents, dead: lag?.openDeadLetters, parked: lag?.parked }, { behind: 0, dead: 1, parked: 1 });
    assert.equal(await consumerLag(database.client, `never-${randomUUID()}`), undefined);
  });

  it('reads the relay as behind by every event after its checkpoint, with how long the oldest waited', async () => {
    const name = `relay-${randomUUID()}`;
    const head = await relayLag(database.client, name);
    assert.equal(head.position, 0);
    await database.client.query(`INSERT INTO mutuo_relay (name, holder, lease_until, position) VALUES ($1, 'h', now(), $2)`, [name, head.headPosition]);
    assert.deepEqual(await relayLag(database.client, name), { position: head.headPosition, headPosition: head.headPosition, behindEvents: 0, lagMs: 0 });
    await store.appendToStream(`lag-${randomUUID()}`, [sampleEvent(), sampleEvent()], 'no_stream');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const behind = await relayLag(database.client, name);
    assert.equal(behind.behindEvents, 2);
    assert.ok(behind.lagMs > 0, `lag ${behind.lagMs} ms`);
  });
});
