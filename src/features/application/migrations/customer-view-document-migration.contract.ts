import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { migrationFolders } from '../../../app/migrations.ts';
import { platformEventHistory } from '../../../app/catalog.ts';
import { SqlEventStore } from '../../../platform/eventstore/store.ts';
import type { StoredEvent } from '../../../platform/eventstore/types.ts';
import { migrate } from '../../../platform/sql/migrate.ts';
import type { TestDatabase } from '../../../platform/sql/testing.ts';
import { sqlSubjectKeys } from '../../../privacy/subject-keys.ts';
import { createPersonalDataVault, type PersonalDataVault } from '../../../privacy/vault.ts';
import { customerViewProjection, storedView } from '../customer-view.ts';
import { applicationStreamId } from '../events.ts';
import { approved, event, incomeApproved, later, hours, rejected, submitted, withdrawn } from '../read-models.contract.ts';

const at = '2026-02-02T09:00:00.000Z';
const loan = { amountCents: 20_000_000, termYears: 25, rateType: 'fixed', publicGuarantee: false };
const lock = { lockedAt: later(at, hours(2)), expiresAt: later(at, hours(2 + 24 * 30)) };

/**
 * Migration 021: the customer view's rows held the aggregate's state (`state`, as the
 * decider's evolve made it); they now hold the read model's document (`document`). The rows
 * are written here as the code before 021 wrote them, in the schema it wrote them in
 * (`openDatabase` migrates through 020), then migrated: each must be the very document the
 * projection folds from the same events, and answer as it did.
 */
