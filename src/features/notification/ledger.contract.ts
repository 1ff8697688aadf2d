import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { LedgerOptions, NotificationLedger } from './ledger.ts';

export type LedgerBackend = {
  /** Another sender's ledger on the same store. */
  readonly openLedger: (options: LedgerOptions) => Promise<NotificationLedger>;
  readonly dispose: () => Promise<void>;
};

/** The ledger's contract, written once and run against every store. */
export function describeLedgerConformance(store: string, openBackend: () => Promise<LedgerBackend>): void {
  describe(`notification ledger conformance: ${store}`, () => {
    let backend: LedgerBackend;
    let ledger: NotificationLedger;
    let otherSender: NotificationLedger;
    const opened: NotificationLedger[] = [];
    const open = async (options: LedgerOptions = {}) => {
      const opening = await backend.openLedger(options);
      opened.push(opening);
      return opening;
    };
    const shortTtlMs = 150;

    before(async () => {
      backend = await openBackend();
      ledger = await open();
      otherSender = await open();
    });
    after(async () => {
      await Promise.all(opened.map((l) => l.close()));
      await backend.dispose();
    });

    it('grants the first claim and refuses a second while it is fresh', async () => {
      const eventId = randomUUID();
      assert.equal(await ledger.claim(eventId, 'email'), true);
      assert.equal(await ledger.claim(eventId, 'email'), false);
      assert.equal(await otherSender.claim(eventId, 'email'), false);
    });

    it('never grants a claim once sent', async () => {
      const eventId = randomUUID();
      assert.equal(await ledger.claim(eventId, 'email'), true);
      await ledger.markSent(eventId, 'email');
      assert.equal(await ledger.claim(eventId, 'email'), false);
      assert.equal(await otherSender.claim(eventId, 'email'), false);
      await otherSender.release(eventId, 'email');
      assert.equal(await ledger.claim(eventId, 'email'), false, 'a release does not undo a send');
    });

    it('grants a released claim again at once', async () => {
      const eventId = randomUUID();
      assert.equal(await ledger.claim(eventId, 'email'), true);
      await ledger.release(eventId, 'email');
      assert.equal(await otherSender.claim(eventId, 'email'), true);
      assert.equal(await ledger.claim(eventId, 'email'), false);
    });

    it('keeps channels of one event apart', async () => {
      const eventId = randomUUID();
      assert.equal(await ledger.claim(eventId, 'email'), true);
      await ledger.markSent(eventId, 'email');
      assert.equal(await ledger.claim(eventId, 'sms'), true);
      assert.equal(await ledger.claim(randomUUID(), 'email'), true);
    });

    it('lets another sender take over a claim that expired, but never a sent one', async () => {
      const crashed = await open({ claimTtlMs: shortTtlMs });
      const retrying = await open({ claimTtlMs: shortTtlMs });
      const abandoned = randomUUID();
      const delivered = randomUUID();
      assert.equal(await crashed.claim(abandoned, 'email'), true);
      assert.equal(await crashed.claim(delivered, 'email'), true);
      await crashed.markSent(delivered, 'email');
      assert.equal(await retrying.claim(abandoned, 'email'), false, 'still fresh');
      await sleep(shortTtlMs + 50);
      assert.equal(await retrying.claim(abandoned, 'email'), true);
      assert.equal(await crashed.claim(abandoned, 'email'), false, 'the takeover is a fresh claim');
      assert.equal(await retrying.claim(delivered, 'email'), false);
    });

    it('grants exactly one of 50 concurrent claims', async () => {
      const eventId = randomUUID();
      const granted = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? ledger : otherSender).claim(eventId, 'email')));
      assert.equal(granted.filter(Boolean).length, 1);
    });

    it('grants exactly one of 50 concurrent takeovers of an expired claim', async () => {
      const senders = [await open({ claimTtlMs: shortTtlMs }), await open({ claimTtlMs: shortTtlMs })];
      const eventId = randomUUID();
      assert.equal(await senders[0]!.claim(eventId, 'email'), true);
      await sleep(shortTtlMs + 50);
      const granted = await Promise.all(Array.from({ length: 50 }, (_, i) => senders[i % 2]!.claim(eventId, 'email')));
      assert.equal(granted.filter(Boolean).length, 1);
    });
  });
}
