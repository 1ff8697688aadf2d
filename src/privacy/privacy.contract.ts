import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { createEventCatalog } from '../platform/eventstore/event-catalog.ts';
import { defineEvent } from '../platform/eventstore/event-definition.ts';
import { insertEvents, selectStream, SqlEventStore } from '../platform/eventstore/store.ts';
import { sampleEvent, type TestDatabase } from '../platform/sql/testing.ts';
import { WrongExpectedVersionError, type NewEvent, type StoredEvent } from '../platform/eventstore/types.ts';
import { dataSubjectStreamId } from '../features/data-subjects/data-subject.ts';
import { isSealed } from './sealing.ts';
import { sqlSubjectKeys, type SubjectKeys } from './subject-keys.ts';
import { createPersonalDataVault, type PersonalDataVault } from './vault.ts';

// ---- a test-only event with personal data: the applicant and a contact note are personal, the loan is not ----

const ApplicantSchema = Type.Object({ firstName: Type.String(), lastName: Type.String(), taxCode: Type.String(), email: Type.String() });

const LoanRequested = defineEvent(
  'TestLoanRequested',
  1,
  Type.Object({
    requestId: Type.String(),
    applicant: ApplicantSchema,
    contactNote: Type.Optional(Type.String()),
    amountCents: Type.Integer(),
  }),
  {
    personal: {
      taxCode: (data) => data.applicant.taxCode,
      erased: { applicant: { firstName: '(erased)', lastName: '(erased)', taxCode: '(erased)', email: '(erased)' }, contactNote: '(erased)' },
    },
  },
);
const LoanApproved = defineEvent('TestLoanApproved', 1, Type.Object({ requestId: Type.String(), amountCents: Type.Integer() }));
const testCatalog = createEventCatalog([LoanRequested, LoanApproved]);

const digestSecret = 'test-digest-secret';

// Distinct within a run by construction (a random start, then one more each time): a
// random number drawn anew for each person collided now and then, and two "new" people
// then shared a subject.
let taxCodeCounter = Math.floor(Math.random() * 5e6);
/** A well-formed-looking tax code of its own for each test. */
function newTaxCode(): string {
  const n = String(++taxCodeCounter).padStart(7, '0');
  return `RSSMRA${n.slice(0, 2)}A${n.slice(2, 4)}H${n.slice(4, 7)}Z`;
}

type Person = { firstName: string; lastName: string; taxCode: string; email: string };
function newPerson(): Person {
  const tag = randomUUID().slice(0, 8);
  return { firstName: `Giulia${tag}`, lastName: `Bianchi${tag}`, taxCode: newTaxCode(), email: `giulia.${tag}@example.it` };
}

function loanRequested(person: Person, contactNote?: string): NewEvent {
  const data = { requestId: randomUUID(), applicant: person, ...(contactNote !== undefined ? { contactNote } : {}), amountCents: 20_000_000 };
  return { ...sampleEvent(LoanRequested.type, data), schemaVersion: 1 };
}

function loanApproved(): NewEvent {
  return { ...sampleEvent(LoanApproved.type, { requestId: randomUUID(), amountCents: 20_000_000 }), schemaVersion: 1 };
}

const sameEvents = (stored: readonly StoredEvent[]) => stored.map(({ eventId, type, schemaVersion, data }) => ({ eventId, type, schemaVersion, data }));
const asWritten = (events: readonly NewEvent[]) =>
  events.map(({ eventId, type, schemaVersion, data }) => ({ eventId, type, schemaVersion: schemaVersion ?? 1, data }));

