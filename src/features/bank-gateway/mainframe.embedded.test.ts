import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import {
  createMainframeClient,
  mainframeAddress,
  MainframeTimeoutError,
  MainframeUnavailableError,
  type BookingRequest,
  type MainframeClient,
} from './mainframe-client.ts';
import { createRecordSplitter, decodeReply, encodeRequest, RECORD_LENGTH, type MainframeReply } from './mainframe-protocol.ts';
import { startMainframeSimulator, type MainframeSimulator } from './mainframe-simulator.ts';

const newKey = () => randomUUID().replaceAll('-', '');

const booking = (amountCents: number, overrides: Partial<BookingRequest> = {}): BookingRequest => ({
  idempotencyKey: newKey(),
  taxCode: 'RSSMRA85T10A562S',
  amountCents,
  annualRate: '3.875',
  termMonths: 300,
  requestedAt: new Date('2026-03-01T09:15:30.250Z'),
  ...overrides,
});

/** Writes raw bytes on a fresh socket and reads `count` replies. */
async function rawExchange(port: number, writes: readonly Buffer[], count: number): Promise<MainframeReply[]> {
  const socket = connect({ host: '127.0.0.1', port });
  const split = createRecordSplitter();
  const replies: MainframeReply[] = [];
  try {
    return await new Promise((resolve, reject) => {
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        for (const record of split(chunk)) {
          if (!(record instanceof Buffer)) return reject(record);
          replies.push(decodeReply(record));
        }
        if (replies.length >= count) resolve(replies);
      });
      socket.once('connect', () => {
        for (const bytes of writes) socket.write(bytes);
      });
    });
  } finally {
    socket.destroy();
  }
}

async function withSimulator<T>(
  options: Parameters<typeof startMainframeSimulator>[0],
  body: (simulator: MainframeSimulator, client: MainframeClient) => Promise<T>,
): Promise<T> {
  const simulator = await startMainframeSimulator(options);
  // Long enough never to fire by accident; the timeout tests swallow requests on purpose.
  const client = createMainframeClient({ host: simulator.host, port: simulator.port, timeoutMs: options?.timeoutRate ? 150 : 5_000 });
  try {
    return await body(simulator, client);
  } finally {
    await client.close();
    await simulator.close();
  }
}

