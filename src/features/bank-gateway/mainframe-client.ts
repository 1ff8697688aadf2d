import { connect, type Socket } from 'node:net';
import {
  createRecordSplitter,
  currentBookLayout,
  decodeReply,
  encodeRequest,
  ProtocolError,
  type BookRequest,
  type MainframeReply,
  type MainframeRequest,
} from './mainframe-protocol.ts';

/** No reply within timeoutMs. The request may or may not have been booked: retry with the same key. */
export class MainframeTimeoutError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MainframeTimeoutError';
  }
}

/** The connection was refused, reset or closed before the reply. As with a timeout, the outcome is unknown. */
export class MainframeUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MainframeUnavailableError';
  }
}

/** A booking as the caller gives it; the idempotency key is at most 32 printable ASCII characters without spaces (a UUID without its dashes fits). */
export type BookingRequest = Omit<BookRequest, 'type' | 'layout'>;

export type BookingReply =
  | { readonly outcome: 'booked'; readonly contractNumber: string }
  | { readonly outcome: 'refused'; readonly code: string; readonly reason: string };

export type CancellationReply = { readonly outcome: 'cancelled' } | { readonly outcome: 'refused'; readonly code: string; readonly reason: string };

export type MainframeClientOptions = {
  readonly host: string;
  readonly port: number;
  /** For the whole attempt: connecting, sending and waiting for the reply. */
  readonly timeoutMs?: number;
  /** Connections kept open between calls. */
  readonly maxIdleConnections?: number;
};

export type MainframeClient = {
  /** One attempt; throws MainframeTimeoutError, MainframeUnavailableError or ProtocolError when the outcome is unknown. */
  book(request: BookingRequest): Promise<BookingReply>;
  cancel(idempotencyKey: string, contractNumber: string): Promise<CancellationReply>;
  close(): Promise<void>;
};

/** 'tcp://host:port' -> its host and port. */
export function mainframeAddress(url: string): { readonly host: string; readonly port: number } {
  const malformed = () => new Error(`a mainframe address looks like tcp://host:port, got "${url}"`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw malformed();
  }
  const port = Number(parsed.port);
  const pathIsEmpty = parsed.pathname === '' || parsed.pathname === '/';
  if (
    parsed.protocol !== 'tcp:' ||
    parsed.hostname === '' ||
    parsed.port === '' ||
    !Number.isInteger(port) ||
    port < 1 ||
    port > 65_535 ||
    !pathIsEmpty ||
    parsed.search !== '' ||
    parsed.hash !== '' ||
    parsed.username !== '' ||
    parsed.password !== ''
  ) {
    throw malformed();
  }
  // URL keeps the brackets of an IPv6 literal; net.connect wants the bare address.
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  return { host, port };
}

type Waiter = (result: MainframeReply | Error) => void;

/**
 * One socket carrying one request at a time, so every reply belongs to the request in
 * flight, even an ERR whose key the host could not read.
 */
class MainframeConnection {
  private waiter: Waiter | undefined;
  private closed = false;
  private readonly closedPromise: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly onClosed: (connection: MainframeConnection) => void,
  ) {
    socket.setNoDelay(true);
    const split = createRecordSplitter();
    socket.on('data', (chunk: Buffer) => {
      for (const record of split(chunk)) {
        let result: MainframeReply | Error;
        try {
          result = record instanceof ProtocolError ? record : decodeReply(record);
        } catch (error) {
          result = error instanceof Error ? error : new ProtocolError(String(error));
        }
        this.deliver(result);
      }
    });
    socket.on('error', (error) => this.deliver(new MainframeUnavailableError(`mainframe connection failed: ${error.message}`, { cause: error })));
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        this.deliver(new MainframeUnavailableError('the mainframe closed the connection'));
        this.onClosed(this);
        resolve();
      }),
    );
  }

  get usable(): boolean {
    return !this.closed && !this.socket.destroyed && this.waiter === undefined;
  }

  send(frame: Buffer): Promise<MainframeReply> {
    return new Promise((resolve, reject) => {
      this.waiter = (result) => (result instanceof Error ? reject(result) : resolve(result));
      this.socket.write(frame);
    });
  }

  private deliver(result: MainframeReply | Error): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter !== undefined) waiter(result);
    // A reply nobody waits for, or a broken stream, means we no longer know what the socket carries.
    if (waiter === undefined || result instanceof Error) this.destroy();
  }

  destroy(): Promise<void> {
    this.socket.destroy();
    return this.closedPromise;
  }
}

