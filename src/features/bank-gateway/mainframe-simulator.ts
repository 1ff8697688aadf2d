import { randomInt } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import type { AnnualRate } from '../../domain/annual-rate.ts';
import { assertNever } from '../../domain/errors.ts';
import {
  createRecordSplitter,
  decodeRequest,
  encodeReply,
  peekIdempotencyKey,
  ProtocolError,
  type BookRequest,
  type CancelRequest,
  type MainframeReply,
} from './mainframe-protocol.ts';
import { sandboxRuleFor } from './mainframe-sandbox.ts';

export type MainframeSimulatorOptions = {
  readonly host?: string;
  /** 0 picks any free port. */
  readonly port?: number;
  /** Delay before each reply. */
  readonly latencyMs?: number;
  /** Share (0..1) of requests swallowed without a reply, like a host that stalls. */
  readonly timeoutRate?: number;
  /** Share (0..1) of new bookings refused with FUND. */
  readonly refusalRate?: number;
  /** [0, 1), like Math.random; injected to make the rates deterministic in tests. */
  readonly random?: () => number;
};

export type SimulatedBooking = {
  readonly contractNumber: string;
  readonly amountCents: number;
  readonly taxCode: string;
  readonly annualRate: AnnualRate;
  readonly termMonths: number;
  readonly cancelled: boolean;
};

export type MainframeSimulator = {
  readonly host: string;
  readonly port: number;
  /** Bookings by idempotency key. */
  bookings(): ReadonlyMap<string, SimulatedBooking>;
  /** Well-formed BOOK records received, retries included. */
  bookCalls(): number;
  /** Stops listening and drops every connection, requests still unanswered included. */
  close(): Promise<void>;
};

const reasons = {
  IDEM: 'key already used for a different booking',
  UNKN: 'no booking with this contract number',
  FUND: 'insufficient funds',
} as const;

/** The message cut to the ERR reason field, in characters the record can carry. */
function errorReason(error: ProtocolError): string {
  return error.message
    .replace(/[^ -~]/g, '?')
    .slice(0, 80)
    .trimEnd();
}

function checkRate(name: string, value: number): number {
  if (!(value >= 0 && value <= 1)) throw new RangeError(`${name} must be from 0 to 1, got ${value}`);
  return value;
}

/**
 * A stand-in for the bank's host. State lives in memory: a restart forgets every
 * booking, so a retry after a restart would book again (the real host would not).
 */
