import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * How a cut looks to the processes on either side:
 *
 * - `refuse`: as when the server is down or restarted. Every open connection is reset both
 *   ways (the client reads ECONNRESET), and each new one is reset as soon as it is made.
 * - `blackhole`: as a network partition. Nothing is closed and nothing gets through: open
 *   connections go silent both ways, new ones are taken and then hear nothing. Once the
 *   network is back what was sent meanwhile arrives (TCP sends again what was not
 *   acknowledged), held connections reach the server then, and a side that closed during
 *   the cut is heard of by the other only then. A client without timeouts of its own
 *   waits for as long as the cut lasts; this is the harsher case.
 */
export type CutMode = 'refuse' | 'blackhole';

export type TcpProxyOptions = {
  /** Where the proxy leads: host and port, or a URL (postgres://, amqp://, redis://) whose host and port are taken. */
  readonly target: { readonly host: string; readonly port: number } | string;
};

/** A way to a server that a test can cut and restore as a network would, leaving the server alone for everyone else. */
export type TcpProxy = {
  readonly host: string;
  readonly port: number;
  /** The target URL with the proxy's host and port (with a target given as host and port: tcp://host:port). */
  readonly url: string;
  /** Connections through the proxy now, held ones included. */
  readonly connections: () => number;
  /** Cuts the way (default: blackhole); a cut while cut changes its mode. */
  readonly cut: (mode?: CutMode) => Promise<void>;
  /** Lets everything through again, on the same port. */
  readonly restore: () => Promise<void>;
  /** Ends every connection and stops listening. */
  readonly close: () => Promise<void>;
};

const defaultPorts: Record<string, number> = { 'postgres:': 5432, 'postgresql:': 5432, 'amqp:': 5672, 'redis:': 6379 };

/** One client's way through: its socket, and the server's once it is connected. */
type Link = { readonly client: Socket; upstream?: Socket };

/** Starts a proxy on 127.0.0.1, on a port of its own, that lets everything through until cut. */
export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const given = options.target;
  const targetUrl = typeof given === 'string' ? new URL(given) : undefined;
  const target = typeof given === 'string' ? { host: targetUrl!.hostname, port: Number(targetUrl!.port || defaultPorts[targetUrl!.protocol]) } : given;
  if (!Number.isInteger(target.port) || target.port <= 0) throw new Error(`no port to proxy to in ${String(options.target)}`);
  let state: 'open' | CutMode | 'closed' = 'open';
  const links = new Set<Link>();

  function drop(link: Link): void {
    links.delete(link);
    // A reset, not a graceful end: what a server that went away, or a cut, looks like.
    if (!link.client.destroyed) link.client.resetAndDestroy();
    if (link.upstream && !link.upstream.destroyed) link.upstream.resetAndDestroy();
  }

  /** Passes bytes both ways; once either side ends or fails, the other is ended too, unless the way is cut (then at the restore). */
  function flow(link: Link): void {
    const upstream = link.upstream!;
    link.client.pipe(upstream);
    upstream.pipe(link.client);
    link.client.resume();
  }

  function freeze(link: Link): void {
    // Stops reading both sides: what they send waits in the sockets' buffers, as unacknowledged
    // data waits on a partitioned network, and arrives once the way is restored.
    link.client.unpipe();
    link.upstream?.unpipe();
    link.client.pause();
    link.upstream?.pause();
  }

  function reach(link: Link): void {
    const upstream = connect(target.port, target.host);
    link.upstream = upstream;
    upstream.pause();
    // During a cut, the other side hears of an end or a failure only once the way is restored.
    for (const event of ['error', 'close']) {
      upstream.on(event, () => {
        if (state === 'open') drop(link);
      });
    }
    upstream.once('connect', () => {
      if (state === 'open') flow(link);
    });
  }

  const server = createServer({ pauseOnConnect: true }, (client) => {
    if (state !== 'open' && state !== 'blackhole') {
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client };
    links.add(link);
    for (const event of ['error', 'close']) {
      client.on(event, () => {
        if (state === 'open') drop(link);
      });
    }
    // Held during a partition: it reaches the server once the way is restored.
    if (state === 'open') reach(link);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let url = `tcp://127.0.0.1:${port}`;
  if (targetUrl) {
    const through = new URL(targetUrl);
    through.hostname = '127.0.0.1';
    through.port = String(port);
    url = through.toString();
  }

  return {
    host: '127.0.0.1',
    port,
    url,
    connections: () => links.size,
    async cut(mode = 'blackhole') {
      if (state === 'closed') throw new Error('the proxy is closed');
      state = mode;
      for (const link of [...links]) {
        if (mode === 'refuse') drop(link);
        else freeze(link);
      }
    },
    async restore() {
      if (state === 'closed') throw new Error('the proxy is closed');
      state = 'open';
      for (const link of [...links]) {
        // A side that closed during the cut: the other hears of it now.
        if (link.client.destroyed || link.client.readableEnded || link.upstream?.destroyed) drop(link);
        else if (!link.upstream) reach(link);
        else if (link.upstream.connecting)
          continue; // flows once connected
        else flow(link);
      }
    },
    async close() {
      state = 'closed';
      for (const link of [...links]) drop(link);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
