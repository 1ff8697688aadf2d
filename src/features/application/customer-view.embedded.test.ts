import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { SqlEventStore } from '../../platform/eventstore/store.ts';
import type { NewEvent, StoredEvent } from '../../platform/eventstore/types.ts';
import type { Projection } from '../../platform/projections/projector.ts';
import { openTestPglite, type TestDatabase } from '../../platform/sql/testing.ts';
import { platformEventHistory } from '../../app/catalog.ts';
import { sqlSubjectKeys } from '../../privacy/subject-keys.ts';
import { createPersonalDataVault, type PersonalDataVault } from '../../privacy/vault.ts';
import { customerViewProjection, storedView, type CachedView } from './customer-view.ts';
import { applicationStreamId } from './events.ts';
import { approved, event, hours, incomeApproved, later, readLog, rejected, submitted, withdrawn } from './read-models.contract.ts';

const repository = fileURLToPath(new URL('../../../', import.meta.url));
const feature = 'src/features/application';

/** Fields of the decider's state, renamed: the application's whole file, and the rate lock in it. */
const renames: readonly (readonly [from: string, to: string])[] = [
  ['file', 'dossier'],
  ['rateLock', 'lockOnFile'],
];

const run = promisify(execFile);

/** What names the decider's state: the modules that use it are those the rename reaches. */
const usesTheState = /\b(applicationDecider|ApplicationState|ApplicationFile)\b/;
const testModule = /(\.test|\.contract|\.fixture|(^|\/)testing)\.ts$/;

/**
 * A copy of the sources in which the decider's state has its fields renamed as an editor's
 * rename would: each name, as a whole word, in every production module that uses the state
 * (the decider, and whatever replays it or reads it). The copy must type-check, so the
 * rename is a complete one. Answers the copy's folder and the modules the rename changed.
 */
async function sourcesWithStateRenamed(root: string): Promise<{ readonly root: string; readonly changed: readonly string[] }> {
  await cp(join(repository, 'src'), join(root, 'src'), { recursive: true });
  await cp(join(repository, 'package.json'), join(root, 'package.json'));
  await symlink(join(repository, 'node_modules'), join(root, 'node_modules'), 'dir');
  const changed: string[] = [];
  for (const name of await readdir(join(root, 'src'), { recursive: true })) {
    if (!name.endsWith('.ts') || testModule.test(name)) continue;
    const path = join(root, 'src', name);
    const source = await readFile(path, 'utf8');
    if (!usesTheState.test(source)) continue;
    const renamed = renames.reduce((text, [from, to]) => text.replaceAll(new RegExp(`\\b${from}\\b`, 'g'), to), source);
    if (renamed === source) continue;
    await writeFile(path, renamed);
    changed.push(join('src', name));
  }
  await writeFile(
    join(root, 'tsconfig.json'),
    JSON.stringify({
      extends: join(repository, 'tsconfig.json'),
      include: ['src'],
      exclude: ['src/**/*.test.ts', 'src/**/*.contract.ts', 'src/**/*.fixture.ts', 'src/**/testing.ts'],
    }),
  );
  await run(join(repository, 'node_modules/.bin/tsc'), ['--noEmit', '-p', join(root, 'tsconfig.json')]);
  return { root, changed };
}

/**
 * The modules of the application feature that `entry` reaches through its imports (type
 * imports included), as paths from the repository. Modules of other layers and features
 * are not followed: the decider's state is the application feature's own.
 */
