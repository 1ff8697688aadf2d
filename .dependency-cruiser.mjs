// Dependency rules of the layout in shared/DESIGN.md, checked by `npm run lint:deps`:
//
//   src/domain/                pure: imports nothing of the project
//   src/platform/<module>/     imports only domain and lower platform modules (the order below)
//   src/security/, src/privacy/  feature-agnostic: may import domain and platform
//   src/features/<feature>/    reaches another feature only through its index.ts
//   src/app/                   composition roots, configuration, catalog, CLI: nothing imports it
//
// and: production code never imports test helpers, and there are no import cycles.
// The layers' rules hold for production code: a test beside the code may take a feature as
// its subject or build the whole platform through app/ (a platform's contract run on the
// application's read models, the route x role matrix). Cycles are refused in tests too.
// test/lint/dependency-rules.test.ts (npm run lint:rules-self-test) runs this file against small trees, one
// violation of each rule, so that a rule that stops firing fails the tests.

// The platform's modules, lowest first: a module may import those before it, never one
// after it. runtime is what every follower shares (its loop, sleep, backoff, lease); sql is
// the database clients and the migration runner; eventstore is the log on them (and the
// personal-data port it seals through); messaging (outbox relay, buses, consumers, jobs,
// dead letters) and projections (the projector, checkpoints, rebuilds) are the followers of
// the log; http is the server and the edge's toolkit (problem+json, the access guard, the
// hostile-text rule, read-your-writes, which waits on the projections' checkpoints);
// schemas is the schema registry (each event definition's JSON Schema and Avro, the
// Confluent-compatible registry, its routes and the Avro codec), above http because its
// routes answer in the registry's own error format, built from http's problems. The
// files beside the modules (service.ts: what a service is; logger.ts) sit above them all:
// they may import any module, and no module imports them. A folder of src/platform/ that
// is not in this list is refused until it is placed here.
const platformOrder = ['runtime', 'sql', 'eventstore', 'messaging', 'projections', 'http', 'schemas'];

const layers = ['domain', 'platform', 'security', 'privacy', 'features', 'app'];

// Test helpers: the tests themselves and what only they use.
const testHelper = ['\\.test\\.ts$', '\\.contract\\.ts$', '(^|/)testing\\.ts$', '\\.fixture\\.ts$', '(^|/)given-when-then\\.ts$', 'conformance\\.ts$'];

const any = (names) => `(${names.join('|')})`;

/** The modules of `layer` (a pattern of src/) that are production code. */
const production = (layer) => ({ path: `^src/${layer}`, pathNot: testHelper });

const platformOrderRules = platformOrder.slice(0, -1).map((module, index) => ({
  name: `platform-order-${module}`,
  comment: `src/platform/${module}/ is below ${platformOrder.slice(index + 1).join(', ')}: it may not import them.`,
  severity: 'error',
  from: production(`platform/${module}/`),
  to: { path: `^src/platform/${any(platformOrder.slice(index + 1))}/` },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'not-in-a-layer',
      comment: `Every module of src/ sits in one of the layers (${layers.join(', ')}), so that a rule covers it.`,
      severity: 'error',
      from: { path: `^src/(?!${any(layers)}/)` },
      to: {},
    },
    {
      name: 'domain-is-pure',
      comment: 'src/domain/ imports nothing of the project outside the domain.',
      severity: 'error',
      from: production('domain/'),
      to: { path: '^src/', pathNot: '^src/domain/' },
    },
    {
      name: 'platform-imports-domain-and-platform',
      comment: 'src/platform/ imports only the domain and the platform: not security, privacy, features or app.',
      severity: 'error',
      from: production('platform/'),
      to: { path: '^src/(security|privacy|features|app)/' },
    },
    {
      name: 'platform-module-unknown',
      comment: `A module of src/platform/ that is not in the platform's order (${platformOrder.join(' < ')}): place it in platformOrder.`,
      severity: 'error',
      from: { path: `^src/platform/(?!${any(platformOrder)}/|[^/]+\\.ts$)` },
      to: {},
    },
    {
      name: 'platform-module-unknown-imported',
      comment: `An import of a module of src/platform/ that is not in the platform's order (${platformOrder.join(' < ')}): place it in platformOrder.`,
      severity: 'error',
      from: {},
      to: { path: `^src/platform/(?!${any(platformOrder)}/|[^/]+\\.ts$)` },
    },
    ...platformOrderRules,
    {
      name: 'platform-files-on-top',
      comment: "The files beside the platform's modules (service.ts, logger.ts) sit above them: no module imports them.",
      severity: 'error',
      from: production('platform/[^/]+/'),
      to: { path: '^src/platform/[^/]+\\.ts$' },
    },
    {
      name: 'security-privacy-are-feature-agnostic',
      comment: 'src/security/ and src/privacy/ may import the domain and the platform, not a feature or app.',
      severity: 'error',
      from: production('(security|privacy)/'),
      to: { path: '^src/(features|app)/' },
    },
    {
      name: 'feature-through-its-index',
      comment: 'A feature reaches another feature only through its index.ts.',
      severity: 'error',
      from: production('features/([^/]+)/'),
      to: { path: '^src/features/[^/]+/', pathNot: ['^src/features/$1/', '^src/features/[^/]+/index\\.ts$'] },
    },
    {
      name: 'nothing-imports-app',
      comment: 'src/app/ is the composition roots, configuration, catalog and CLI: nothing outside it imports it.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/app/', ...testHelper] },
      to: { path: '^src/app/' },
    },
    {
      name: 'production-imports-no-test-helper',
      comment: `Production code never imports a test helper (${testHelper.join(', ')}).`,
      severity: 'error',
      from: production(''),
      to: { path: testHelper },
    },
    {
      name: 'no-cycle',
      comment: 'No import cycles, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'resolvable',
      comment: 'Every import resolves: an import the cruiser cannot follow would escape every rule above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // TypeScript 7 has no JS API, and dependency-cruiser 18 refuses TypeScript 7.0 (it
    // takes <7 or >=7.1): swc parses the sources instead, type-only imports included.
    parser: 'swc',
    doNotFollow: { path: 'node_modules' },
    // The sources import each other by their .ts names (allowImportingTsExtensions), and
    // packages through their `exports` under Node's conditions.
    enhancedResolveOptions: {
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.json'],
      conditionNames: ['import', 'node', 'default'],
      exportsFields: ['exports'],
      mainFields: ['module', 'main'],
    },
  },
};
