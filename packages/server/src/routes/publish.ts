/**
 * The publisher API (docs/protocol.md section 4): ask what the server lacks, upload contents,
 * skeletons and blobs (each verified before it is named), point a ref at a complete image.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { FerryError, PROTOCOL_LIMITS, digestFromHex, exists, parseRef, type Digest, type PushMissing } from '@ferry/core';
import { protocol } from '@ferry/core/protocol';
import { authorize } from '../auth.js';
import type { ServerContext } from '../context.js';
import { storeBlob, storeContent, storeSkeleton } from '../uploads.js';

type HexRequest = FastifyRequest<{ Params: { hex: string } }>;
const PUBLISHERS = ['publisher', 'admin'] as const;

/** The raw body stream; a declared length over `cap` is refused before a byte is read. */
function rawBody(request: FastifyRequest, cap: number): AsyncIterable<Buffer> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > cap) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `body of ${declared} bytes is over the ${cap}-byte cap`);
  const body = request.body as Readable | undefined;
  if (!body || typeof (body as AsyncIterable<Buffer>)[Symbol.asyncIterator] !== 'function') throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', 'this upload needs Content-Type application/zstd or application/octet-stream');
  return body as AsyncIterable<Buffer>;
}

async function missing(ctx: ServerContext, q: PushMissing): Promise<PushMissing> {
  const layers: Digest[] = [];
  const contents: Digest[] = [];
  for (const d of new Set(q.layers)) if (!(await ctx.store.hasSkeleton(d))) layers.push(d);
  for (const d of new Set(q.contents)) if (!(await ctx.store.hasContent(d))) contents.push(d);
  return { layers, contents };
}

function created(reply: FastifyReply, isNew: boolean, digest: Digest): { digest: Digest; created: boolean } {
  void reply.code(isNew ? 201 : 200);
  return { digest, created: isNew };
}

async function putRef(ctx: ServerContext, ref: string, body: unknown): Promise<{ ref: string; manifest: Digest; config: Digest }> {
  parseRef(ref);
  const { manifest, source } = protocol.refRequest(body);
  if (!(await exists(ctx.store.blobPath(manifest)))) throw new FerryError('FERRY_ERR_OBJECT_MISSING', `the server lacks manifest ${manifest}; push it first`);
  const image = await ctx.store.imageByManifest(ref, manifest);
  const lacking = [];
  for (const l of image.layers) if (!(await ctx.store.hasSkeleton(l.diffId))) lacking.push(l.diffId);
  if (lacking.length > 0) throw new FerryError('FERRY_ERR_OBJECT_MISSING', `the server lacks ${lacking.length} layer(s) of ${ref} (first ${lacking[0]}); push them first`);
  const declared = source?.layers ?? [];
  const layers = new Set(image.layers.map((l) => l.diffId));
  const stranger = declared.find((l) => !layers.has(l.diffId));
  if (stranger) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `source layer ${stranger.diffId} is not a layer of ${ref}`);
  await ctx.state.images.putSourceLayers(manifest, declared);
  await ctx.store.setRef(ref, manifest);
  return { ref, manifest, config: image.configDigest };
}

/** Registers the publishing routes. */
export function publishRoutes(ctx: ServerContext) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    // uploads are streamed and capped by the handlers, never buffered by a parser
    app.addContentTypeParser(['application/zstd', 'application/octet-stream'], (_req, payload, done) => done(null, payload));
    app.addHook('onRequest', async (request) => {
      await authorize(ctx, request, [...PUBLISHERS]);
    });
    app.post('/v1/push/missing', { bodyLimit: PROTOCOL_LIMITS.pushMissingBody }, async (request) => missing(ctx, protocol.pushMissing(request.body)));
    app.put('/v1/contents/:hex', async (request: HexRequest, reply) => {
      const digest = digestFromHex(request.params.hex);
      const size = Number(request.headers['x-ferry-size']);
      if (request.headers['x-ferry-size'] === undefined || !Number.isSafeInteger(size)) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', 'a content upload needs X-Ferry-Size: <uncompressed bytes>');
      return created(reply, await storeContent(ctx.store, digest, size, rawBody(request, PROTOCOL_LIMITS.contentSize)), digest);
    });
    app.put('/v1/skeletons/:hex', async (request: HexRequest, reply) => {
      const diffId = digestFromHex(request.params.hex);
      return created(reply, await storeSkeleton(ctx.store, diffId, rawBody(request, PROTOCOL_LIMITS.skeletonBody)), diffId);
    });
    app.put('/v1/blobs/:hex', async (request: HexRequest, reply) => {
      const digest = digestFromHex(request.params.hex);
      return created(reply, await storeBlob(ctx.store, digest, rawBody(request, PROTOCOL_LIMITS.blobBody)), digest);
    });
    app.put<{ Params: { ref: string } }>('/v1/refs/:ref', async (request) => putRef(ctx, request.params.ref, request.body));
  };
}