describe('mainframe simulator and client', () => {
  let simulator: MainframeSimulator;
  let client: MainframeClient;
  // Only for the requests meant to time out, so the others never race a short deadline.
  let impatientClient: MainframeClient;

  before(async () => {
    simulator = await startMainframeSimulator({ port: 0 });
    client = createMainframeClient({ host: simulator.host, port: simulator.port, timeoutMs: 5_000 });
    impatientClient = createMainframeClient({ host: simulator.host, port: simulator.port, timeoutMs: 150 });
  });

  after(async () => {
    await client.close();
    await impatientClient.close();
    await simulator.close();
  });

  it('books a loan and records it', async () => {
    const request = booking(25_000_000);
    const reply = await client.book(request);
    assert.equal(reply.outcome, 'booked');
    assert.ok(reply.outcome === 'booked' && /^MU\d{10}$/.test(reply.contractNumber));
    assert.deepEqual(simulator.bookings().get(request.idempotencyKey), {
      contractNumber: reply.contractNumber,
      amountCents: 25_000_000,
      taxCode: 'RSSMRA85T10A562S',
      annualRate: '3.875',
      termMonths: 300,
      cancelled: false,
    });
  });

  it('answers the same key with the same contract and books once', async () => {
    const request = booking(10_000_000);
    const bookingsBefore = simulator.bookings().size;
    const calls = simulator.bookCalls();
    const first = await client.book(request);
    const second = await client.book({ ...request, requestedAt: new Date('2026-03-01T09:20:00Z') });
    assert.deepEqual(second, first);
    assert.equal(simulator.bookings().size, bookingsBefore + 1);
    assert.equal(simulator.bookCalls(), calls + 2);
  });

  it('refuses a key reused for a different loan with IDEM', async () => {
    const request = booking(10_000_000);
    await client.book(request);
    const reply = await client.book({ ...request, amountCents: 20_000_000 });
    assert.deepEqual(reply, { outcome: 'refused', code: 'IDEM', reason: 'key already used for a different booking' });
  });

  it('refuses .51 for insufficient funds and .52 for a blocked customer, booking nothing', async () => {
    const funds = booking(25_000_051);
    const blocked = booking(25_000_052);
    assert.deepEqual(await client.book(funds), { outcome: 'refused', code: 'FUND', reason: 'insufficient funds' });
    assert.deepEqual(await client.book(blocked), { outcome: 'refused', code: 'BLCK', reason: 'customer blocked at the bank' });
    assert.equal(simulator.bookings().has(funds.idempotencyKey), false);
    assert.equal(simulator.bookings().has(blocked.idempotencyKey), false);
  });

  it('never answers .53: every attempt times out', async () => {
    const request = booking(25_000_053);
    await assert.rejects(impatientClient.book(request), MainframeTimeoutError);
    await assert.rejects(impatientClient.book(request), MainframeTimeoutError);
    assert.equal(simulator.bookings().has(request.idempotencyKey), false);
  });

  it('loses the first reply for .54, and the retry gets the contract booked the first time', async () => {
    const request = booking(25_000_054);
    await assert.rejects(impatientClient.book(request), MainframeTimeoutError);
    const booked = simulator.bookings().get(request.idempotencyKey);
    assert.ok(booked !== undefined);
    const retry = await client.book(request);
    assert.deepEqual(retry, { outcome: 'booked', contractNumber: booked.contractNumber });
    assert.equal([...simulator.bookings().values()].filter((b) => b.contractNumber === booked.contractNumber).length, 1);
  });

  it('cancels a booking, twice without harm, and refuses an unknown contract', async () => {
    const request = booking(30_000_000);
    const reply = await client.book(request);
    assert.ok(reply.outcome === 'booked');
    assert.deepEqual(await client.cancel(request.idempotencyKey, reply.contractNumber), { outcome: 'cancelled' });
    assert.deepEqual(await client.cancel(request.idempotencyKey, reply.contractNumber), { outcome: 'cancelled' });
    assert.equal(simulator.bookings().get(request.idempotencyKey)?.cancelled, true);
    assert.deepEqual(await client.cancel(newKey(), 'MU9999999999'), {
      outcome: 'refused',
      code: 'UNKN',
      reason: 'no booking with this contract number',
    });
  });

  it('answers a malformed record with ERR and keeps the connection usable', async () => {
    const key = newKey();
    const valid = encodeRequest({ ...booking(1_000_000, { requestedAt: new Date('2026-03-01T09:15:30Z') }), type: 'BOOK', layout: 2, idempotencyKey: key });
    const badDigits = Buffer.from(valid);
    badDigits.write('00000000ABCDEF', 54, 'latin1');
    const replies = await rawExchange(simulator.port, [Buffer.from('HELLO\n'), Buffer.alloc(300, 'x'), Buffer.from('\n'), badDigits, valid], 4);
    assert.deepEqual(replies.slice(0, 3), [
      { type: 'ERR', idempotencyKey: '', reason: `record is 5 bytes, expected ${RECORD_LENGTH}` },
      { type: 'ERR', idempotencyKey: '', reason: `record is longer than ${RECORD_LENGTH} bytes` },
      { type: 'ERR', idempotencyKey: key, reason: 'amountCents: "00000000ABCDEF" is not 14 digits' },
    ]);
    assert.equal(replies[3]?.type, 'BOOKOK');
    assert.equal(replies[3]?.idempotencyKey, key);
  });

  it('books a BOOK record of layout 1 (the rate in basis points), and takes the same booking in layout 2 as its retry', async () => {
    const key = newKey();
    const request = {
      ...booking(1_000_000, { annualRate: '3.25', requestedAt: new Date('2026-03-01T09:15:30Z') }),
      type: 'BOOK' as const,
      idempotencyKey: key,
    };
    const [fromOldClient] = await rawExchange(simulator.port, [encodeRequest({ ...request, layout: 1 })], 1);
    assert.equal(fromOldClient?.type, 'BOOKOK');
    assert.equal(simulator.bookings().get(key)?.annualRate, '3.25');
    assert.deepEqual(await client.book(request), { outcome: 'booked', contractNumber: fromOldClient?.type === 'BOOKOK' ? fromOldClient.contractNumber : '' });
    assert.deepEqual(await client.book({ ...request, annualRate: '3.2501' }), {
      outcome: 'refused',
      code: 'IDEM',
      reason: 'key already used for a different booking',
    });
  });

  it('books 100 concurrent loans exactly once each', async () => {
    const requests = Array.from({ length: 100 }, (_, i) => booking(20_000_000 + i * 100));
    const replies = await Promise.all(requests.map((request) => client.book(request)));
    const contracts = new Set(replies.map((reply) => (reply.outcome === 'booked' ? reply.contractNumber : reply.code)));
    assert.equal(contracts.size, 100);
    const bookings = simulator.bookings();
    for (const [i, request] of requests.entries()) {
      const reply = replies[i]!;
      assert.ok(reply.outcome === 'booked');
      assert.equal(bookings.get(request.idempotencyKey)?.contractNumber, reply.contractNumber);
    }
  });

  it('rejects a request the record cannot carry before sending it', async () => {
    await assert.rejects(client.book(booking(1_000_000, { idempotencyKey: randomUUID() })), /idempotencyKey: 36 characters do not fit 32/);
  });
});

