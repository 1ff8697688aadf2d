import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { openPlatform, type Platform } from '../../src/app/platform.ts';
import { loadConfig } from '../../src/app/config.ts';
import { computeCheckCharacter } from '../../src/domain/codice-fiscale.ts';
import { injectedBearer, type AuthHeaders, type DemoUserId } from '../../src/security/testing.ts';

/** A JSON schema as the OpenAPI document carries it: the parts read here. */
type Schema = {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly items?: Schema;
  readonly anyOf?: readonly Schema[];
  readonly enum?: readonly unknown[];
  readonly format?: string;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
};
type Parameter = { readonly in: 'path' | 'query' | 'header'; readonly name: string; readonly schema: Schema };
type Method = 'GET' | 'POST' | 'PUT';
/** One route of the platform, as its OpenAPI document describes it. */
type Operation = { readonly method: Method; readonly path: string; readonly parameters: readonly Parameter[]; readonly body: Schema | undefined };

/** A request as the tests send it over HTTP. */
type Call = {
  readonly method: Method;
  readonly path: string;
  readonly query?: readonly (readonly [string, string])[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly json?: unknown;
  readonly form?: FormData;
  /** Sent as it is, with its content type: what no JSON encoder would write. */
  readonly raw?: { readonly contentType: string; readonly text: string };
};
type Answer = { readonly status: number; readonly headers: Headers; readonly body: string };

/** Problem answers' field errors. */
type Problem = { code: string; detail: string; errors?: { path: string; message: string }[] };

/** The characters no text field takes, one of each kind. */
const hostileCharacters = ['\u0000', '\u0007', '\t', '\n', '\r', '\u001B', '\u007F', '\u0085', '\u202A', '\u202E', '\u2066', '\u2069', '\uD800', '\uDFFF'];

/** Whether the answer tells browsers and proxies to keep no copy of it. */
const storesNothing = (answer: Answer) => /(^|,)\s*no-store\s*(,|$)/.test(answer.headers.get('cache-control') ?? '');

/** Who is tried, in this order, for a route: nobody, then each role's demo user. */
const callers: readonly (DemoUserId | undefined)[] = [undefined, 'giulia', 'olivia', 'ugo', 'elena', 'ada'];

/** A tax code whose place code starts with `letter`, its check character computed. */
const taxCodeWithPlace = (letter: string) => {
  const first15 = `RSSMRA80A01${letter}501`;
  return first15 + computeCheckCharacter(first15);
};

describe('hostile input at the HTTP edge', () => {
  let dataDir: string;
  let platform: Platform;
  let baseUrl: string;
  let valid: { applicant: Record<string, unknown>; income: Record<string, unknown>; property: Record<string, unknown>; loan: Record<string, unknown> };
  const tokens = new Map<DemoUserId, AuthHeaders>();
  /** Applications submitted here, which the commands act on: the first is Giulia's. */
  const applications: string[] = [];
  let giuliasTaxCode: string;

  const as = async (user: DemoUserId | undefined): Promise<Record<string, string>> => {
    if (user === undefined) return {};
    if (!tokens.has(user)) tokens.set(user, await injectedBearer(platform.server, user));
    return { ...tokens.get(user)! };
  };

  /** Events a request caused: they carry its correlation id (the flow runs on meanwhile, with ids of its own). */
  const eventsCausedBy = async (correlationId: string) =>
    (await platform.client.query<{ n: number }>(`SELECT count(*)::int AS n FROM mutuo_events WHERE metadata->>'correlationId' = $1`, [correlationId]))[0]!.n;

  /**
   * Over HTTP, as a client would: an event stream's status and headers are read, then it is
   * let go. Hostile text in a path is sent percent-encoded (what a path can carry).
   */
  async function send(call: Call): Promise<Answer> {
    const url = new URL(call.path, baseUrl);
    for (const [name, value] of call.query ?? []) url.searchParams.append(name, value);
    const headers: Record<string, string> = { ...call.headers };
    let body: string | FormData | undefined;
    if (call.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(call.json);
    } else if (call.raw) {
      headers['content-type'] = call.raw.contentType;
      body = call.raw.text;
    } else if (call.form) {
      body = call.form;
    }
    const abort = new AbortController();
    const response = await fetch(url, { method: call.method, headers, body, signal: abort.signal });
    // A sign-out revokes the token it was sent with: its user takes a fresh one next time.
    if (call.path === '/auth/logout' && response.ok) {
      for (const [user, given] of tokens) if (given.authorization === headers.authorization) tokens.delete(user);
    }
    const streaming = response.headers.get('content-type')?.startsWith('text/event-stream') ?? false;
    const text = streaming ? '' : await response.text();
    abort.abort();
    return { status: response.status, headers: response.headers, body: text };
  }

  /** A path with its parameters filled in, each value percent-encoded. */
  const fill = (path: string, values: Readonly<Record<string, string>>) =>
    path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent((values[name] ?? 'x').replace(/[\uD800-\uDFFF]/gu, '\uFFFD')));

  /** The value of each path parameter that names something that exists. */
  const existing = (): Record<string, string> => ({ id: applications[0]!, taxCode: giuliasTaxCode, name: 'rates', kind: 'payslip' });

  async function submit(changes: (submission: typeof valid) => unknown = (submission) => submission, correlationId = `test-${randomUUID()}`): Promise<Answer> {
    return send({
      method: 'POST',
      path: '/api/applications',
      headers: { ...(await as('giulia')), 'x-correlation-id': correlationId },
      json: changes(structuredClone(valid)),
    });
  }

  /** A new application in processing, Giulia's. */
  async function submitted(): Promise<string> {
    const answer = await submit();
    assert.equal(answer.status, 201, answer.body);
    return (JSON.parse(answer.body) as { applicationId: string }).applicationId;
  }

  /** Asserts a 400 problem naming `path`, with nothing stored by the request. */
  async function assertRefused(answer: Answer, path: string, correlationId: string, what: string): Promise<Problem> {
    assert.equal(answer.status, 400, `${what}: ${answer.status} ${answer.body}`);
    // The schema registry answers in Confluent's error format (its clients' contract), the fields named as in a problem.
    const errorFormat = what.includes(' /registry/') ? /^application\/vnd\.schemaregistry\.v1\+json/ : /^application\/problem\+json/;
    assert.match(String(answer.headers.get('content-type')), errorFormat, what);
    const problem = JSON.parse(answer.body) as Problem;
    assert.ok(
      problem.errors?.some((error) => error.path === path),
      `${what}: expected an error naming ${path}, got ${answer.body}`,
    );
    assert.equal(await eventsCausedBy(correlationId), 0, `${what} was refused but stored something`);
    return problem;
  }

  /** Every route the platform serves, from its OpenAPI document (plus the two it leaves out of it). */
  async function servedOperations(): Promise<Operation[]> {
    const spec = JSON.parse((await send({ method: 'GET', path: '/docs/json' })).body) as {
      paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: Schema }> } }>>;
    };
    const operations = Object.entries(spec.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({
        method: method.toUpperCase() as Method,
        path,
        parameters: operation.parameters ?? [],
        body: operation.requestBody?.content['application/json']?.schema,
      })),
    );
    return [
      ...operations,
      { method: 'GET', path: '/health', parameters: [], body: undefined },
      { method: 'GET', path: '/metrics', parameters: [], body: undefined },
    ];
  }

  /**
   * Who may call the route: the first of nobody and each role whose request is not refused
   * with 401 or 403. The request is one that stores nothing: a read, or a body the
   * platform refuses once it has let the caller in.
   */
  async function callerOf(operation: Operation): Promise<DemoUserId | undefined> {
    for (const user of callers) {
      const answer = await send({
        method: operation.method,
        path: fill(operation.path, existing()),
        headers: await as(user),
        ...(operation.method === 'GET' ? {} : { json: { probe: 'A\u0000B' } }),
      });
      if (answer.status !== 401 && answer.status !== 403) return user;
    }
    assert.fail(`${operation.method} ${operation.path} lets no role in`);
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mutuo-hostile-'));
    const config = loadConfig({ MUTUO_DATA_DIR: dataDir, PORT: '0', RATE_LIMIT_PUBLIC_PER_MINUTE: '0', READ_WAIT_MS: '0', MORTGAGE_MIN_LOAN_EUROS: '40000' });
    platform = await openPlatform(config, false);
    baseUrl = await platform.server.listen({ port: 0, host: '127.0.0.1' });
    valid = JSON.parse(await readFile(new URL('../fixtures/submission.json', import.meta.url), 'utf8')) as typeof valid;
    giuliasTaxCode = valid.applicant.taxCode as string;
    applications.push(await submitted());
  });
  after(async () => {
    await platform.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  describe('text fields', () => {
    it('refuses a first name with a control character, a bidi override or an unpaired surrogate, naming applicant.firstName', async () => {
      for (const character of hostileCharacters) {
        const correlationId = `test-${randomUUID()}`;
        const answer = await submit((submission) => ({ ...submission, applicant: { ...submission.applicant, firstName: `A${character}B` } }), correlationId);
        await assertRefused(answer, 'applicant.firstName', correlationId, `firstName with U+${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
      }
    });

    it('answers a NUL in a note, a reason, the property type or the dead letters filter with a 400 naming it, never a 500', async () => {
      const id = await submitted();
      const cases: { user: DemoUserId; call: Call; path: string }[] = [
        {
          user: 'ugo',
          call: { method: 'POST', path: `/api/applications/${id}/income-approval`, json: { verifiedMonthlyNet: 3000, note: 'checked\u0000' } },
          path: 'note',
        },
        { user: 'olivia', call: { method: 'POST', path: `/api/applications/${id}/rate`, json: { annualRate: 3, reason: 'market\u0000' } }, path: 'reason' },
        { user: 'olivia', call: { method: 'POST', path: `/api/applications/${id}/withdrawal`, json: { reason: 'moved\u0000' } }, path: 'reason' },
        {
          user: 'olivia',
          call: { method: 'PUT', path: `/api/applications/${id}/property`, json: { value: 300000, region: 'Lombardia', type: 'flat\u0000' } },
          path: 'type',
        },
        { user: 'ada', call: { method: 'POST', path: `/api/applicants/${giuliasTaxCode}/legal-hold`, json: { reason: 'court\u0000order' } }, path: 'reason' },
        { user: 'olivia', call: { method: 'PUT', path: '/api/rates', json: { reason: 'new\u0000table' } }, path: 'reason' },
        { user: 'ada', call: { method: 'GET', path: '/api/dead-letters', query: [['consumer', 'documents\u0000']] }, path: 'querystring.consumer' },
        { user: 'olivia', call: { method: 'GET', path: '/api/applications', query: [['q', 'Bianchi\u0000']] }, path: 'querystring.q' },
      ];
      for (const { user, call, path } of cases) {
        const correlationId = `test-${randomUUID()}`;
        const answer = await send({ ...call, headers: { ...(await as(user)), 'x-correlation-id': correlationId } });
        await assertRefused(answer, path, correlationId, `${call.method} ${call.path}`);
      }
    });

    it('takes line feeds in notes and reasons, which are free text, and nowhere else', async () => {
      const id = await submitted();
      const approved = await send({
        method: 'POST',
        path: `/api/applications/${id}/income-approval`,
        headers: await as('ugo'),
        json: { verifiedMonthlyNet: 3000, note: 'payslips checked\nagainst the contract' },
      });
      assert.equal(approved.status, 200, approved.body);
      const events = JSON.parse((await send({ method: 'GET', path: `/api/applications/${id}/events`, headers: await as('ugo') })).body) as {
        type: string;
        data: { note?: string };
      }[];
      assert.equal(events.find((event) => event.type === 'IncomeApproved')?.data.note, 'payslips checked\nagainst the contract');
      // A carriage return is no line feed: it would let a note overwrite itself on a terminal.
      const correlationId = `test-${randomUUID()}`;
      const refused = await send({
        method: 'POST',
        path: `/api/applications/${id}/rate`,
        headers: { ...(await as('olivia')), 'x-correlation-id': correlationId },
        json: { annualRate: 3, reason: 'market\r\nupdate' },
      });
      await assertRefused(refused, 'reason', correlationId, 'a reason with a carriage return');
      const lastName = `test-${randomUUID()}`;
      await assertRefused(
        await submit((s) => ({ ...s, applicant: { ...s.applicant, lastName: 'Bianchi\nRossi' } }), lastName),
        'applicant.lastName',
        lastName,
        'a last name with a line feed',
      );
    });

    it('refuses a control character in a multipart text field, naming it', async () => {
      const form = new FormData();
      form.set('kind', 'payslip\u0000');
      form.set('file', new Blob(['%PDF-1.4\n%%EOF\n'], { type: 'application/pdf' }), 'payslip.pdf');
      const correlationId = `test-${randomUUID()}`;
      const answer = await send({
        method: 'POST',
        path: `/api/applications/${applications[0]}/documents`,
        headers: { ...(await as('olivia')), 'x-correlation-id': correlationId },
        form,
      });
      const problem = await assertRefused(answer, 'kind', correlationId, 'a document kind with a NUL');
      assert.match(problem.errors!.find((error) => error.path === 'kind')!.message, /control character/);
    });

    it('refuses a control character in a field name, or in a body sent as plain text', async () => {
      const correlationId = `test-${randomUUID()}`;
      const named = await send({
        method: 'POST',
        path: `/api/applications/${applications[0]}/withdrawal`,
        headers: { ...(await as('olivia')), 'x-correlation-id': correlationId },
        json: { 'reason\u202E': 'moved' },
      });
      assert.equal(named.status, 400, named.body);
      assert.doesNotMatch(named.body, /\u202E|\\u202e/i, 'the field name is not repeated back');
      const plain = await send({
        method: 'POST',
        path: '/api/simulations',
        raw: { contentType: 'text/plain', text: 'amount=1\u0000' },
      });
      assert.equal(plain.status, 415, plain.body);
      assert.equal(await eventsCausedBy(correlationId), 0);
    });
  });

  describe('time travel', () => {
    it('answers an asOf the database cannot hold with a 400, never a 500', async () => {
      const operator = await as('olivia');
      for (const asOf of [
        '-004714-01-01T00:00:00Z',
        '-271821-04-20T00:00:00Z',
        '+275760-09-13T00:00:00Z',
        '1 Jan 200000',
        '+099999-01-01T00:00:00Z',
        '0000-01-01T00:00:00Z',
        '300000-01-01',
      ]) {
        const answer = await send({ method: 'GET', path: `/api/applications/${applications[0]}/state`, query: [['asOf', asOf]], headers: operator });
        assert.equal(answer.status, 400, `asOf=${asOf}: ${answer.status} ${answer.body}`);
        assert.ok(
          (JSON.parse(answer.body) as Problem).errors?.some((error) => error.path === 'querystring.asOf'),
          answer.body,
        );
      }
      const now = await send({
        method: 'GET',
        path: `/api/applications/${applications[0]}/state`,
        query: [['asOf', new Date().toISOString()]],
        headers: operator,
      });
      assert.equal(now.status, 200, now.body);
    });
  });

  describe('applicant', () => {
    it('takes a bare email address only, and refuses display names, lists, quotes and spaces naming applicant.email', async () => {
      const refused = [
        'x<attacker@evil.example>',
        'Giulia <giulia@example.com>',
        'giulia@example.com <attacker@evil.example>',
        'giulia@example.com, attacker@evil.example',
        'giulia@example.com;attacker@evil.example',
        '"giulia"@example.com',
        '"giulia@example.com"<attacker@evil.example>',
        'giulia(comment)@example.com',
        'giulia@example.com\r\nBcc: attacker@evil.example',
        'giulia @example.com',
        'giulia@exa_mple.com',
        'giulia@-example.com',
        'giulia..bianchi@example.com',
        '.giulia@example.com',
        'giulia@example',
        `${'g'.repeat(65)}@example.com`,
      ];
      for (const email of refused) {
        const correlationId = `test-${randomUUID()}`;
        await assertRefused(
          await submit((s) => ({ ...s, applicant: { ...s.applicant, email } }), correlationId),
          'applicant.email',
          correlationId,
          JSON.stringify(email),
        );
      }
      for (const email of ['giulia.bianchi@example.com', 'G.Bianchi+mutui@Posta.Example.IT', "o'brien@example.co.uk", 'giulia_b-1@mail-1.example.com']) {
        const answer = await submit((s) => ({ ...s, applicant: { ...s.applicant, email } }));
        assert.equal(answer.status, 201, `${email}: ${answer.body}`);
      }
    });

    it('refuses a tax code whose place code is neither an Italian municipality (A–M) nor a foreign country (Z)', async () => {
      for (const letter of 'NOPQRSTUVWXY') {
        const correlationId = `test-${randomUUID()}`;
        const taxCode = taxCodeWithPlace(letter);
        const problem = await assertRefused(
          await submit((s) => ({ ...s, applicant: { ...s.applicant, taxCode } }), correlationId),
          'applicant.taxCode',
          correlationId,
          taxCode,
        );
        assert.match(problem.errors!.find((error) => error.path === 'applicant.taxCode')!.message, /place/);
      }
      for (const letter of 'ABHLMZ') {
        const answer = await submit((s) => ({ ...s, applicant: { ...s.applicant, taxCode: taxCodeWithPlace(letter), birthDate: undefined } }));
        assert.equal(answer.status, 201, `${taxCodeWithPlace(letter)}: ${answer.body}`);
      }
    });
  });

  describe('implausible loans', () => {
    it('refuses a loan below the configured minimum, naming loan.amount', async () => {
      for (const amount of [200, 39_999.99]) {
        const correlationId = `test-${randomUUID()}`;
        const problem = await assertRefused(
          await submit((s) => ({ ...s, loan: { ...s.loan, amount } }), correlationId),
          'loan.amount',
          correlationId,
          `a loan of ${amount} €`,
        );
        assert.match(problem.errors!.find((error) => error.path === 'loan.amount')!.message, /40000|40 000|40,000/);
      }
      assert.equal((await submit((s) => ({ ...s, loan: { ...s.loan, amount: 40_000 } }))).status, 201);
    });

    it('refuses a loan above the property value, even with a public guarantee, saying by how much', async () => {
      for (const publicGuarantee of [false, true]) {
        const correlationId = `test-${randomUUID()}`;
        const answer = await submit((s) => ({ ...s, loan: { ...s.loan, amount: 330_000, publicGuarantee } }), correlationId);
        assert.equal(answer.status, 422, answer.body);
        const problem = JSON.parse(answer.body) as Problem;
        assert.equal(problem.code, 'LOAN_TO_VALUE_EXCEEDED');
        assert.deepEqual(
          problem.errors?.map((error) => error.path),
          ['loan.amount'],
        );
        assert.match(problem.detail, /110\.00 % of the property value; at most (80|100) %/);
        assert.equal(await eventsCausedBy(correlationId), 0);
      }
    });
  });

  describe('every route', () => {
    it('keeps answers with personal data and every refusal out of caches; the public rates and simulations may be cached', async () => {
      for (const operation of await servedOperations()) {
        const user = await callerOf(operation);
        const answers = [
          await send({ method: operation.method, path: fill(operation.path, existing()), headers: await as(user) }),
          await send({ method: operation.method, path: fill(operation.path, existing()), query: [['probe', 'A\u0000B']], headers: await as(user) }),
        ];
        for (const answer of answers) {
          const route = `${operation.method} ${operation.path} → ${answer.status}`;
          if (user !== undefined || answer.status >= 400) assert.ok(storesNothing(answer), route);
        }
        if (user !== undefined) {
          const anonymous = await send({ method: operation.method, path: fill(operation.path, existing()) });
          assert.equal(anonymous.status, 401);
          assert.ok(storesNothing(anonymous), `${operation.method} ${operation.path} without a token`);
        }
      }
      assert.ok(storesNothing(await send({ method: 'GET', path: '/api/no-such-route' })));
      assert.equal((await send({ method: 'GET', path: '/api/rates' })).headers.get('cache-control'), null);
      const simulation = await send({ method: 'POST', path: '/api/simulations', json: { amount: 200_000, termYears: 25, annualRate: 3 } });
      assert.equal(simulation.status, 200);
      assert.equal(simulation.headers.get('cache-control'), null);
    });

    it('refuses a control character in every string field the OpenAPI document declares, and in any other, naming it', async () => {
      // A path or a query string carries well-formed text only: an unpaired surrogate arrives as U+FFFD.
      const inUrls = hostileCharacters.filter((character) => !/[\uD800-\uDFFF]/.test(character));
      let field = 0;
      const hostile = (characters = hostileCharacters) => `A${characters[field++ % characters.length]}B`;
      /** Every string in a body schema, by its path. */
      const stringsIn = (schema: Schema, path: string): string[] => {
        if (schema.type === 'string' || schema.anyOf?.every((branch) => branch.type === 'string')) return [path];
        if (schema.properties) return Object.entries(schema.properties).flatMap(([name, property]) => stringsIn(property, path ? `${path}.${name}` : name));
        if (schema.items) return stringsIn(schema.items, `${path}[0]`);
        return [];
      };
      const setAt = (path: string, value: string): unknown =>
        path
          .split(/\.|(?=\[)/)
          .reverse()
          .reduce<unknown>((inner, segment) => (segment === '[0]' ? [inner] : { [segment]: inner }), value);
      for (const operation of await servedOperations()) {
        const user = await callerOf(operation);
        const base = { method: operation.method, path: fill(operation.path, existing()) };
        const cases: { call: Call; path: string }[] = [{ call: { ...base, query: [['probe', hostile(inUrls)]] }, path: 'querystring.probe' }];
        if (operation.method !== 'GET') cases.push({ call: { ...base, json: { probe: hostile() } }, path: 'probe' });
        for (const parameter of operation.parameters) {
          if (stringsIn(parameter.schema, '').length === 0) continue;
          if (parameter.in === 'path')
            cases.push({
              call: { ...base, path: fill(operation.path, { ...existing(), [parameter.name]: hostile(inUrls) }) },
              path: `params.${parameter.name}`,
            });
          if (parameter.in === 'query') cases.push({ call: { ...base, query: [[parameter.name, hostile(inUrls)]] }, path: `querystring.${parameter.name}` });
          // A header carries bytes: a C1 control is what a header can smuggle.
          if (parameter.in === 'header') cases.push({ call: { ...base, headers: { [parameter.name]: 'A\u0085B' } }, path: `headers.${parameter.name}` });
        }
        for (const path of operation.body ? stringsIn(operation.body, '') : []) cases.push({ call: { ...base, json: setAt(path, hostile()) }, path });
        for (const { call, path } of cases) {
          const correlationId = `test-${randomUUID()}`;
          const answer = await send({ ...call, headers: { ...call.headers, ...(await as(user)), 'x-correlation-id': correlationId } });
          await assertRefused(answer, path, correlationId, `${operation.method} ${operation.path}, ${path}`);
        }
      }
    });

    it('answers every route fed hostile input with a 4xx and nothing stored, never a 5xx', async () => {
      const operations = await servedOperations();
      const user = new Map<Operation, DemoUserId | undefined>();
      for (const operation of operations) user.set(operation, await callerOf(operation));
      // What breaks a database (a NUL, an unpaired surrogate) comes up most; then the rest of the rule's refusals, and what an injection is made of.
      const hostileCharacter = fc.oneof(
        { weight: 2, arbitrary: fc.constantFrom('\u0000', '\uD800', '\uDFFF') },
        {
          weight: 3,
          arbitrary: fc.constantFrom(
            ...hostileCharacters,
            '\uFEFF',
            '\u2028',
            '\u0301',
            '\u{1F600}',
            '%',
            '_',
            '\\',
            "'",
            '"',
            '<',
            '>',
            '&',
            ';',
            '$1',
            '{',
            '\u00E8',
          ),
        },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x1f }).map((code) => String.fromCharCode(code)) },
      );
      /** Text with something hostile somewhere in it. */
      const taintedString = fc
        .tuple(fc.string({ maxLength: 8 }), hostileCharacter, fc.string({ maxLength: 8 }))
        .map(([before, character, after]) => before + character + after);
      const hostileString = fc.oneof(
        { weight: 3, arbitrary: taintedString },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            '',
            ' ',
            'null',
            'undefined',
            'NaN',
            '-1',
            '0',
            '1e400',
            '99999999999999999999999',
            '2026-02-30',
            '-004714-01-01',
            "' OR 1=1 --",
            'x'.repeat(5_000),
          ),
        },
      );
      const hostileValue = fc.oneof(
        { weight: 4, arbitrary: hostileString },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
        { weight: 1, arbitrary: fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, -0, 0.1 + 0.2, 1e-9, -1, 0, true, null, [], {}) },
      );
      /** JSON no encoder here writes: nested deeper than a call stack goes, a NUL escaped, a number past a double. */
      const rawJson = fc
        .constantFrom(
          `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
          `${'{"a":'.repeat(5_000)}"\\u0000"${'}'.repeat(5_000)}`,
          '{"amount":1e400}',
          '{"reason":"\\ud800"}',
          '{"__proto__":{"x":1}}',
          '{"a":1,"a":2}',
        )
        .map((text) => ({ raw: { contentType: 'application/json', text } }));
      /** What a field of this schema may be sent: mostly what the schema says, sometimes anything. */
      const valueFor = (schema: Schema): fc.Arbitrary<unknown> => fc.oneof({ weight: 4, arbitrary: plausible(schema) }, { weight: 1, arbitrary: hostileValue });
      const plausible = (schema: Schema): fc.Arbitrary<unknown> => {
        if (schema.enum) return fc.constantFrom(...schema.enum);
        if (schema.anyOf) return fc.oneof(...schema.anyOf.map(plausible));
        if (schema.properties) {
          const properties = Object.fromEntries(Object.entries(schema.properties).map(([name, property]) => [name, valueFor(property)]));
          return fc.record(properties, { requiredKeys: [...(schema.required ?? [])] });
        }
        if (schema.type === 'array') return fc.array(valueFor(schema.items ?? {}), { maxLength: 3 });
        if (schema.type === 'string' && schema.format === 'uuid') return fc.uuid();
        if (schema.type === 'string' && schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
        if (schema.type === 'string') return fc.oneof({ weight: 1, arbitrary: fc.string({ maxLength: 30 }) }, { weight: 2, arbitrary: taintedString });
        if (schema.type === 'integer') return fc.integer({ min: schema.minimum ?? -10, max: schema.maximum ?? 1_000_000 });
        if (schema.type === 'number')
          return fc.oneof(
            { weight: 3, arbitrary: fc.integer({ min: 1, max: 1_000_000 }) },
            { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
          );
        if (schema.type === 'boolean') return fc.boolean();
        return fc.jsonValue({ maxDepth: 2 });
      };
      /** A valid submission with one field, anywhere in it, replaced. */
      const nearMiss = (example: Record<string, Record<string, unknown>>) =>
        fc
          .constantFrom(...Object.entries(example).flatMap(([group, fields]) => Object.keys(fields).map((name) => [group, name] as const)))
          .chain(([group, name]) => hostileValue.map((value) => ({ ...example, [group]: { ...example[group], [name]: value } })));
      // Valid submissions too: they make applications in processing, which the other commands act on.
      const examples: Record<string, fc.Arbitrary<unknown>> = { 'POST /api/applications': fc.oneof(fc.constant(valid), nearMiss(valid)) };
      /** Names any route might read from a query string, a form or a body it does not declare. */
      const fieldName = fc.oneof(
        fc.constantFrom(
          'q',
          'taxCode',
          'status',
          'region',
          'page',
          'pageSize',
          'from',
          'to',
          'minPosition',
          'limit',
          'offset',
          'consumer',
          'asOf',
          'version',
          'reason',
          'amount',
          'termYears',
          'annualRate',
          'fixed',
          'variable',
          'kind',
          'file',
          'user',
          '__proto__',
          'constructor',
        ),
        hostileString,
      );
      const queryValue = fc.oneof(
        hostileString,
        fc.stringMatching(/^\d{1,20}$/),
        fc.constantFrom('2026-01', '0000-01', '9999-12', 'open', 'Lombardia', 'true'),
      );
      // What a header can carry: bytes, without the line breaks that would end it.
      const headerValue = fc.oneof(
        fc.constantFrom('"1"', '"2"', 'W/"1"', '*', '"999999999"', '"-1"', '"1", "2"', '1', '9223372036854775808', '000000000000000001', 'Bearer x', ''),
        fc.string({
          unit: fc
            .integer({ min: 0x20, max: 0xff })
            .filter((code) => code !== 0x7f)
            .map((code) => String.fromCharCode(code)),
          maxLength: 40,
        }),
      );
      // Mostly none, so that most requests get as far as the body.
      const headers = fc.oneof(
        { weight: 2, arbitrary: fc.constant<Record<string, string>>({}) },
        {
          weight: 1,
          arbitrary: fc.record<Record<string, string>>(
            {
              'if-match': headerValue,
              'x-min-position': headerValue,
              'last-event-id': headerValue,
              'idempotency-key': headerValue,
              'content-type': fc.constantFrom(
                'application/json; charset=utf-8',
                'text/plain',
                'application/x-www-form-urlencoded',
                'application/json; charset=utf-16',
              ),
            },
            { requiredKeys: [] },
          ),
        },
      );
      const form = fc
        .array(fc.tuple(fieldName, fc.oneof(fc.constantFrom('id_card', 'payslip', 'appraisal'), hostileString), fc.boolean()), { maxLength: 3 })
        .map((fields) => {
          const data = new FormData();
          for (const [name, value, asFile] of fields) {
            if (asFile) data.append(name, new Blob([`%PDF-1.4\n${value}\n%%EOF\n`], { type: 'application/pdf' }), `${value}.pdf`);
            else data.append(name, value);
          }
          return data;
        });

      function requests(operation: Operation): fc.Arbitrary<Call> {
        const known = existing();
        const pathValues = Object.fromEntries(
          operation.parameters
            .filter((parameter) => parameter.in === 'path')
            .map((parameter) => {
              // What names something that exists, where this test knows it (an id of a pattern of
              // its own is no application's); else what the schema takes.
              const names =
                parameter.name === 'id' && parameter.schema.pattern === undefined
                  ? fc.constantFrom(...applications)
                  : parameter.name in known && parameter.name !== 'id'
                    ? fc.constant(known[parameter.name]!)
                    : plausible(parameter.schema).map(String);
              return [parameter.name, fc.oneof({ weight: 3, arbitrary: names }, { weight: 1, arbitrary: hostileString })];
            }),
        );
        const declaredQuery = operation.parameters.filter((parameter) => parameter.in === 'query');
        const query = fc
          .tuple(
            fc.array(fc.constantFrom(...(declaredQuery.length > 0 ? declaredQuery : [undefined])), { maxLength: 2 }),
            fc.array(fc.tuple(fieldName, queryValue), { maxLength: 2 }),
          )
          .chain(([declared, extra]) =>
            fc
              .tuple(
                ...declared
                  .filter((parameter) => parameter !== undefined)
                  .map((parameter) => valueFor(parameter.schema).map((value) => [parameter.name, String(value)] as const)),
              )
              .map((given) => [...given, ...extra]),
          );
        const example = examples[`${operation.method} ${operation.path}`];
        const json = operation.body
          ? example
            ? fc.oneof(example, valueFor(operation.body))
            : valueFor(operation.body)
          : fc.oneof(hostileValue, fc.dictionary(fieldName, hostileValue, { maxKeys: 4 }));
        const body: fc.Arbitrary<Pick<Call, 'json' | 'form' | 'raw'>> =
          operation.method === 'GET'
            ? fc.constant({})
            : operation.body
              ? fc.oneof({ weight: 5, arbitrary: json.map((value) => ({ json: value })) }, { weight: 1, arbitrary: rawJson })
              : fc.oneof(
                  fc.constant({}),
                  json.map((value) => ({ json: value })),
                  form.map((data) => ({ form: data })),
                  rawJson,
                );
        return fc
          .record({ path: fc.record(pathValues), query, headers, body })
          .map(({ path, query, headers: { 'content-type': contentType, ...rest }, body }) => ({
            method: operation.method,
            path: fill(operation.path, path as Record<string, string>),
            query,
            headers: { ...rest, ...('json' in body && contentType ? { 'content-type': contentType } : {}) },
            ...body,
          }));
      }

      for (const operation of operations) {
        const route = `${operation.method} ${operation.path}`;
        const caller = await as(user.get(operation));
        await fc.assert(
          fc.asyncProperty(requests(operation), async (call) => {
            const correlationId = `fuzz-${randomUUID()}`;
            const answer = await send({ ...call, headers: { ...call.headers, ...caller, 'x-correlation-id': correlationId } });
            const what = `${route} ${JSON.stringify(call).slice(0, 500)}`;
            assert.ok(answer.status < 500, `${what}: ${answer.status} ${answer.body}`);
            if (user.get(operation) !== undefined || answer.status >= 400) assert.ok(storesNothing(answer), what);
            if (answer.status >= 400) {
              // The schema registry answers in Confluent's error format, its clients' contract; a path the router refuses
              // before any route (a parameter too long) gets a problem, as a path no route matches does.
              const errorFormat = operation.path.startsWith('/registry/')
                ? /^application\/(vnd\.schemaregistry\.v1\+json|problem\+json)/
                : /^application\/problem\+json/;
              assert.match(String(answer.headers.get('content-type')), errorFormat, what);
              assert.equal(await eventsCausedBy(correlationId), 0, `${what} was refused but stored something`);
            }
            if (route === 'POST /api/applications' && answer.status === 201)
              applications.push((JSON.parse(answer.body) as { applicationId: string }).applicationId);
          }),
          { numRuns: 25 },
        );
      }
    });
  });
});
