/**
 * Writing bundles: chunking a payload file, signing the header (release statement by the release
 * key(s), header by the bundle key(s)), and writing either container (docs/format.md section 6).
 * Publisher-only (DESIGN.md section 3); the formats, header encoding and envelope signing it uses
 * are core's.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  FERRY_FILE_MAGIC,
  bundleId,
  compressHeaderDocument,
  digestHex,
  encodeHeader,
  encodeRelease,
  exists,
  sha256,
  signEnvelope,
  writeFileAtomic,
  writeStreamAtomic,
  type Digest,
  type LayerPlan,
  type PrivateKey,
  type ReleaseStatement,
} from '@ferry/core';

/** Default chunk size: 64 KiB (see docs/format.md section 6.1 for why). */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;

/** What a signed header is made from. */
export interface HeaderInput {
  release: ReleaseStatement;
  releaseKeys: PrivateKey[];
  /** A release envelope signed elsewhere (then `releaseKeys` are not used). */
  releaseEnvelope?: Uint8Array | undefined;
  headerKeys: PrivateKey[];
  manifest: Uint8Array;
  config: Uint8Array;
  baseline: Digest[];
  layers: LayerPlan[];
  /** The payload as a file on disk. */
  payloadFile: string;
  /** Bytes of store data the apply will write at most (see BundleHeader.need). */
  need: number;
  /** Format version written (default BUNDLE_FORMAT_VERSION; SEGMENTED_FORMAT_VERSION when the payload holds segmented patches). */
  version?: number | undefined;
  chunkSize?: number;
  created?: number;
  /**
   * Sign the header document as it is (format version 1-3, readable by a ferry from before
   * version 4) instead of zstd-compressed in a version 4 wrapper (the default; docs/format.md
   * section 4.1).
   */
  plainHeader?: boolean | undefined;
}

/** A signed header with its chunk layout. */
export interface SignedBundle {
  id: Digest;
  envelope: Uint8Array;
  payloadFile: string;
  payloadSize: number;
  chunkSize: number;
  chunks: Digest[];
}

async function* fixedChunks(file: string, chunkSize: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let len = 0;
  for await (const c of createReadStream(file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    let data = c;
    while (len + data.length >= chunkSize) {
      const take = chunkSize - len;
      pending.push(data.subarray(0, take));
      yield Buffer.concat(pending);
      pending = [];
      len = 0;
      data = data.subarray(take);
    }
    if (data.length > 0) {
      pending.push(data);
      len += data.length;
    }
  }
  if (len > 0) yield Buffer.concat(pending);
}

/** Hashes the payload's chunks and signs the header. */
export async function signBundle(input: HeaderInput): Promise<SignedBundle> {
  const chunkSize = input.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const chunks: Digest[] = [];
  let payloadSize = 0;
  for await (const c of fixedChunks(input.payloadFile, chunkSize)) {
    chunks.push(sha256(c));
    payloadSize += c.length;
  }
  const releaseEnvelope = input.releaseEnvelope ?? signEnvelope('release', encodeRelease(input.release), input.releaseKeys);
  const doc = encodeHeader({
    releaseEnvelope,
    manifest: input.manifest,
    config: input.config,
    baseline: input.baseline,
    layers: input.layers,
    payloadSize,
    chunkSize,
    chunks,
    need: input.need,
    version: input.version,
    created: input.created ?? input.release.created,
  });
  // docs/format.md section 4.1: the signed bytes are the document zstd-compressed (version 4)
  const envelope = signEnvelope('header', input.plainHeader ? doc : compressHeaderDocument(doc), input.headerKeys);
  return { id: bundleId(envelope), envelope, payloadFile: input.payloadFile, payloadSize, chunkSize, chunks };
}

/** Writes a single `.ferry` file (atomic). */
export async function writeFerryFile(path: string, b: SignedBundle): Promise<void> {
  const prefix = Buffer.alloc(12);
  FERRY_FILE_MAGIC.copy(prefix, 0);
  prefix.writeUInt32BE(b.envelope.length, 8);
  async function* all(): AsyncGenerator<Uint8Array> {
    yield prefix;
    yield b.envelope;
    for await (const c of createReadStream(b.payloadFile)) yield c as Buffer;
  }
  await writeStreamAtomic(path, all());
}

/**
 * Adds a bundle to a repository directory: chunks first (each atomic, shared ones skipped), the
 * header last, so a reader never sees a header whose chunks are not all there.
 */
export async function writeBundleDir(dir: string, b: SignedBundle): Promise<{ chunksWritten: number; chunksShared: number }> {
  await mkdir(join(dir, 'chunks'), { recursive: true });
  await mkdir(join(dir, 'headers'), { recursive: true });
  let written = 0;
  let shared = 0;
  let i = 0;
  for await (const c of fixedChunks(b.payloadFile, b.chunkSize)) {
    const path = join(dir, 'chunks', digestHex(b.chunks[i++]!));
    if (await exists(path)) shared++;
    else {
      await writeFileAtomic(path, c, { syncDir: false, mkdir: false });
      written++;
    }
  }
  const fh = await open(join(dir, 'chunks'), 'r');
  await fh.sync().finally(() => fh.close());
  await writeFileAtomic(join(dir, 'headers', digestHex(b.id)), b.envelope);
  return { chunksWritten: written, chunksShared: shared };
}