/** The subject keys and the personal data vault, written once and run on every adapter. */
export function describePrivacyContract(adapter: string, openDatabase: () => Promise<TestDatabase>): void {
  describe(`subject keys: ${adapter}`, () => {
    let database: TestDatabase;
    let keys: SubjectKeys;
    before(async () => {
      database = await openDatabase();
      keys = sqlSubjectKeys(database.client, { digestSecret });
    });
    after(() => database.dispose());

    it('gives one subject and key per tax code, whatever its case and spacing', async () => {
      const taxCode = newTaxCode();
      const first = await keys.subjectFor(taxCode);
      const again = await keys.subjectFor(` ${taxCode.toLowerCase().slice(0, 8)} ${taxCode.toLowerCase().slice(8)} `);
      assert.equal(again.subjectId, first.subjectId);
      assert.deepEqual(again.key, first.key);
      assert.equal(first.key.length, 32);
      assert.ok(first.key instanceof Uint8Array && !Buffer.isBuffer(first.key), 'a plain Uint8Array whatever the driver');
      assert.equal(await keys.findSubject(taxCode.toLowerCase()), first.subjectId);
    });

    it('gives concurrent first callers one subject', async () => {
      const taxCode = newTaxCode();
      const subjects = await Promise.all(Array.from({ length: 10 }, () => keys.subjectFor(taxCode)));
      assert.equal(new Set(subjects.map((subject) => subject.subjectId)).size, 1);
      assert.equal(new Set(subjects.map((subject) => Buffer.from(subject.key).toString('hex'))).size, 1);
      const [row] = await database.client.query<{ count: number }>('SELECT count(*)::integer AS count FROM mutuo_subject_keys WHERE subject_id = $1', [
        subjects[0]!.subjectId,
      ]);
      assert.equal(row?.count, 1);
    });

    it('finds and makes the subjects of many tax codes at once, recording their streams, concurrent callers sharing the ones they both ask for', async () => {
      const known = newTaxCode();
      const before = await keys.subjectFor(known);
      const shared = Array.from({ length: 5 }, () => newTaxCode());
      const fresh = newTaxCode();
      const ask = (taxCodes: readonly string[], streamId: string) => keys.subjectsSealing(taxCodes.map((taxCode) => ({ taxCode, streamId })));
      // Each caller asks again for what another made meanwhile, as the vault does.
      const settled = async (taxCodes: readonly string[], streamId: string) => {
        const found = new Map(await ask(taxCodes, streamId));
        const missing = taxCodes.filter((taxCode) => !found.has(taxCode));
        for (const [taxCode, subject] of await ask(missing, streamId)) found.set(taxCode, subject);
        return found;
      };
      const [a, b] = await Promise.all([
        settled([known, ...shared, fresh, shared[0]!.toLowerCase()], 'application-a'),
        settled([...shared].reverse(), 'application-b'),
      ]);
      assert.equal(a.get(known)!.subjectId, before.subjectId);
      assert.deepEqual(a.get(known)!.key, before.key);
      for (const taxCode of shared) {
        assert.equal(a.get(taxCode)!.subjectId, b.get(taxCode)!.subjectId, 'one subject per person, whoever made it');
        assert.deepEqual(a.get(taxCode)!.key, b.get(taxCode)!.key);
        assert.deepEqual(
          (await keys.streamsOf(a.get(taxCode)!.subjectId)).map((stream) => stream.streamId),
          ['application-a', 'application-b'],
        );
      }
      assert.equal(a.get(shared[0]!.toLowerCase())!.subjectId, a.get(shared[0]!)!.subjectId, 'as given, in any case');
      assert.equal(new Set([...a.values()].map((subject) => subject.subjectId)).size, 7);
      assert.deepEqual(
        (await keys.streamsOf(a.get(fresh)!.subjectId)).map((stream) => stream.streamId),
        ['application-a'],
      );
      assert.equal((await keys.subjectsSealing([])).size, 0);
    });

    it('seals for a new subject where the one found is being erased, and records nothing for the erased one', async () => {
      const taxCode = newTaxCode();
      const erased = (await keys.subjectFor(taxCode)).subjectId;
      // Held by an erasure: the request waits for it, then finds the subject gone.
      let release!: () => void;
      let locked!: () => void;
      const lockTaken = new Promise<void>((resolve) => (locked = resolve));
      const erasure = database.client.transaction(async (tx) => {
        await tx.query('SELECT 1 FROM mutuo_subject_keys WHERE subject_id = $1 FOR UPDATE', [erased]);
        locked();
        await new Promise<void>((resolve) => (release = resolve));
        await keys.destroy(tx, erased);
      });
      await lockTaken;
      const asked = keys.subjectsSealing([{ taxCode, streamId: 'application-x' }]);
      setTimeout(() => release(), 50);
      await erasure;
      // Made in the same statement once the erasure freed the tax code, or on asking again.
      const subject = (await asked).get(taxCode) ?? (await keys.subjectsSealing([{ taxCode, streamId: 'application-x' }])).get(taxCode)!;
      assert.notEqual(subject.subjectId, erased);
      assert.deepEqual(await keys.streamsOf(erased), []);
      assert.deepEqual(
        (await keys.streamsOf(subject.subjectId)).map((stream) => stream.streamId),
        ['application-x'],
      );
      assert.deepEqual((await keys.keysOf([subject.subjectId])).get(subject.subjectId), subject.key);
    });

    it('gives different tax codes different subjects and keys', async () => {
      const [a, b] = await Promise.all([keys.subjectFor(newTaxCode()), keys.subjectFor(newTaxCode())]);
      assert.notEqual(a!.subjectId, b!.subjectId);
      assert.notDeepEqual(a!.key, b!.key);
    });

    it('finds no subject for a tax code never seen', async () => {
      assert.equal(await keys.findSubject(newTaxCode()), undefined);
    });

    it('stores a digest of the tax code, never the tax code', async () => {
      const taxCode = newTaxCode();
      const { subjectId } = await keys.subjectFor(taxCode);
      const [row] = await database.client.query<{ tax_code_digest: string }>('SELECT tax_code_digest FROM mutuo_subject_keys WHERE subject_id = $1', [
        subjectId,
      ]);
      assert.match(row!.tax_code_digest, /^[0-9a-f]{64}$/);
      const everything = await database.client.query<{ text: string }>('SELECT row_to_json(k)::text AS text FROM mutuo_subject_keys k');
      for (const { text } of everything) assert.ok(!text.toUpperCase().includes(taxCode), 'no row holds the tax code');
      const otherSecret = sqlSubjectKeys(database.client, { digestSecret: 'another-secret' });
      assert.equal(await otherSecret.findSubject(taxCode), undefined, 'the digest depends on the secret');
    });

    it('reads the keys of several subjects in one call', async () => {
      const a = await keys.subjectFor(newTaxCode());
      const b = await keys.subjectFor(newTaxCode());
      const unknown = randomUUID();
      const found = await keys.keysOf([a.subjectId, b.subjectId, unknown, 'not-a-uuid']);
      assert.deepEqual([...found.keys()], [a.subjectId, b.subjectId, unknown, 'not-a-uuid']);
      assert.deepEqual(found.get(a.subjectId), a.key);
      assert.deepEqual(found.get(b.subjectId), b.key);
      assert.equal(found.get(unknown), undefined);
      assert.equal(found.get('not-a-uuid'), undefined);
      assert.equal((await keys.keysOf([])).size, 0);
    });

    it('records the streams of a subject once each', async () => {
      const { subjectId } = await keys.subjectFor(newTaxCode());
      const before = Date.now();
      assert.equal(await keys.recordStream(subjectId, 'application-b'), true);
      assert.equal(await keys.recordStream(subjectId, 'application-a'), true);
      assert.equal(await keys.recordStream(subjectId, 'application-b'), true);
      const streams = await keys.streamsOf(subjectId);
      assert.deepEqual(
        streams.map((stream) => stream.streamId),
        ['application-a', 'application-b'],
      );
      // The database's clock, which may differ from this process's by a little.
      for (const { recordedAt } of streams) assert.ok(Math.abs(recordedAt.getTime() - before) < 60_000);
      assert.deepEqual(await keys.streamsOf(randomUUID()), []);
      assert.equal(await keys.recordStream(randomUUID(), 'application-c'), false, 'no such subject');
    });

    it('destroys a key with the erasure event, once', async () => {
      const taxCode = newTaxCode();
      const { subjectId } = await keys.subjectFor(taxCode);
      await keys.recordStream(subjectId, 'application-x');
      const erasure = sampleEvent('PersonalDataErased', { subjectId, streams: ['application-x'], erasedAt: new Date().toISOString() });
      const destroyed = await database.client.transaction(async (tx) => {
        const answer = await keys.destroy(tx, subjectId);
        await insertEvents(tx, dataSubjectStreamId(subjectId), [erasure], 'no_stream', 0);
        return answer;
      });
      assert.equal(destroyed, true);
      assert.equal((await keys.keysOf([subjectId])).get(subjectId), undefined);
      assert.equal(await keys.findSubject(taxCode), undefined);
      assert.deepEqual(
        (await keys.streamsOf(subjectId)).map((stream) => stream.streamId),
        ['application-x'],
        'where the data was stays known',
      );
      assert.equal(await keys.recordStream(subjectId, 'application-y'), false, 'an erased subject takes no new stream');
      const [row] = await database.client.query<{ data_key: unknown; tax_code_digest: unknown; erased: boolean }>(
        'SELECT data_key, tax_code_digest, erased_at IS NOT NULL AS erased FROM mutuo_subject_keys WHERE subject_id = $1',
        [subjectId],
      );
      assert.deepEqual(row, { data_key: null, tax_code_digest: null, erased: true });
      assert.equal(await database.client.transaction((tx) => keys.destroy(tx, subjectId)), false);
      assert.equal(await database.client.transaction((tx) => keys.destroy(tx, randomUUID())), false);
    });

    it('gives a person who returns after erasure a new subject and key', async () => {
      const taxCode = newTaxCode();
      const before = await keys.subjectFor(taxCode);
      await database.client.transaction((tx) => keys.destroy(tx, before.subjectId));
      const after = await keys.subjectFor(taxCode);
      assert.notEqual(after.subjectId, before.subjectId);
      assert.notDeepEqual(after.key, before.key);
      assert.equal((await keys.keysOf([before.subjectId])).get(before.subjectId), undefined);
    });

    it('keeps the key when the erasure rolls back', async () => {
      const taxCode = newTaxCode();
      const { subjectId, key } = await keys.subjectFor(taxCode);
      await assert.rejects(
        database.client.transaction(async (tx) => {
          assert.equal(await keys.destroy(tx, subjectId), true);
          throw new Error('the erasure event was refused');
        }),
        /refused/,
      );
      assert.deepEqual((await keys.keysOf([subjectId])).get(subjectId), key);
      assert.equal(await keys.findSubject(taxCode), subjectId);
    });
  });

  describe(`personal data vault: ${adapter}`, () => {
    let database: TestDatabase;
    /** The log as stored: what is written is what the test hands it, sealed or not. */
    let store: {
      appendToStream(streamId: string, events: readonly NewEvent[], expected: 'any' | 'no_stream'): Promise<unknown>;
      readStream(streamId: string): Promise<StoredEvent[]>;
    };
    let vault: PersonalDataVault;
    let streamCounter = 0;
    const newStream = () => `privacy-${Date.now()}-${++streamCounter}`;

    before(async () => {
      database = await openDatabase();
      const { client } = database;
      store = {
        appendToStream: async (streamId, events, expected) =>
          assert.ok(await insertEvents(client, streamId, events, expected, 0), `${streamId} is not ${expected}`),
        readStream: (streamId) => selectStream(client, streamId),
      };
      vault = createPersonalDataVault({ keys: sqlSubjectKeys(database.client, { digestSecret }), definitions: testCatalog.definitions });
    });
    after(() => database.dispose());

    async function sealAndAppend(streamId: string, events: readonly NewEvent[]): Promise<NewEvent[]> {
      for (const event of events) testCatalog.check(event.type, event.data);
      const sealed = await vault.seal(streamId, events);
      await store.appendToStream(streamId, sealed, 'any');
      return sealed;
    }

    it('reveals what it sealed', async () => {
      const stream = newStream();
      const events = [loanRequested(newPerson(), 'call after 6 pm'), loanApproved(), loanRequested(newPerson())];
      await sealAndAppend(stream, events);
      const revealed = await vault.reveal(await store.readStream(stream));
      assert.deepEqual(sameEvents(revealed), asWritten(events));
      for (const event of revealed) testCatalog.decode(event.type, event.schemaVersion, event.data);
    });

    it('stores no personal string', async () => {
      const stream = newStream();
      const person = newPerson();
      await sealAndAppend(stream, [loanRequested(person, 'call after 6 pm')]);
      const rows = await database.client.query<{ text: string }>('SELECT data::text AS text FROM mutuo_events WHERE stream_id = $1', [stream]);
      assert.equal(rows.length, 1);
      for (const plain of [...Object.values(person), 'call after 6 pm']) {
        assert.ok(!rows[0]!.text.toLowerCase().includes(plain.toLowerCase()), `${plain} is stored in clear`);
      }
      assert.match(rows[0]!.text, /"amountCents": ?20000000/, 'what is not personal stays readable');
    });

    it('seals only the personal fields, leaves absent ones absent and passes other events through', async () => {
      const stream = newStream();
      const requested = loanRequested(newPerson());
      const approved = loanApproved();
      const [sealedRequest, sealedApproval] = await vault.seal(stream, [requested, approved]);
      assert.equal(sealedApproval, approved, 'the same object');
      const data = sealedRequest!.data as Record<string, unknown>;
      assert.ok(isSealed(data.applicant));
      assert.equal('contactNote' in data, false);
      assert.equal(data.amountCents, 20_000_000);
      assert.equal(typeof data.requestId, 'string');
      assert.notEqual(sealedRequest, requested);
      assert.ok(!isSealed((requested.data as Record<string, unknown>).applicant), 'the input is not changed');
    });

    it('records the stream for the subject', async () => {
      const stream = newStream();
      const person = newPerson();
      const [sealed] = await vault.seal(stream, [loanRequested(person)]);
      const subjectId = vault.subjectOf(sealed!.data);
      assert.equal(subjectId, await vault.keys.findSubject(person.taxCode));
      assert.deepEqual(
        (await vault.keys.streamsOf(subjectId!)).map((recorded) => recorded.streamId),
        [stream],
      );
      assert.equal(vault.subjectOf(loanApproved().data), undefined);
    });

    it('seals for a new subject when the one it found is erased before the stream is recorded', async () => {
      const person = newPerson();
      const { subjectId: erased } = await vault.keys.subjectFor(person.taxCode);
      const erasedSubject = erased;
      let first = true;
      const racing: SubjectKeys = {
        ...vault.keys,
        within: () => racing,
        subjectsSealing: async (requests) => {
          if (first) {
            // Erased between the vault's look-up and its recording of the stream, as by a concurrent erasure.
            first = false;
            await database.client.transaction((tx) => vault.keys.destroy(tx, erasedSubject));
          }
          return vault.keys.subjectsSealing(requests);
        },
      };
      const racingVault = createPersonalDataVault({ keys: racing, definitions: testCatalog.definitions });
      const event = loanRequested(person);
      const [sealed] = await racingVault.seal(newStream(), [event]);
      const subjectId = racingVault.subjectOf(sealed!.data);
      assert.notEqual(subjectId, erased);
      assert.equal(subjectId, await vault.keys.findSubject(person.taxCode));
      const [revealed] = await vault.reveal([{ ...sealed!, schemaVersion: 1 }]);
      assert.deepEqual(revealed!.data, event.data, 'readable: sealed with a key that is held');
    });

    it('reads erased values once the key is destroyed, and keeps what is not personal', async () => {
      const stream = newStream();
      const erasedPerson = newPerson();
      const keptPerson = newPerson();
      const events = [loanRequested(erasedPerson, 'call after 6 pm'), loanApproved(), loanRequested(keptPerson)];
      await sealAndAppend(stream, events);
      const stored = await store.readStream(stream);
      const subjectId = vault.subjectOf(stored[0]!.data)!;
      assert.equal(await database.client.transaction((tx) => vault.keys.destroy(tx, subjectId)), true);

      const revealed = await vault.reveal(stored);
      const erasedData = revealed[0]!.data as Record<string, unknown>;
      const original = events[0]!.data as Record<string, unknown>;
      assert.deepEqual(erasedData, {
        requestId: original.requestId,
        applicant: { firstName: '(erased)', lastName: '(erased)', taxCode: '(erased)', email: '(erased)' },
        contactNote: '(erased)',
        amountCents: 20_000_000,
      });
      assert.ok(Value.Check(LoanRequested.schema, erasedData), 'an erased event still passes its schema');
      assert.equal(revealed[1], stored[1], 'an event without sealed fields is the same object');
      assert.deepEqual(revealed[2]!.data, events[2]!.data, "another person's data is still there");
      assert.ok(isSealed((stored[0]!.data as Record<string, unknown>).applicant), 'the stored events are not changed');
    });

    it('reads a sealed field of an undeclared type or version as null after erasure', async () => {
      const person = newPerson();
      const [sealed] = await vault.seal(newStream(), [loanRequested(person)]);
      const subjectId = vault.subjectOf(sealed!.data)!;
      await database.client.transaction((tx) => vault.keys.destroy(tx, subjectId));
      const data = sealed!.data as Record<string, unknown>;
      const [unknownType, unknownVersion] = await vault.reveal([
        { type: 'SomethingElse', schemaVersion: 1, data },
        { type: LoanRequested.type, schemaVersion: 7, data },
      ]);
      assert.equal((unknownType!.data as Record<string, unknown>).applicant, null);
      assert.equal((unknownVersion!.data as Record<string, unknown>).applicant, null);
    });

    it('reveals plain data written before sealing existed as it is', async () => {
      const stream = newStream();
      const plain = loanRequested(newPerson());
      await store.appendToStream(stream, [plain], 'no_stream');
      const stored = await store.readStream(stream);
      const revealed = await vault.reveal(stored);
      assert.equal(revealed[0], stored[0]);
      assert.deepEqual(revealed[0]!.data, plain.data);
    });

    it('reveals the events of many subjects with one key lookup', async () => {
      let lookups = 0;
      const counting: SubjectKeys = {
        ...vault.keys,
        within: () => counting,
        keysOf: (subjectIds) => {
          lookups++;
          return vault.keys.keysOf(subjectIds);
        },
      };
      const countingVault = createPersonalDataVault({ keys: counting, definitions: testCatalog.definitions });
      const events = Array.from({ length: 5 }, () => loanRequested(newPerson(), 'note'));
      const sealed = await countingVault.seal(newStream(), events);
      const revealed = await countingVault.reveal(sealed.map((event) => ({ ...event, schemaVersion: 1 })));
      assert.equal(lookups, 1);
      assert.deepEqual(
        revealed.map((event) => event.data),
        events.map((event) => event.data),
      );
      assert.equal((await countingVault.reveal([])).length, 0);
      assert.equal(lookups, 1, 'nothing sealed, nothing looked up');
    });

    describe('an event store that seals', () => {
      let sealing: SqlEventStore;
      before(() => {
        sealing = new SqlEventStore(database.client, { personalData: vault });
      });
      const subjectOfStored = async (streamId: string) => vault.subjectOf((await store.readStream(streamId))[0]!.data);

      it("seals on append and reveals on read, the person found or made in the append's statement", async () => {
        const person = newPerson();
        const first = newStream();
        const event = loanRequested(person);
        await sealing.appendToStream(first, [event], 'no_stream');
        assert.deepEqual((await sealing.readStream(first))[0]!.data, event.data);
        const raw = JSON.stringify((await store.readStream(first))[0]!.data);
        for (const datum of Object.values(person)) assert.ok(!raw.includes(datum), `${datum} is stored sealed`);
        const subjectId = await subjectOfStored(first);
        assert.equal(subjectId, await vault.keys.findSubject(person.taxCode));
        assert.deepEqual(
          (await vault.keys.streamsOf(subjectId!)).map((stream) => stream.streamId),
          [first],
        );
      });

      it("seals a returning person's events for the key they hold, however many append at once", async () => {
        const person = newPerson();
        const streams = Array.from({ length: 12 }, () => newStream());
        const events = streams.map(() => loanRequested(person));
        await Promise.all(streams.map((streamId, i) => sealing.appendToStream(streamId, [events[i]!], 'no_stream')));
        const again = newStream();
        const later = loanRequested(person);
        await sealing.appendToStream(again, [later, loanApproved()], 'no_stream');
        const subjects = new Set(await Promise.all([...streams, again].map(subjectOfStored)));
        assert.equal(subjects.size, 1, 'one person, one subject');
        for (const [i, streamId] of streams.entries()) assert.deepEqual((await sealing.readStream(streamId))[0]!.data, events[i]!.data);
        assert.deepEqual(
          (await sealing.readStream(again)).map((stored) => stored.data),
          [later.data, (await store.readStream(again))[1]!.data],
        );
        assert.deepEqual((await vault.keys.streamsOf([...subjects][0]!)).map((stream) => stream.streamId).sort(), [...streams, again].sort());
      });

      it('seals for a new subject once the person was erased, and the old events read as erased', async () => {
        const person = newPerson();
        const before = newStream();
        await sealing.appendToStream(before, [loanRequested(person)], 'no_stream');
        const erased = (await subjectOfStored(before))!;
        await database.client.transaction((tx) => vault.keys.destroy(tx, erased));
        const after = newStream();
        const event = loanRequested(person);
        await sealing.appendToStream(after, [event], 'no_stream');
        assert.notEqual(await subjectOfStored(after), erased);
        assert.deepEqual((await sealing.readStream(after))[0]!.data, event.data);
        assert.equal(((await sealing.readStream(before))[0]!.data as { applicant: { lastName: string } }).applicant.lastName, '(erased)');
      });

      it("refuses an append at the wrong version and writes nothing for it, the person's key kept", async () => {
        const person = newPerson();
        const streamId = newStream();
        await sealing.appendToStream(streamId, [loanRequested(person)], 'no_stream');
        await assert.rejects(sealing.appendToStream(streamId, [loanRequested(person)], 'no_stream'), WrongExpectedVersionError);
        assert.equal((await store.readStream(streamId)).length, 1);
        assert.equal(await vault.keys.findSubject(person.taxCode), await subjectOfStored(streamId));
      });
    });
  });
}