function open(host: string, port: number, timeoutMs: number, onClosed: (connection: MainframeConnection) => void): Promise<MainframeConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const refused = (error: Error) =>
      reject(new MainframeUnavailableError(`cannot connect to the mainframe at ${host}:${port}: ${error.message}`, { cause: error }));
    // The caller's deadline has already answered by then; this only stops a half-open attempt from lingering.
    const abandon = () => socket.destroy(new Error(`no connection within ${timeoutMs} ms`));
    socket.setTimeout(timeoutMs, abandon);
    socket.once('error', refused);
    socket.once('connect', () => {
      socket.off('error', refused);
      socket.setTimeout(0);
      socket.off('timeout', abandon);
      resolve(new MainframeConnection(socket, onClosed));
    });
  });
}

export function createMainframeClient(options: MainframeClientOptions): MainframeClient {
  const { host, port, timeoutMs = 5_000, maxIdleConnections = 8 } = options;
  const idle: MainframeConnection[] = [];
  const all = new Set<MainframeConnection>();
  let closed = false;

  const forget = (connection: MainframeConnection) => {
    all.delete(connection);
    const index = idle.indexOf(connection);
    if (index !== -1) idle.splice(index, 1);
  };

  const acquire = async (): Promise<MainframeConnection> => {
    for (let connection = idle.pop(); connection !== undefined; connection = idle.pop()) {
      if (connection.usable) return connection;
    }
    const connection = await open(host, port, timeoutMs, forget);
    all.add(connection);
    return connection;
  };

  const release = (connection: MainframeConnection) => {
    if (!closed && connection.usable && idle.length < maxIdleConnections) idle.push(connection);
    else void connection.destroy();
  };

  /** Sends one request and waits for the reply carrying its key, within timeoutMs from the start. */
  const exchange = async (request: MainframeRequest): Promise<MainframeReply> => {
    if (closed) throw new MainframeUnavailableError('the mainframe client is closed');
    const frame = encodeRequest(request);
    let connection: MainframeConnection | undefined;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        // The reply may still come: this socket can no longer be trusted to carry the next one.
        void connection?.destroy();
        reject(new MainframeTimeoutError(`no reply from the mainframe within ${timeoutMs} ms (${request.type} ${request.idempotencyKey})`));
      }, timeoutMs);
    });
    const attempt = async (): Promise<MainframeReply> => {
      const acquired = await acquire();
      if (timedOut) {
        // Nothing was written on it, so it is still clean.
        release(acquired);
        throw new MainframeTimeoutError('superseded by the deadline');
      }
      connection = acquired;
      const reply = await acquired.send(frame);
      if (reply.idempotencyKey !== request.idempotencyKey && !(reply.type === 'ERR' && reply.idempotencyKey === '')) {
        void acquired.destroy();
        throw new ProtocolError(`the mainframe replied for key ${reply.idempotencyKey} to a request for ${request.idempotencyKey}`);
      }
      release(acquired);
      return reply;
    };
    const attempted = attempt();
    // Whichever loses the race must not surface as an unhandled rejection.
    attempted.catch(() => undefined);
    try {
      return await Promise.race([attempted, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };

  const unexpected = (reply: MainframeReply, request: MainframeRequest): never => {
    if (reply.type === 'ERR') throw new ProtocolError(`the mainframe could not read the ${request.type} record: ${reply.reason}`);
    throw new ProtocolError(`the mainframe answered ${reply.type} to ${request.type}`);
  };

  return {
    async book(booking) {
      const request: MainframeRequest = {
        type: 'BOOK',
        layout: currentBookLayout,
        idempotencyKey: booking.idempotencyKey,
        taxCode: booking.taxCode,
        amountCents: booking.amountCents,
        annualRate: booking.annualRate,
        termMonths: booking.termMonths,
        // The record carries whole seconds.
        requestedAt: new Date(Math.floor(booking.requestedAt.getTime() / 1000) * 1000),
      };
      const reply = await exchange(request);
      if (reply.type === 'BOOKOK') return { outcome: 'booked', contractNumber: reply.contractNumber };
      if (reply.type === 'BOOKKO') return { outcome: 'refused', code: reply.code, reason: reply.reason };
      return unexpected(reply, request);
    },

    async cancel(idempotencyKey, contractNumber) {
      const request: MainframeRequest = { type: 'CANC', idempotencyKey, contractNumber };
      const reply = await exchange(request);
      if (reply.type === 'CANCOK') return { outcome: 'cancelled' };
      if (reply.type === 'CANCKO') return { outcome: 'refused', code: reply.code, reason: reply.reason };
      return unexpected(reply, request);
    },

    async close() {
      closed = true;
      idle.length = 0;
      await Promise.all([...all].map((connection) => connection.destroy()));
    },
  };
}
