import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from '../../platform/sql/testing.ts';

const migration = new URL('./020_rates_as_decimal_percentages.sql', import.meta.url);
const applicationId = '0b9d6c1e-3f4a-4c2b-9a77-1d2e3f4a5b6c';
const otherApplicationId = '1c8e7d2f-4a5b-4d3c-8b66-2e3f4a5b6c7d';

/**
 * Migration 020: what services and read models kept of a rate in basis points becomes the
 * decimal percentage. Its SQL runs here over rows as the code before it wrote them, in the
 * schema it was written for (`openDatabase` migrates through 020).
 */
export function describeRatesMigration(adapter: string, openDatabase: () => Promise<TestDatabase>): void {
  describe(`migration 020 on ${adapter}: rates kept in state as decimal percentages`, () => {
    let database: TestDatabase;
    const one = async <Row>(sql: string, parameters: unknown[] = []) => (await database.client.query<Row>(sql, parameters))[0]!;

    before(async () => {
      database = await openDatabase();
      const file = { applicationId, loan: { amountCents: 20_000_000 }, updatedAt: '2026-11-01T00:00:00.000Z' };
      const locked = {
        ...file,
        annualRateBps: 345,
        rateLock: { annualRateBps: 345, lockedAt: '2026-11-01T00:00:00.000Z', expiresAt: '2026-12-01T00:00:00.000Z' },
      };
      await database.client.query(
        `INSERT INTO rm_applications (application_id, status, version, state, owner, position, updated_at)
         VALUES ($1, 'processing', 2, $2::json, 'dev:giulia', 1, now()), ($3, 'processing', 1, $4::json, 'dev:marco', 2, now())`,
        [applicationId, JSON.stringify({ status: 'processing', file: locked }), otherApplicationId, JSON.stringify({ status: 'processing', file })],
      );
      const band = (annualRateBps: number) => ({ maxTermYears: 40, maxLtvBps: 10_000, annualRateBps });
      await database.client.query(`INSERT INTO rm_rate_table (id, version, rate_table, published_at) VALUES (1, 3, $1::jsonb, now())`, [
        JSON.stringify({ publishedAt: '2026-11-01T00:00:00.000Z', bands: { fixed: [band(290), band(305)], variable: [band(0)] } }),
      ]);
      const facts = { applicationId, amountCents: 20_000_000, annualRateBps: 300, rateLock: { annualRateBps: 300, expiresAt: '2026-12-01T00:00:00.000Z' } };
      await database.client.query(`INSERT INTO mutuo_gateway_sagas (application_id, status, state) VALUES ($1, 'finalizing', $2::jsonb)`, [
        applicationId,
        JSON.stringify({ status: 'finalizing', facts }),
      ]);
      await database.client.query(
        `INSERT INTO mutuo_jobs (queue, key, payload, due_at) VALUES ('bank-gateway.book', $1, $2::jsonb, now()), ('scoring.credit-check', $1, $3::jsonb, now()),
         ('application.rate-lock-expiry', $1, $4::jsonb, now())`,
        [
          applicationId,
          JSON.stringify({ request: { type: 'RequestFinalization', amountCents: 20_000_000, annualRateBps: 5, termMonths: 300 } }),
          JSON.stringify({ inputs: { applicationId, annualRateBps: 2_000 } }),
          JSON.stringify({ expiresAt: '2026-12-01T00:00:00.000Z', annualRateBps: 1 }),
        ],
      );
      await database.client.transaction(async (tx) => tx.exec(await readFile(migration, 'utf8')));
    });
    after(() => database.dispose());

    it('rewrites the customer view: the rate on file and the lock', async () => {
      const { state } = await one<{ state: { file: Record<string, unknown> } }>('SELECT state FROM rm_applications WHERE application_id = $1', [applicationId]);
      assert.equal(state.file.annualRate, '3.45');
      assert.deepEqual(state.file.rateLock, { annualRate: '3.45', lockedAt: '2026-11-01T00:00:00.000Z', expiresAt: '2026-12-01T00:00:00.000Z' });
      assert.ok(!('annualRateBps' in state.file));
      const other = await one<{ state: { file: Record<string, unknown> } }>('SELECT state FROM rm_applications WHERE application_id = $1', [
        otherApplicationId,
      ]);
      assert.deepEqual(
        other.state.file,
        { applicationId, loan: { amountCents: 20_000_000 }, updatedAt: '2026-11-01T00:00:00.000Z' },
        'no rate, nothing to change',
      );
    });

    it('rewrites every band of the published table, in order', async () => {
      const { rate_table } = await one<{ rate_table: { bands: Record<string, unknown[]> } }>('SELECT rate_table FROM rm_rate_table');
      const band = (annualRate: string) => ({ maxTermYears: 40, maxLtvBps: 10_000, annualRate });
      assert.deepEqual(rate_table.bands, { fixed: [band('2.9'), band('3.05')], variable: [band('0')] });
    });

    it("rewrites the Bank Gateway's saga and the pending booking and credit check, and leaves other jobs alone", async () => {
      const { state } = await one<{ state: { facts: Record<string, unknown> } }>('SELECT state FROM mutuo_gateway_sagas');
      assert.equal(state.facts.annualRate, '3');
      assert.deepEqual(state.facts.rateLock, { annualRate: '3', expiresAt: '2026-12-01T00:00:00.000Z' });
      const payloads = new Map(
        (await database.client.query<{ queue: string; payload: Record<string, Record<string, unknown>> }>('SELECT queue, payload FROM mutuo_jobs')).map(
          (row) => [row.queue, row.payload],
        ),
      );
      assert.deepEqual(payloads.get('bank-gateway.book')?.request, {
        type: 'RequestFinalization',
        amountCents: 20_000_000,
        annualRate: '0.05',
        termMonths: 300,
      });
      assert.deepEqual(payloads.get('scoring.credit-check')?.inputs, { applicationId, annualRate: '20' });
      assert.deepEqual(payloads.get('application.rate-lock-expiry'), { expiresAt: '2026-12-01T00:00:00.000Z', annualRateBps: 1 });
    });

    it('changes nothing when it runs again', async () => {
      const snapshot = async () => JSON.stringify(await database.client.query('SELECT state::text FROM rm_applications ORDER BY application_id'));
      const before = await snapshot();
      await database.client.transaction(async (tx) => tx.exec(await readFile(migration, 'utf8')));
      assert.equal(await snapshot(), before);
    });
  });
}
