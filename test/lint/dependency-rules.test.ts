import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// The dependency rules (.dependency-cruiser.mjs) run on two small trees of the target layout:
// a clean one, which breaks none, and the same with one file for each way of breaking them.
// A rule that stops firing, or fires where it should not, fails here.

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = join(root, 'test/lint/fixtures');
const depcruise = join(root, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs');

interface Violation {
  readonly rule: { readonly name: string };
  readonly from: string;
  readonly to: string;
}

interface CruiseSummary {
  readonly violations: readonly Violation[];
  readonly totalCruised: number;
  readonly ruleSetUsed: { readonly forbidden: readonly { readonly name: string }[] };
}

function cruise(tree: string): CruiseSummary {
  const run = spawnSync(process.execPath, [depcruise, 'src', '--config', join(root, '.dependency-cruiser.mjs'), '--output-type', 'json'], {
    cwd: tree,
    encoding: 'utf8',
  });
  // The exit code counts the violations; the JSON on stdout is the answer either way.
  assert.ok(run.stdout.startsWith('{'), `dependency-cruiser gave no result: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { summary: CruiseSummary }).summary;
}

const listed = (violations: readonly Violation[]): string[] => violations.map(({ rule, from, to }) => `${rule.name}: ${from} → ${to}`).sort();

describe('the dependency rules', () => {
  const brokenTree = mkdtempSync(join(tmpdir(), 'mutuo-dependency-rules-'));
  let clean: CruiseSummary;
  let broken: CruiseSummary;
  before(() => {
    cpSync(join(fixtures, 'clean'), brokenTree, { recursive: true });
    cpSync(join(fixtures, 'violations'), brokenTree, { recursive: true });
    clean = cruise(join(fixtures, 'clean'));
    broken = cruise(brokenTree);
  });
  after(() => rmSync(brokenTree, { recursive: true, force: true }));

  it('find nothing in a tree that follows the layout, tests, test helpers and type-only imports included', () => {
    assert.ok(clean.totalCruised >= 25, `only ${clean.totalCruised} modules cruised`);
    assert.deepEqual(listed(clean.violations), []);
  });

  it('find each violation added to it, and only those', () => {
    assert.deepEqual(
      listed(broken.violations),
      [
        'domain-is-pure: src/domain/rate.ts → src/platform/sql/client.ts',
        'feature-through-its-index: src/features/scoring/limits.ts → src/features/loans/decider.ts',
        'no-cycle: src/features/scoring/a.ts → src/features/scoring/b.ts',
        'not-in-a-layer: src/shared/strings.ts → src/domain/money.ts',
        'nothing-imports-app: src/features/loans/settings.ts → src/app/config.ts',
        'platform-imports-domain-and-platform: src/platform/http/guard.ts → src/security/identity.ts',
        'platform-module-unknown-imported: src/features/scoring/cached.ts → src/platform/cache/cache.ts',
        'platform-module-unknown: src/platform/cache/cache.ts → src/platform/sql/client.ts',
        'platform-order-eventstore: src/platform/eventstore/tail.ts → src/platform/messaging/relay.ts',
        'platform-order-http: src/platform/http/openapi.ts → src/platform/schemas/routes.ts',
        'platform-order-projections: src/platform/projections/live.ts → src/platform/http/problem.ts',
        'platform-files-on-top: src/platform/sql/uses-service.ts → src/platform/service.ts',
        'platform-order-messaging: src/platform/messaging/lag.ts → src/platform/projections/projector.ts',
        'platform-order-runtime: src/platform/runtime/serve.ts → src/platform/http/problem.ts',
        'platform-order-sql: src/platform/sql/listen.ts → src/platform/eventstore/store.ts',
        'production-imports-no-test-helper: src/features/loans/seed.ts → src/domain/given-when-then.ts',
        'production-imports-no-test-helper: src/features/loans/seed.ts → src/features/loans/crash.fixture.ts',
        'production-imports-no-test-helper: src/features/loans/seed.ts → src/features/loans/decider.unit.test.ts',
        'production-imports-no-test-helper: src/features/loans/seed.ts → src/features/loans/loans.contract.ts',
        'production-imports-no-test-helper: src/features/loans/seed.ts → src/features/loans/testing.ts',
        'production-imports-no-test-helper: src/features/loans/seed.ts → src/platform/eventstore/conformance.ts',
        'resolvable: src/features/scoring/typo.ts → ./polcy.ts',
        'security-privacy-are-feature-agnostic: src/privacy/erasure.ts → src/features/loans/index.ts',
      ].sort(),
    );
  });

  it('have each rule of the configuration shown to fire above', () => {
    const fired = new Set(broken.violations.map((violation) => violation.rule.name));
    assert.deepEqual(
      broken.ruleSetUsed.forbidden.map((rule) => rule.name).filter((name) => !fired.has(name)),
      [],
      'a rule with no violation in test/lint/fixtures/violations: add one',
    );
  });
});