describe('mainframe simulator rates', () => {
  it('refuses every new booking with FUND at refusalRate 1', () =>
    withSimulator({ refusalRate: 1 }, async (simulator, client) => {
      const reply = await client.book(booking(25_000_000));
      assert.deepEqual(reply, { outcome: 'refused', code: 'FUND', reason: 'insufficient funds' });
      assert.equal(simulator.bookings().size, 0);
    }));

  it('swallows every request at timeoutRate 1', () =>
    withSimulator({ timeoutRate: 1 }, async (simulator, client) => {
      await assert.rejects(client.book(booking(25_000_000)), MainframeTimeoutError);
      assert.equal(simulator.bookCalls(), 1);
    }));

  it('lets sandbox amounts win over the rates', () =>
    withSimulator({ timeoutRate: 1, refusalRate: 1 }, async (_simulator, client) => {
      const reply = await client.book(booking(25_000_052));
      assert.deepEqual(reply, { outcome: 'refused', code: 'BLCK', reason: 'customer blocked at the bank' });
    }));

  it('draws from the injected random source', () =>
    withSimulator(
      {
        refusalRate: 0.5,
        random: (() => {
          const draws = [0.9, 0.1];
          return () => draws.shift() ?? 0.9;
        })(),
      },
      async (_simulator, client) => {
        assert.equal((await client.book(booking(1_000_000))).outcome, 'booked');
        assert.equal((await client.book(booking(1_000_000))).outcome, 'refused');
      },
    ));

  it('replies after latencyMs', () =>
    withSimulator({ latencyMs: 20 }, async (_simulator, client) => {
      assert.equal((await client.book(booking(1_000_000))).outcome, 'booked');
    }));

  it('closes without waiting for swallowed requests', async () => {
    const simulator = await startMainframeSimulator({ timeoutRate: 1 });
    const client = createMainframeClient({ host: simulator.host, port: simulator.port, timeoutMs: 5_000 });
    const pending = Promise.allSettled([client.book(booking(1_000_000)), client.book(booking(1_000_053))]);
    while (simulator.bookCalls() < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await simulator.close();
    const outcomes = await pending;
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      assert.ok(outcome.reason instanceof MainframeUnavailableError);
    }
    await client.close();
  });

  it('rejects options out of range', async () => {
    await assert.rejects(startMainframeSimulator({ timeoutRate: 2 }), /timeoutRate must be from 0 to 1/);
    await assert.rejects(startMainframeSimulator({ latencyMs: -1 }), /latencyMs must be 0 or more/);
  });
});

describe('mainframe client failures', () => {
  it('reports a refused connection as unavailable', async () => {
    const simulator = await startMainframeSimulator();
    const { host, port } = simulator;
    await simulator.close();
    const client = createMainframeClient({ host, port, timeoutMs: 1_000 });
    await assert.rejects(client.book(booking(1_000_000)), MainframeUnavailableError);
    await client.close();
  });

  it('refuses to work once closed', async () => {
    const client = createMainframeClient({ host: '127.0.0.1', port: 1 });
    await client.close();
    await assert.rejects(client.book(booking(1_000_000)), MainframeUnavailableError);
  });

  it('turns an ERR reply into a ProtocolError and a reply for another key into one too', async () => {
    // A host that answers every record with one canned reply.
    const answers: Buffer[] = [
      Buffer.from(`ERR   ${' '.repeat(32)}${'no such thing'.padEnd(90, ' ')}\n`, 'latin1'),
      Buffer.from(`BOOKOK${'someoneelse'.padEnd(32, ' ')}${'MU0000000001'.padEnd(90, ' ')}\n`, 'latin1'),
    ];
    const sockets = new Set<Socket>();
    const host = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('data', () => socket.write(answers.shift() ?? Buffer.alloc(0)));
    });
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    const address = host.address();
    assert.ok(address !== null && typeof address === 'object');
    const client = createMainframeClient({ host: '127.0.0.1', port: address.port, timeoutMs: 1_000 });
    try {
      await assert.rejects(client.book(booking(1_000_000)), { name: 'ProtocolError', message: /could not read the BOOK record: no such thing/ });
      await assert.rejects(client.book(booking(1_000_000)), { name: 'ProtocolError', message: /replied for key someoneelse/ });
    } finally {
      await client.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => host.close(resolve));
    }
  });
});

describe('mainframeAddress', () => {
  it('parses tcp://host:port', () => {
    assert.deepEqual(mainframeAddress('tcp://127.0.0.1:7070'), { host: '127.0.0.1', port: 7070 });
    assert.deepEqual(mainframeAddress('tcp://mainframe.bank.local:7070/'), { host: 'mainframe.bank.local', port: 7070 });
    assert.deepEqual(mainframeAddress('tcp://[::1]:7070'), { host: '::1', port: 7070 });
  });

  it('rejects anything else', () => {
    for (const url of ['127.0.0.1:7070', 'http://127.0.0.1:7070', 'tcp://127.0.0.1', 'tcp://127.0.0.1:0', 'tcp://h:7070/x', 'tcp://u@h:7070', '']) {
      assert.throws(() => mainframeAddress(url), /a mainframe address looks like tcp:\/\/host:port/, url);
    }
  });
});