export function describeCustomerViewDocumentMigration(adapter: string, openDatabase: () => Promise<TestDatabase>): void {
  describe(`migration 021 on ${adapter}: the customer view keeps its own document`, () => {
    let database: TestDatabase;
    let vault: PersonalDataVault;
    let log: StoredEvent[];
    const ids = { locked: randomUUID(), approved: randomUUID(), rejected: randomUUID(), withdrawn: randomUUID() };
    /** The answers of the rows as the code before 021 made them, read before the migration: the answers after it must be the same. */
    const answersBefore = new Map<string, string>();

    before(async () => {
      database = await openDatabase();
      vault = createPersonalDataVault({
        keys: sqlSubjectKeys(database.client, { digestSecret: 'the customer view migration: a secret of at least 32 characters' }),
        definitions: platformEventHistory,
      });
      const store = new SqlEventStore(database.client, { personalData: vault });
      const applicant = { firstName: 'Giulia', lastName: 'Bianchi', region: 'Lombardia', amountCents: loan.amountCents, submittedAt: at };
      const locked = () => event('InterestRateLocked', { annualRate: '3.1', lockDays: 30, ...lock }, 2);
      const streams: Record<keyof typeof ids, ReturnType<typeof event>[]> = {
        locked: [submitted(ids.locked, applicant), incomeApproved(later(at, hours(1))), locked()],
        approved: [
          submitted(ids.approved, applicant),
          locked(),
          event('InterestRateChanged', { annualRate: '2.875', previousAnnualRate: '3.1', reason: 'a loyal customer', changedAt: later(at, hours(3)) }, 2),
          event('InterestRateLockExpired', { annualRate: '2.875', ...lock, expiredAt: later(at, hours(4)) }, 2),
          approved(later(at, hours(5))),
        ],
        rejected: [submitted(ids.rejected, applicant), rejected(later(at, hours(6)))],
        withdrawn: [submitted(ids.withdrawn, applicant), withdrawn(later(at, hours(7)))],
      };
      // Each submission first: a reason is sealed for the subject whose data its stream already holds.
      for (const [name, [submission, ...rest]] of Object.entries(streams)) {
        const streamId = applicationStreamId(ids[name as keyof typeof ids]);
        await store.appendToStream(streamId, [submission!], 'no_stream');
        await store.appendToStream(streamId, rest, 1);
      }
      // Read stream by stream: the log's gap-safe read waits for whatever else this server has in flight.
      log = (await Promise.all(Object.values(ids).map((id) => store.readStream(applicationStreamId(id))))).flat().sort((a, b) => a.position - b.position);

      // The rows as the code before 021 stored them: the decider's state, its personal data sealed as the events stored it.
      const storedOf = (id: string, type: string) => log.find((stored) => stored.streamId === applicationStreamId(id) && stored.type === type)!;
      const file = (id: string, fields: object) => ({
        applicationId: id,
        applicant: storedOf(id, 'MortgageApplicationSubmitted').sealed!.applicant,
        income: { monthlyNetCents: 350_000, monthlyDebtsCents: 0, employment: 'permanent' },
        property: { valueCents: loan.amountCents * 2, region: 'Lombardia', energyClass: 'B' },
        loan,
        submittedAt: at,
        ...fields,
      });
      const contractNumber = (storedOf(ids.approved, 'ApplicationApproved').data as { contractNumber: string }).contractNumber;
      const states: Record<keyof typeof ids, object> = {
        locked: {
          status: 'processing',
          file: file(ids.locked, { verifiedMonthlyNetCents: 350_000, annualRate: '3.1', rateLock: { annualRate: '3.1', ...lock }, updatedAt: lock.lockedAt }),
        },
        approved: { status: 'approved', file: file(ids.approved, { annualRate: '2.875', updatedAt: later(at, hours(5)) }), contractNumber },
        rejected: {
          status: 'rejected',
          file: file(ids.rejected, { updatedAt: later(at, hours(6)) }),
          reason: storedOf(ids.rejected, 'ApplicationRejected').sealed!.reason,
        },
        withdrawn: { status: 'withdrawn', file: file(ids.withdrawn, { updatedAt: later(at, hours(7)) }), reason: null },
      };
      for (const [name, state] of Object.entries(states)) {
        const id = ids[name as keyof typeof ids];
        const stream = log.filter((stored) => stored.streamId === applicationStreamId(id));
        const { status, file } = state as { status: string; file: { updatedAt: string } };
        await database.client.query(
          `INSERT INTO rm_applications (application_id, status, version, state, owner, position, updated_at) VALUES ($1, $2, $3, $4::json, $5, $6, $7)`,
          [id, status, stream.at(-1)!.streamVersion, JSON.stringify(state), stream[0]!.metadata.actor, stream.at(-1)!.position, file.updatedAt],
        );
      }
      await database.client.exec('CREATE TABLE rm_applications__shadow (LIKE rm_applications INCLUDING ALL)');
      for (const id of Object.values(ids)) answersBefore.set(id, await answerBefore021(database, vault, id));

      await migrate(database.client, migrationFolders);
    });
    after(() => database.dispose());

    it('rewrites each row into the document the projection folds from the same events', async () => {
      await database.client.exec('CREATE TABLE rm_applications_refolded (LIKE rm_applications INCLUDING ALL)');
      await database.client.transaction((tx) => customerViewProjection(undefined, vault).apply(tx, log, { rm_applications: 'rm_applications_refolded' }, true));
      const documents = async (table: string) =>
        (await database.client.query<{ row: string }>(`SELECT to_jsonb(t)::text AS row FROM ${table} t ORDER BY application_id`)).map((row) =>
          JSON.parse(row.row),
        );
      const migrated = await documents('rm_applications');
      assert.equal(migrated.length, 4);
      assert.deepEqual(migrated, await documents('rm_applications_refolded'));
    });

    it('answers every application as it did before', async () => {
      for (const [id, before] of answersBefore) assert.equal((await storedView(database.client, vault, id))?.body, before, id);
      const locked = JSON.parse(answersBefore.get(ids.locked)!);
      assert.deepEqual(
        [locked.steps, locked.rate],
        [
          { submitted: true, incomeApproved: true, rateLocked: true, decided: false },
          { annualRate: 3.1, ...lockDates },
        ],
      );
    });

    it('drops the shadow a rebuild of the code before left, which held the state', async () => {
      assert.deepEqual(
        await database.client.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'rm_applications__shadow'`),
        [],
      );
    });
  });
}

const lockDates = { lockedAt: lock.lockedAt, lockExpiresAt: lock.expiresAt };

/**
 * What GET /api/applications/:id answered for a row before 021, written out as that code
 * made it (the state's fields, the personal data opened) so this test holds whatever the
 * decider's state becomes.
 */
async function answerBefore021(database: TestDatabase, vault: PersonalDataVault, id: string): Promise<string> {
  type File = {
    applicationId: string;
    applicant: { $sealed: string };
    loan: typeof loan;
    verifiedMonthlyNetCents?: number;
    annualRate?: string;
    rateLock?: { lockedAt: string; expiresAt: string };
    updatedAt: string;
  };
  type State = { status: string; file: File; contractNumber?: string; reason?: { $sealed: string } | null };
  const [row] = await database.client.query<{ state: State; version: number }>('SELECT state, version FROM rm_applications WHERE application_id = $1', [id]);
  const { status, file, contractNumber, reason } = row!.state;
  const [applicant, openedReason] = (await vault.open([file.applicant, reason ?? undefined])) as [{ firstName: string; lastName: string }, string | undefined];
  return JSON.stringify({
    applicationId: file.applicationId,
    status,
    version: row!.version,
    applicant: { firstName: applicant.firstName, lastName: applicant.lastName },
    loan: { amount: file.loan.amountCents / 100, termYears: file.loan.termYears, rateType: file.loan.rateType, publicGuarantee: file.loan.publicGuarantee },
    ...(file.annualRate !== undefined
      ? {
          rate: { annualRate: Number(file.annualRate), ...(file.rateLock ? { lockedAt: file.rateLock.lockedAt, lockExpiresAt: file.rateLock.expiresAt } : {}) },
        }
      : {}),
    steps: {
      submitted: true,
      incomeApproved: file.verifiedMonthlyNetCents !== undefined,
      rateLocked: file.rateLock !== undefined,
      decided: status !== 'processing',
    },
    ...(status === 'approved' ? { contractNumber } : {}),
    ...(status === 'rejected' || status === 'withdrawn' ? { reason: reason === null ? null : openedReason } : {}),
    updatedAt: file.updatedAt,
  });
}
