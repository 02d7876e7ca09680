/**
 * Pushing a stored image to a server (docs/protocol.md section 4): ask which layers the server
 * lacks, then which of their contents, upload only those (the store's own zstd files, so nothing
 * is recompressed), then the skeletons, config and manifest, and last the ref. Every step is
 * content-addressed, so a push that was cut off resumes by asking again: finished contents are
 * never sent twice.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PROTOCOL_LIMITS, messages, type ApiClient, type Digest, type Progress, type SourceImage, type SourceLayerInfo, type Store, type StoredImage } from '@ferry/core';

/** What a push sent. */
export interface PushResult {
  ref: string;
  manifest: Digest;
  config: Digest;
  layers: { total: number; sent: number };
  contents: { total: number; sent: number };
  /** Bytes of content bodies sent (compressed, as they crossed the link). */
  bytesSent: number;
}

/** Options for pushImage. */
export interface PushOptions {
  /** Uploads at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal | undefined;
  onProgress?: (p: Progress) => void;
  /**
   * The image's layers as its source declared them, compressed (what docker pull of it sends);
   * the server compares bundles with them. Uncompressed source layers are left out.
   */
  sourceLayers?: SourceLayerInfo[];
}

const hex = (d: Digest): string => d.slice(7);

async function missing(client: ApiClient, layers: Digest[], contents: Digest[], signal?: AbortSignal): Promise<{ layers: Digest[]; contents: Digest[] }> {
  const out = { layers: [] as Digest[], contents: [] as Digest[] };
  const n = PROTOCOL_LIMITS.pushList;
  for (let i = 0; i < Math.max(layers.length, contents.length); i += n) {
    const { body } = await client.request({ method: 'POST', path: '/v1/push/missing', json: { layers: layers.slice(i, i + n), contents: contents.slice(i, i + n) }, signal });
    const m = await messages.pushMissing(body);
    out.layers.push(...m.layers);
    out.contents.push(...m.contents);
  }
  return out;
}

/** Contents (digest and size) the skeletons of `layers` name, each once. */
async function contentsOf(store: Store, layers: Digest[]): Promise<Map<Digest, number>> {
  const sizes = new Map<Digest, number>();
  for (const l of layers) for await (const e of (await store.openSkeleton(l)).entries) if (e.digest) sizes.set(e.digest, e.size);
  return sizes;
}

async function upload(client: ApiClient, path: string, file: string, headers: Record<string, string>, signal?: AbortSignal): Promise<number> {
  const { size } = await stat(file);
  await client.request({ method: 'PUT', path, body: createReadStream(file) as unknown as AsyncIterable<Uint8Array>, headers: { 'content-length': String(size), ...headers }, signal });
  return size;
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Pushes the image `ref` of `store` to the server. */
export async function pushImage(store: Store, ref: string, client: ApiClient, o: PushOptions = {}): Promise<PushResult> {
  const image: StoredImage = await store.resolve(ref);
  const diffIds = image.layers.map((l) => l.diffId);
  const lacking = (await missing(client, diffIds, [], o.signal)).layers;
  const sizes = await contentsOf(store, lacking);
  const toSend = (await missing(client, [], [...sizes.keys()], o.signal)).contents;
  const total = toSend.reduce((a, d) => a + (sizes.get(d) ?? 0), 0);
  let done = 0;
  let bytesSent = 0;
  await eachLimited(toSend, o.concurrency ?? 4, async (d) => {
    const sent = await upload(client, `/v1/contents/${hex(d)}`, store.contentPath(d), { 'content-type': 'application/zstd', 'x-ferry-size': String(sizes.get(d)) }, o.signal);
    bytesSent += sent; // added after the await: `x += await f()` would lose concurrent updates
    done += sizes.get(d) ?? 0;
    o.onProgress?.({ phase: 'contents', done, total });
  });
  for (const l of lacking) await upload(client, `/v1/skeletons/${hex(l)}`, store.skeletonPath(l), { 'content-type': 'application/octet-stream' }, o.signal);
  for (const d of [image.configDigest, image.manifestDigest]) await upload(client, `/v1/blobs/${hex(d)}`, store.blobPath(d), { 'content-type': 'application/octet-stream' }, o.signal);
  const source = o.sourceLayers && o.sourceLayers.length > 0 ? { layers: o.sourceLayers } : undefined;
  await client.request({ method: 'PUT', path: `/v1/refs/${encodeURIComponent(ref)}`, json: { manifest: image.manifestDigest, ...(source ? { source } : {}) }, signal: o.signal });
  return { ref, manifest: image.manifestDigest, config: image.configDigest, layers: { total: diffIds.length, sent: lacking.length }, contents: { total: sizes.size, sent: toSend.length }, bytesSent };
}

/** The compressed layers a source image declares (OCI descriptors of gzip or zstd blobs). */
export function declaredLayers(source: SourceImage): SourceLayerInfo[] {
  return source.layers.filter((l) => l.compression !== 'none' && l.size !== undefined && l.mediaType !== undefined).map((l) => ({ diffId: l.diffId, mediaType: l.mediaType!, size: l.size! }));
}