export async function startMainframeSimulator(options: MainframeSimulatorOptions = {}): Promise<MainframeSimulator> {
  const latencyMs = options.latencyMs ?? 0;
  if (!(Number.isFinite(latencyMs) && latencyMs >= 0)) throw new RangeError(`latencyMs must be 0 or more, got ${latencyMs}`);
  const timeoutRate = checkRate('timeoutRate', options.timeoutRate ?? 0);
  const refusalRate = checkRate('refusalRate', options.refusalRate ?? 0);
  const random = options.random ?? Math.random;
  // Drawing only when a rate is set keeps an injected sequence aligned with the requests that use it.
  const roll = (rate: number) => rate > 0 && random() < rate;

  const bookings = new Map<string, SimulatedBooking>();
  const keyByContract = new Map<string, string>();
  let bookCalls = 0;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  // Random rather than sequential: the simulator forgets everything on restart, and a
  // counter starting over would hand a second loan a contract number already issued.
  const newContractNumber = (): string => {
    for (;;) {
      const contractNumber = `MU${String(randomInt(10_000_000_000)).padStart(10, '0')}`;
      if (!keyByContract.has(contractNumber)) return contractNumber;
    }
  };

  const bookNew = (request: BookRequest): SimulatedBooking => {
    const booking: SimulatedBooking = {
      contractNumber: newContractNumber(),
      amountCents: request.amountCents,
      taxCode: request.taxCode,
      annualRate: request.annualRate,
      termMonths: request.termMonths,
      cancelled: false,
    };
    bookings.set(request.idempotencyKey, booking);
    keyByContract.set(booking.contractNumber, request.idempotencyKey);
    return booking;
  };

  /** The reply to send, or null to stay silent. Synchronous, so concurrent retries of one key cannot both book. */
  const handleBook = (request: BookRequest): MainframeReply | null => {
    bookCalls += 1;
    const { idempotencyKey } = request;
    const existing = bookings.get(idempotencyKey);
    // requestedAt is left out: a retry carries the time of its own attempt.
    if (
      existing !== undefined &&
      (existing.amountCents !== request.amountCents ||
        existing.taxCode !== request.taxCode ||
        existing.annualRate !== request.annualRate ||
        existing.termMonths !== request.termMonths)
    ) {
      return { type: 'BOOKKO', idempotencyKey, code: 'IDEM', reason: reasons.IDEM };
    }
    const booked = (booking: SimulatedBooking): MainframeReply => ({
      type: 'BOOKOK',
      idempotencyKey,
      contractNumber: booking.contractNumber,
    });
    const { behaviour } = sandboxRuleFor(request.amountCents);
    switch (behaviour.kind) {
      case 'never-answer':
        return null;
      case 'refuse':
        return { type: 'BOOKKO', idempotencyKey, code: behaviour.code, reason: behaviour.reason };
      case 'lose-first-reply':
        if (existing !== undefined) return booked(existing);
        bookNew(request);
        return null;
      case 'book':
        if (roll(timeoutRate)) return null;
        if (existing !== undefined) return booked(existing);
        if (roll(refusalRate)) return { type: 'BOOKKO', idempotencyKey, code: 'FUND', reason: reasons.FUND };
        return booked(bookNew(request));
      default:
        return assertNever(behaviour);
    }
  };

  const handleCancel = (request: CancelRequest): MainframeReply | null => {
    if (roll(timeoutRate)) return null;
    const { idempotencyKey, contractNumber } = request;
    // The contract number picks the booking; the key only pairs the reply with its request.
    const bookingKey = keyByContract.get(contractNumber);
    const booking = bookingKey === undefined ? undefined : bookings.get(bookingKey);
    if (bookingKey === undefined || booking === undefined) {
      return { type: 'CANCKO', idempotencyKey, contractNumber, code: 'UNKN', reason: reasons.UNKN };
    }
    if (!booking.cancelled) bookings.set(bookingKey, { ...booking, cancelled: true });
    return { type: 'CANCOK', idempotencyKey, contractNumber };
  };

  const handleRecord = (record: Buffer | ProtocolError): MainframeReply | null => {
    if (record instanceof ProtocolError) return { type: 'ERR', idempotencyKey: '', reason: errorReason(record) };
    try {
      const request = decodeRequest(record);
      return request.type === 'BOOK' ? handleBook(request) : handleCancel(request);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return { type: 'ERR', idempotencyKey: peekIdempotencyKey(record), reason: errorReason(error) };
    }
  };

  const send = (socket: Socket, reply: MainframeReply) => {
    const write = () => {
      if (!socket.destroyed && socket.writable) socket.write(encodeReply(reply));
    };
    if (latencyMs === 0) return write();
    const timer = setTimeout(() => {
      timers.delete(timer);
      write();
    }, latencyMs);
    timers.add(timer);
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const split = createRecordSplitter();
    socket.on('data', (chunk: Buffer) => {
      for (const record of split(chunk)) {
        const reply = handleRecord(record);
        if (reply !== null) send(socket, reply);
      }
    });
    // A client that gives up resets the connection; that is its business, not a crash.
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('the mainframe simulator is not listening on a TCP port'));
        return;
      }
      resolve({
        host: address.address,
        port: address.port,
        bookings: () => new Map(bookings),
        bookCalls: () => bookCalls,
        close: () =>
          new Promise<void>((done) => {
            for (const timer of timers) clearTimeout(timer);
            timers.clear();
            server.close(() => done());
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}
