/**
 * Drives a tar through the whole skeleton path the product uses: splitLayer -> SkeletonWriter ->
 * skeleton bytes -> readSkeleton -> reassembleLayer, with bodies kept in a Map by digest.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  SkeletonWriter,
  normalizePath,
  readSkeleton,
  reassembleLayer,
  sha256,
  splitLayer,
  type Digest,
  type SkeletonEntry,
  type SkeletonTrailer,
  type SplitLimits,
} from '../../src/index.js';

/** Chunk sizes a source is cut into, so block and body boundaries fall inside chunks. */
const CHUNK_SIZES = [1, 511, 512, 513, 7, 65536, 100_000, 4096, 3];

/** Yields `data` in irregular chunks (each a copy, as a file stream would give). */
export async function* chunked(data: Uint8Array, sizes: readonly number[] = CHUNK_SIZES): AsyncGenerator<Buffer> {
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield Buffer.from(data.subarray(off, off + n));
    off += n;
  }
}

/** Bodies by digest, as the store would keep them. */
export type Contents = Map<Digest, Buffer>;

/** What one split produced, before any serialisation. */
export interface SplitResult {
  entries: SkeletonEntry[];
  trailer: SkeletonTrailer;
  contents: Contents;
}

/**
 * Splits `data`, storing bodies in a Map and checking each body digest the splitter reports. With
 * `handlerHashes` the handler returns body digests itself (`hashesBodies`, as the store import does).
 */
export async function split(data: Uint8Array, limits?: SplitLimits, options: { handlerHashes?: boolean } = {}): Promise<SplitResult> {
  const contents: Contents = new Map();
  const entries: SkeletonEntry[] = [];
  let lastBody: Digest | undefined;
  const trailer = await splitLayer(
    chunked(data),
    {
      hashesBodies: options.handlerHashes === true,
      async onBody(body, size) {
        const parts: Buffer[] = [];
        for await (const chunk of body) parts.push(Buffer.from(chunk));
        const whole = Buffer.concat(parts);
        if (whole.length !== size) throw new Error(`onBody got ${whole.length} bytes, expected ${size}`);
        lastBody = sha256(whole);
        contents.set(lastBody, whole);
        return lastBody;
      },
      onEntry(entry) {
        if (entry.size > 0 && entry.digest !== lastBody) throw new Error(`entry ${entry.path} digest ${entry.digest} is not its body's ${lastBody}`);
        lastBody = undefined;
        entries.push(entry);
      },
    },
    limits,
  );
  return { entries, trailer, contents };
}

/** Encodes entries and trailer with SkeletonWriter into the on-disk bytes. */
export async function encodeSkeleton(entries: SkeletonEntry[], trailer: SkeletonTrailer): Promise<Buffer> {
  const writer = new SkeletonWriter();
  const parts: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of writer.output) parts.push(chunk as Buffer);
  })();
  for (const e of entries) writer.add(e);
  writer.finish(trailer);
  await collected;
  return Buffer.concat(parts);
}

/** Reassembles a tar from skeleton bytes and contents, collecting it in memory. */
export async function reassembleFromSkeleton(skeleton: Uint8Array, contents: Contents): Promise<{ tar: Buffer; entries: SkeletonEntry[]; trailer: SkeletonTrailer }> {
  const reader = readSkeleton(chunked(skeleton, [4096, 17, 65536]));
  const entries: SkeletonEntry[] = [];
  async function* tee(): AsyncGenerator<SkeletonEntry> {
    for await (const e of reader.entries) {
      entries.push(e);
      yield e;
    }
  }
  const open = async function* (digest: Digest): AsyncGenerator<Uint8Array> {
    const body = contents.get(digest);
    if (body === undefined) throw new Error(`no content ${digest}`);
    // hand the body out in pieces, as a store stream would
    yield* chunked(body, [65536]);
  };
  const parts: Uint8Array[] = [];
  for await (const chunk of reassembleLayer(tee(), () => reader.trailer(), open)) parts.push(chunk);
  return { tar: Buffer.concat(parts), entries, trailer: reader.trailer() };
}

/** Everything a corpus test checks about one tar. */
export interface RoundTrip extends SplitResult {
  original: Digest;
  reassembled: Digest;
  /** First byte where the reassembled tar differs from the original, or -1. */
  firstDiff: number;
  skeletonSize: number;
  /** Entries as read back from the skeleton file (must equal `entries`). */
  decoded: SkeletonEntry[];
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Runs the full round trip over the tar bytes (or the file at a path). */
export async function roundTrip(source: string | Uint8Array, limits?: SplitLimits): Promise<RoundTrip> {
  const data = typeof source === 'string' ? await readFile(source) : source;
  const s = await split(data, limits);
  const skeleton = await encodeSkeleton(s.entries, s.trailer);
  const back = await reassembleFromSkeleton(skeleton, s.contents);
  return {
    ...s,
    original: `sha256:${createHash('sha256').update(data).digest('hex')}`,
    reassembled: sha256(back.tar),
    firstDiff: firstDifference(data, back.tar),
    skeletonSize: skeleton.length,
    decoded: back.entries,
  };
}

/** Looks an entry up by its normalised path (leading "./" and trailing "/" ignored). */
export function entryAt(entries: readonly SkeletonEntry[], path: string): SkeletonEntry | undefined {
  const want = normalizePath(path);
  return entries.find((e) => normalizePath(e.path) === want);
}

/** Where each entry's raw bytes and body start in the tar. */
export function entryOffsets(entries: readonly SkeletonEntry[]): { raw: number; body: number }[] {
  const out: { raw: number; body: number }[] = [];
  let pos = 0;
  for (const e of entries) {
    const raw = pos;
    pos += e.raw.length;
    out.push({ raw, body: pos });
    pos += e.size;
  }
  return out;
}
