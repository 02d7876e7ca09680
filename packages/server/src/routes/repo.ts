/**
 * The bundle repository over HTTP (docs/protocol.md section 2): `GET/HEAD /repo/headers/<hex>`
 * and `/repo/chunks/<hex>`, no authentication (chunks are content-addressed, headers signed).
 * Single byte ranges get 206 with Content-Range or 416; the strong ETag is the digest and the
 * files are immutable. The digest is checked before any path is built from it; only regular files
 * are served (a symlink or FIFO planted in the directory is not followed).
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import parseRange from 'range-parser';
import { FerryError, digestFromHex, errorBody } from '@ferry/core';
import type { ServerContext } from '../context.js';

const KINDS = new Set(['headers', 'chunks']);

async function openRegular(path: string): Promise<{ fh: FileHandle; size: number } | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  const st = await fh.stat().catch(() => undefined);
  if (!st?.isFile()) {
    await fh.close();
    return undefined;
  }
  return { fh, size: st.size };
}

/** The byte range to send: undefined for the whole file, 'unsatisfiable' for a 416. */
function pickRange(request: FastifyRequest, etag: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const header = request.headers.range;
  if (typeof header !== 'string') return undefined;
  const ifRange = request.headers['if-range'];
  if (typeof ifRange === 'string' && ifRange !== etag) return undefined; // a changed validator: send it all
  const ranges = parseRange(size, header, { combine: true });
  if (ranges === -1) return 'unsatisfiable';
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return undefined; // malformed or multipart: whole file (RFC 9110 14.2)
  return { start: ranges[0]!.start, end: ranges[0]!.end };
}

/** Request params of a repository route: `<kind>/<hex>`. */
export type RepoParams = { kind: string; hex: string };

/**
 * Answers `GET/HEAD <repo>/<kind>/<hex>` from a repository directory (`headers/`, `chunks/`): the
 * server's own route, and the relay's once it holds the object.
 */
export async function serveRepoObject(request: FastifyRequest<{ Params: RepoParams }>, reply: FastifyReply, repoDir: string): Promise<FastifyReply> {
  const { kind, hex } = request.params;
  if (!KINDS.has(kind)) throw new FerryError('FERRY_ERR_NOT_FOUND', `no repository folder ${kind.slice(0, 40)}`);
  const digest = digestFromHex(hex);
  const file = await openRegular(join(repoDir, kind, hex));
  if (!file) throw new FerryError('FERRY_ERR_NOT_FOUND', `no ${kind === 'headers' ? 'header' : 'chunk'} ${digest}`);
  const { fh, size } = file;
  const etag = `"${hex}"`;
  // no Content-Type: a byte body needs none (RFC 9110 section 8.3), and on a small bundle's DIL link
  // every response's header bytes count against the payload (bench link: wire / payload)
  reply.header('etag', etag).header('cache-control', 'public, max-age=31536000, immutable').header('accept-ranges', 'bytes');
  const range = pickRange(request, etag, size);
  if (range === 'unsatisfiable' || request.headers['if-none-match'] === etag || request.method === 'HEAD' || size === 0) await fh.close();
  if (range === 'unsatisfiable') {
    return reply.code(416).header('content-range', `bytes */${size}`).type('application/json').send(errorBody(new FerryError('FERRY_ERR_RANGE_INVALID', `range ${String(request.headers.range).slice(0, 60)} is outside the ${size} bytes of ${digest}`)));
  }
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  const { start, end } = range ?? { start: 0, end: size - 1 };
  if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  reply.header('content-length', String(size === 0 ? 0 : end - start + 1));
  if (request.method === 'HEAD' || size === 0) return reply.send();
  return reply.send(fh.createReadStream({ start, end, highWaterMark: 64 * 1024 }));
}

/** Registers the repository routes under /repo/. */
export function repoRoutes(ctx: ServerContext) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.route<{ Params: { kind: string; hex: string } }>({
      method: ['GET', 'HEAD'],
      url: '/repo/:kind/:hex',
      exposeHeadRoute: false,
      handler: (request, reply) => serveRepoObject(request, reply, ctx.repoDir),
    });
  };
}
