import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, register } from 'prom-client';
import type { ServerRoutes } from './server.ts';

/** GET /metrics on the API's port, for the holders of readMetrics (admins, monitoring systems): they say what the platform does and to how many. */
export const metricsRoutes: ServerRoutes = async (app) => {
  app.get('/metrics', { schema: { hide: true }, config: { permission: 'readMetrics' } }, async (_request, reply) => {
    return reply.type(register.contentType).send(await register.metrics());
  });
};

/**
 * A counter of the registry /metrics serves, made once per process: a module started
 * again in the same process (a test's next platform) counts on in the one it made first.
 */
export function processCounter<Label extends string>(name: string, help: string, labelNames: readonly Label[]): Counter<Label> {
  return (register.getSingleMetric(name) as Counter<Label> | undefined) ?? new Counter({ name, help, labelNames });
}

export type MetricsServer = { readonly url: string; readonly close: () => Promise<void> };

/**
 * The metrics on a port of their own (METRICS_PORT), to whoever reaches it, with no token:
 * a Prometheus scrapes it as it scrapes anything. Bound to METRICS_HOST, an address only the
 * monitoring systems reach; the API's port then serves no /metrics.
 */
export async function startMetricsServer({ port, host }: { readonly port: number; readonly host: string }): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?', 1)[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('only GET /metrics here\n');
      return;
    }
    register.metrics().then(
      (text) => response.writeHead(200, { 'content-type': register.contentType }).end(text),
      () => response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('the metrics could not be collected\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
