import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where `npm run build:web` (run by `npm ci`) puts the pages. */
export const webDirectory = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

/**
 * The web pages (web/, React built by Vite) under /app/, from the same server as the API,
 * so that they call it from its own origin (no CORS) under its content security policy.
 * Public like the documentation: a page asks for a token before it calls anything else.
 * Without a build, the server runs without them and says so.
 */
export async function webPages(app: FastifyInstance): Promise<boolean> {
  if (!existsSync(webDirectory)) return false;
  await app.register(async (pages) => {
    pages.addHook('onRoute', (route) => {
      route.config = { ...route.config, permission: 'public' };
    });
    await pages.register(fastifyStatic, { root: webDirectory, prefix: '/app/', wildcard: false, index: ['index.html'], schemaHide: true });
    pages.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect('/app/'));
  });
  return true;
}
