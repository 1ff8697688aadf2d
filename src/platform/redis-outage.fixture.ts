import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** The Redis server the integration tests use; they fail, never skip, when it is down. */
export const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A way to the test Redis that a test can cut and mend, as a network outage would, leaving the server alone for everyone else. */
export type RedisOutage = {
  /** redis:// through the way, for the client under test. */
  readonly url: string;
  /** Drops every connection through the way and refuses new ones. */
  readonly cut: () => Promise<void>;
  /** Takes connections again, on the same port. */
  readonly mend: () => Promise<void>;
  readonly close: () => Promise<void>;
};

export async function redisOutage(): Promise<RedisOutage> {
  const target = new URL(testRedisUrl);
  const open = new Set<Socket>();
  let server: Server | undefined;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const listening = createServer((client) => {
        const upstream = connect(Number(target.port || 6379), target.hostname);
        const end = () => {
          client.destroy();
          upstream.destroy();
          open.delete(client);
          open.delete(upstream);
        };
        open.add(client).add(upstream);
        client.pipe(upstream).pipe(client);
        for (const socket of [client, upstream]) socket.on('error', end).on('close', end);
      });
      listening.once('error', reject);
      listening.listen(port, '127.0.0.1', () => {
        server = listening;
        resolve((listening.address() as AddressInfo).port);
      });
    });
  const port = await listen(0);
  const cut = async () => {
    const closing = server;
    server = undefined;
    for (const socket of open) socket.destroy();
    open.clear();
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    cut,
    mend: async () => {
      if (!server) await listen(port);
    },
    close: cut,
  };
}
