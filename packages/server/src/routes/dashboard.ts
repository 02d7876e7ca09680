/**
 * The web dashboard (docs/protocol.md section 5, `GET /`): three static files from the package's
 * `web/` directory, read once at start. The page holds no secret: it takes the operator token
 * from its URL fragment (`/#token=...`, never sent to a server), keeps it in sessionStorage, and
 * streams `/v1/events`. A strict Content-Security-Policy allows nothing but this origin.
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

const WEB = new URL('../../web/', import.meta.url);

const FILES = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/dashboard/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { url: '/dashboard/style.css', file: 'style.css', type: 'text/css; charset=utf-8' },
] as const;

const HEADERS = {
  'cache-control': 'no-cache',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Registers the dashboard's routes. */
export function dashboardRoutes() {
  return async function plugin(app: FastifyInstance): Promise<void> {
    for (const f of FILES) {
      const body = await readFile(new URL(f.file, WEB));
      app.get(f.url, async (_request, reply) => reply.headers(HEADERS).type(f.type).send(body));
    }
  };
}
