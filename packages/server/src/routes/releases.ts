/**
 * Releases (docs/protocol.md section 4): the statement arrives signed by the release engineer's
 * offline key; the server checks it against its trusted release keys, checks that it holds the
 * image, refuses rollback and expiry, and keeps the exact envelope to embed in bundle headers.
 */
import type { FastifyInstance } from 'fastify';
import { CHANNEL_RE, FerryError, decodeRelease, exists, openEnvelope, parseRef, type ReleaseInfo, type ReleaseStatement } from '@ferry/core';
import { protocol } from '@ferry/core/protocol';
import { authorize } from '../auth.js';
import type { ServerContext } from '../context.js';
import { releaseInfo } from '../state/releases.js';

/** Checks that the store holds the whole image the statement names. */
async function checkImage(ctx: ServerContext, s: ReleaseStatement): Promise<void> {
  if (!(await exists(ctx.store.blobPath(s.manifest)))) throw new FerryError('FERRY_ERR_OBJECT_MISSING', `the server lacks image ${s.ref} (manifest ${s.manifest}); push it first`);
  const image = await ctx.store.imageByManifest(s.ref, s.manifest);
  if (image.configDigest !== s.config) throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `manifest ${s.manifest} names config ${image.configDigest}, the statement says ${s.config}`);
  for (const l of image.layers) if (!(await ctx.store.hasSkeleton(l.diffId))) throw new FerryError('FERRY_ERR_OBJECT_MISSING', `the server lacks layer ${l.diffId} of ${s.ref}; push it first`);
}

async function publish(ctx: ServerContext, body: unknown): Promise<ReleaseInfo> {
  const req = protocol.releaseRequest(body);
  const envelope = Buffer.from(req.envelope, 'base64');
  const statement = decodeRelease(openEnvelope('release', envelope, ctx.releaseTrust));
  if (!CHANNEL_RE.test(statement.channel)) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `channel ${JSON.stringify(statement.channel.slice(0, 140))} is not a channel name`);
  parseRef(statement.ref);
  if (statement.expires * 1000 <= ctx.options.now()) throw new FerryError('FERRY_ERR_BUNDLE_EXPIRED', `release ${statement.release} of ${statement.channel} expired at ${new Date(statement.expires * 1000).toISOString()}`);
  await checkImage(ctx, statement);
  return releaseInfo(await ctx.state.releases.add(statement, envelope, req.urgent === true));
}

/** Registers the release routes. */
export function releaseRoutes(ctx: ServerContext) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post('/v1/releases', async (request, reply) => {
      await authorize(ctx, request, ['publisher', 'admin']);
      const info = await publish(ctx, request.body);
      request.log.info({ channel: info.channel, release: info.release, ref: info.ref }, 'release published');
      void reply.code(201);
      return info;
    });
    app.get<{ Params: { name: string } }>('/v1/channels/:name', async (request) => {
      await authorize(ctx, request, ['publisher', 'operator', 'admin']);
      const { name } = request.params;
      if (!CHANNEL_RE.test(name)) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${JSON.stringify(name.slice(0, 140))} is not a channel name`);
      const latest = await ctx.state.releases.latest(name);
      return { name, release: latest ? releaseInfo(latest) : null };
    });
  };
}
