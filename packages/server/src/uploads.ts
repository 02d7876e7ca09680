/**
 * Storing what a publisher uploads (docs/protocol.md section 4), verified before it is named:
 * a content is decoded with its declared size as the cap and hashed while it streams to a temp
 * file, then renamed into the store; a skeleton must name only contents the store has and
 * reassemble to the diff_id in its URL; a blob must hash to its URL.
 */
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FerryError, PROTOCOL_LIMITS, exists, fsyncDir, hashToDigest, readSkeletonFile, reassembleVerified, sha256, tempPathFor, zstdDecode, type Digest, type Store } from '@ferry/core';

/** A compressed body may be this much larger than its content (zstd's worst case, with margin). */
function compressedCap(size: number): number {
  return size + Math.ceil(size / 128) + 128 * 1024;
}

async function* capped(source: AsyncIterable<Buffer>, cap: number, what: string, onChunk?: (c: Buffer) => Promise<void>): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of source) {
    n += c.length;
    if (n > cap) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `${what} is over its ${cap}-byte cap`);
    await onChunk?.(c);
    yield c;
  }
}

/** Writes `source` to a temp file beside `finalPath` (fsynced); returns its path. */
async function toTemp(finalPath: string, source: AsyncIterable<Buffer>): Promise<string> {
  const tmp = tempPathFor(finalPath);
  const fh = await open(tmp, 'wx');
  try {
    for await (const c of source) await fh.write(c);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  return tmp;
}

async function commit(tmp: string, finalPath: string): Promise<void> {
  await rename(tmp, finalPath);
  await fsyncDir(dirname(finalPath));
}

/** Stores one zstd-compressed content of `size` bytes; false when it was already present. */
export async function storeContent(store: Store, digest: Digest, size: number, body: AsyncIterable<Buffer>): Promise<boolean> {
  const path = store.contentPath(digest);
  if (await exists(path)) return false;
  if (!Number.isSafeInteger(size) || size < 0 || size > PROTOCOL_LIMITS.contentSize) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `X-Ferry-Size must be a byte count up to ${PROTOCOL_LIMITS.contentSize}`);
  const tmp = tempPathFor(path);
  const fh = await open(tmp, 'wx');
  const hash = createHash('sha256');
  let total = 0;
  try {
    const raw = capped(body, compressedCap(size), `content ${digest}`, async (c) => void (await fh.write(c)));
    for await (const out of zstdDecode(raw, size)) {
      hash.update(out);
      total += out.length;
    }
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    if (err instanceof FerryError && err.code === 'FERRY_ERR_LIMIT_EXCEEDED' && /zstd output/.test(err.message)) throw new FerryError('FERRY_ERR_SIZE_MISMATCH', `content ${digest} is larger than its declared ${size} bytes`);
    throw err;
  }
  await fh.close();
  const got = hashToDigest(hash);
  if (total !== size || got !== digest) {
    await rm(tmp, { force: true });
    if (total !== size) throw new FerryError('FERRY_ERR_SIZE_MISMATCH', `content ${digest} is ${total} bytes, declared ${size}`);
    throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `the body sent as ${digest} hashes to ${got}`, { details: { expected: digest, actual: got } });
  }
  await commit(tmp, path);
  return true;
}

/** Contents a skeleton names that the store lacks. */
async function missingContents(store: Store, tmp: string): Promise<{ missing: Digest[]; diffId: Digest; size: number }> {
  const reader = readSkeletonFile(tmp);
  const seen = new Set<Digest>();
  const missing: Digest[] = [];
  for await (const e of reader.entries) {
    if (!e.digest || seen.has(e.digest)) continue;
    seen.add(e.digest);
    if (!(await store.hasContent(e.digest))) missing.push(e.digest);
  }
  const t = reader.trailer();
  return { missing, diffId: t.diffId, size: t.size };
}

/** Stores a layer's skeleton after checking it reassembles to `diffId`; false when already present. */
export async function storeSkeleton(store: Store, diffId: Digest, body: AsyncIterable<Buffer>): Promise<boolean> {
  const path = store.skeletonPath(diffId);
  if (await exists(path)) return false;
  const tmp = await toTemp(path, capped(body, PROTOCOL_LIMITS.skeletonBody, `skeleton ${diffId}`));
  try {
    const { missing, diffId: named, size } = await missingContents(store, tmp);
    if (named !== diffId) throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `the skeleton sent as ${diffId} is the skeleton of ${named}`);
    if (missing.length > 0) throw new FerryError('FERRY_ERR_OBJECT_MISSING', `layer ${diffId} names ${missing.length} content(s) the server lacks (first ${missing[0]}); upload them first`, { details: { missing: missing.length } });
    for await (const _ of reassembleVerified(store, readSkeletonFile(tmp), diffId, size, true)) {
      // reading is the check: the layer must hash to its diff_id
    }
    await commit(tmp, path);
    return true;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Stores a manifest or config that must hash to `digest`; false when already present. */
export async function storeBlob(store: Store, digest: Digest, body: AsyncIterable<Buffer>): Promise<boolean> {
  if (await exists(store.blobPath(digest))) return false;
  const parts: Buffer[] = [];
  for await (const c of capped(body, PROTOCOL_LIMITS.blobBody, `blob ${digest}`)) parts.push(c);
  const bytes = Buffer.concat(parts);
  const got = sha256(bytes);
  if (got !== digest) throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `the blob sent as ${digest} hashes to ${got}`, { details: { expected: digest, actual: got } });
  await store.putBlob(bytes);
  return true;
}