async function featureModulesImportedBy(entry: string): Promise<Set<string>> {
  const reached = new Set<string>();
  const pending = [join(repository, entry)];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    const name = relative(repository, path);
    if (reached.has(name) || !name.startsWith(`${feature}/`)) continue;
    reached.add(name);
    const source = await readFile(path, 'utf8');
    for (const [, specifier] of source.matchAll(/(?:import|export)[^'"]*?from\s*'(\.[^']+)'/g)) pending.push(join(dirname(path), specifier!));
  }
  return reached;
}

describe('the customer view owns its document', () => {
  let database: TestDatabase;
  let store: SqlEventStore;
  let vault: PersonalDataVault;
  let copy: string | undefined;
  let renamed: { readonly root: string; readonly changed: readonly string[] };
  const ids = { locked: randomUUID(), rejected: randomUUID(), withdrawn: randomUUID(), submitted: randomUUID() };
  const at = '2026-03-02T09:00:00.000Z';
  const applicant = (lastName: string) => ({ firstName: 'Giulia', lastName, region: 'Lombardia', amountCents: 20_000_000, submittedAt: at });
  const locked = (annualRate: string, lockedAt: string) =>
    event('InterestRateLocked', { annualRate, lockDays: 30, lockedAt, expiresAt: later(lockedAt, hours(24 * 30)) }, 2);

  /** Projects the events appended after `position` with `projection`, in one batch; answers the views it made for the hot copy. */
  async function project(projection: Projection<ReadonlyMap<string, CachedView>>, events: readonly StoredEvent[], table = 'rm_applications') {
    return database.client.transaction((tx) => projection.apply(tx, events, { rm_applications: table }, false));
  }
  const append = (id: string, events: NewEvent[], expected: number | 'no_stream') => store.appendToStream(applicationStreamId(id), events, expected);

  before(async () => {
    database = await openTestPglite();
    const digestSecret = 'the customer view document test: a secret of at least 32 characters';
    vault = createPersonalDataVault({ keys: sqlSubjectKeys(database.client, { digestSecret }), definitions: platformEventHistory });
    store = new SqlEventStore(database.client, { personalData: vault });
    await append(ids.locked, [submitted(ids.locked, applicant('Rossi')), incomeApproved(later(at, hours(1))), locked('3.1', later(at, hours(2)))], 'no_stream');
    const lapsed = event(
      'InterestRateLockExpired',
      { annualRate: '2.95', lockedAt: later(at, hours(1)), expiresAt: later(at, hours(5)), expiredAt: later(at, hours(6)) },
      2,
    );
    await append(
      ids.rejected,
      [submitted(ids.rejected, applicant('Bianchi')), locked('2.95', later(at, hours(1))), lapsed, rejected(later(at, hours(7)))],
      'no_stream',
    );
    await append(ids.withdrawn, [submitted(ids.withdrawn, applicant('Verdi')), withdrawn(later(at, hours(3)))], 'no_stream');
    await append(ids.submitted, [submitted(ids.submitted, applicant('Neri'))], 'no_stream');
    await project(customerViewProjection(undefined, vault), await readLog(store));
    copy = await mkdtemp(join(tmpdir(), 'mutuo-renamed-state-'));
    renamed = await sourcesWithStateRenamed(copy);
  });
  after(async () => {
    await database.dispose();
    if (copy) await rm(copy, { recursive: true, force: true });
  });

  it('imports nothing of the decider, nor anything that reads its state: the projection, its document and the query that reads it', async () => {
    const reached = await featureModulesImportedBy(`${feature}/customer-view.ts`);
    assert.ok(reached.has(`${feature}/application-events.ts`), 'the walk follows the imports');
    for (const name of reached) {
      const named = usesTheState.exec(await readFile(join(repository, name), 'utf8'))?.[0];
      assert.equal(named, undefined, `${name} names ${named} (reached from the customer view: ${[...reached].join(', ')})`);
    }
  });

  it("serves the rows it stored, and goes on folding them, after the decider's state has its fields renamed", async () => {
    assert.ok(renamed.changed.includes(`${feature}/decider.ts`), `the rename reached the decider (changed: ${renamed.changed.join(', ')})`);
    const renamedView: typeof import('./customer-view.ts') = await import(pathToFileURL(join(renamed.root, feature, 'customer-view.ts')).href);

    // The rows stored by the code before the rename, read by the code after it.
    for (const id of Object.values(ids)) {
      const before = await storedView(database.client, vault, id);
      assert.ok(before, id);
      assert.deepEqual(await renamedView.storedView(database.client, vault, id), before);
    }

    // The next events, folded onto those rows by the renamed code, and onto a copy of them by the code before.
    await database.client.exec(
      'CREATE TABLE rm_applications_before_rename (LIKE rm_applications INCLUDING ALL); INSERT INTO rm_applications_before_rename SELECT * FROM rm_applications',
    );
    const position = (await readLog(store)).at(-1)!.position;
    const changed = event(
      'InterestRateChanged',
      { annualRate: '2.875', previousAnnualRate: '3.1', reason: 'a loyal customer', changedAt: later(at, hours(30)) },
      2,
    );
    await append(ids.locked, [changed, approved(later(at, hours(48)))], 3);
    await append(ids.submitted, [incomeApproved(later(at, hours(30))), locked('3.25', later(at, hours(31)))], 1);
    const next = await readLog(store, position);
    const afterRename = await project(renamedView.customerViewProjection(undefined, vault), next);
    const beforeRename = await project(customerViewProjection(undefined, vault), next, 'rm_applications_before_rename');
    assert.deepEqual(new Map(afterRename), new Map(beforeRename));
    assert.equal(afterRename.size, 2);
    const approvedView = JSON.parse(afterRename.get(ids.locked)!.body) as { status: string; rate: { annualRate: number; lockedAt?: string } };
    assert.equal(approvedView.status, 'approved');
    assert.equal(approvedView.rate.annualRate, 2.875);
    assert.ok(approvedView.rate.lockedAt, 'the lock stored before the rename is still there');
  });
});
