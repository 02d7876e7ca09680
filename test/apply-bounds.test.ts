/**
 * Bounded decoding of what a payload carries (DESIGN.md section 8): a patch-from or bsdiff body is
 * checked against its entry's tar header before a byte of it is decoded, what it decodes counts
 * against the layer's size, and a payload frame's window is capped. Every case is a validly signed
 * bundle whose first rebuilt layer's frame lies; it is applied in a child process with a 64 MB heap
 * that reports its exact code and its peak RSS (a decoded bomb would show as hundreds of MB).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAYLOAD_WINDOW_LOG_MAX, SEGMENTED_FORMAT_VERSION, encodeMsgpack, loadBaseline, packSegments, recomputeChecksums, zstdCompress, zstdCompressStream, zstdDecompress, type BaselineEntry } from '@ferry/core';
import { cloneDevice, frameBase, makeApplyFixture, withFrame, type ApplyFixture } from './helpers/apply-fixture.js';
import { ROOT, remove, zstdFrameWindow } from '@ferry/test-support';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./helpers/apply-bounded-child.mjs', import.meta.url));
/** Peak RSS a refused apply stays under (node itself is about 50 MB). */
const RSS_BOUND = 160e6;
const BOMB = 256 * 1024 * 1024;

let fx: ApplyFixture;
/** A baseline entry with a body and a one-block header group: reference and header template. */
let ref: BaselineEntry;
let refIndex: number;

beforeAll(async () => {
  fx = await makeApplyFixture('apply-bounds');
  const table = await loadBaseline(fx.pub, fx.header.baseline);
  refIndex = table.findIndex((e) => e.digest !== undefined && e.header.length === 512 && e.size > 1000 && e.size < 100_000);
  ref = table[refIndex]!;
}, 300_000);

afterAll(async () => {
  await fx?.bundle.dispose();
  if (fx) await remove(fx.work);
});

/** A payload frame of msgpack records, one-shot compressed. */
function frame(...records: unknown[]): Buffer {
  return zstdCompress(Buffer.concat(records.map((r) => encodeMsgpack(r))));
}

/** Applies a frame in the small-heap child; returns its code and peak RSS. */
async function applyFrame(name: string, bytes: Uint8Array, version?: number): Promise<{ code: string; maxRss: number }> {
  const path = await withFrame(frameBase(fx), name, bytes, version);
  const store = await cloneDevice(fx, name);
  const { stdout } = await run(process.execPath, ['--max-old-space-size=64', CHILD, store.root, path, fx.keyFile], { cwd: ROOT });
  return JSON.parse(stdout) as { code: string; maxRss: number };
}

/** The reference entry's header group claiming `size` body bytes (checksum recomputed). */
function headerClaiming(size: number): Buffer {
  const h = Buffer.from(ref.header);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  expect(recomputeChecksums(h, ref.header)).toBe(true);
  return h;
}

/** A zstd frame that decodes to 256 MiB of zeros (a few KB). */
function bomb(): Buffer {
  return zstdCompress(Buffer.alloc(BOMB));
}

describe('bodies checked before they are decoded', () => {
  it('a patch-from body declaring another size than its header: FERRY_ERR_BUNDLE_INVALID, nothing decoded', async () => {
    const patch = bomb();
    const r = await applyFrame('patch-size-lies', frame([1, refIndex, [4, refIndex, BOMB, patch.length]], patch, [2, Buffer.alloc(1024)]));
    expect(r.code).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(r.maxRss).toBeLessThan(RSS_BOUND);
  }, 300_000);

  it('a bsdiff body declaring another size than its header: FERRY_ERR_BUNDLE_INVALID, nothing decoded', async () => {
    // one block: 1 triple that copies nothing from the reference and adds 1 MiB of extra bytes
    const delta = Buffer.concat([Buffer.from([1, 0, 0, 0x80, 0x80, 0x40]), Buffer.alloc(1 << 20)]);
    const r = await applyFrame('bsdiff-size-lies', frame([1, refIndex, [5, refIndex, 1 << 20, delta.length]], delta, [2, Buffer.alloc(1024)]));
    expect(r.code).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(r.maxRss).toBeLessThan(RSS_BOUND);
  }, 300_000);

  it('a body whose header and op agree on more than the layer holds: FERRY_ERR_LIMIT_EXCEEDED, nothing decoded', async () => {
    const patch = bomb();
    const r = await applyFrame('patch-past-layer', frame([1, headerClaiming(BOMB), [4, refIndex, BOMB, patch.length]], patch, [2, Buffer.alloc(1024)]));
    expect(r.code).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(r.maxRss).toBeLessThan(RSS_BOUND);
  }, 300_000);

  it('a literal body declaring another size than its header: FERRY_ERR_BUNDLE_INVALID', async () => {
    const r = await applyFrame('literal-size-lies', frame([1, refIndex, [3, ref.size + 1]], Buffer.alloc(ref.size + 1), [2, Buffer.alloc(1024)]));
    expect(r.code).toBe('FERRY_ERR_BUNDLE_INVALID');
  }, 300_000);
});

describe('segmented bodies checked before anything is allocated', () => {
  it("a segment declaring a frame over its cap (256 MiB for the reference's size): FERRY_ERR_LIMIT_EXCEEDED, nothing read or allocated", async () => {
    const segments = packSegments([{ offset: 0, length: ref.size, size: ref.size, frame: BOMB }]);
    const r = await applyFrame('segment-frame-over-cap', frame([1, refIndex, [8, refIndex, ref.size, segments, BOMB]], Buffer.alloc(1024), [2, Buffer.alloc(1024)]), SEGMENTED_FORMAT_VERSION);
    expect(r.code).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(r.maxRss).toBeLessThan(RSS_BOUND);
  }, 300_000);

  it('segments whose outputs add up to more than the header declares: FERRY_ERR_BUNDLE_INVALID, nothing read or allocated', async () => {
    const segments = packSegments([{ offset: 0, length: ref.size, size: ref.size, frame: 1024 }, { offset: 0, length: ref.size, size: ref.size, frame: 1024 }]);
    const r = await applyFrame('segments-over-body', frame([1, refIndex, [8, refIndex, ref.size, segments, 2048]], Buffer.alloc(2048), [2, Buffer.alloc(1024)]), SEGMENTED_FORMAT_VERSION);
    expect(r.code).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(r.maxRss).toBeLessThan(RSS_BOUND);
  }, 300_000);
});

describe('payload frame window', () => {
  /** `raw` compressed as a stream of unknown size, so the frame declares a window of 2^`windowLog`. */
  async function streamed(raw: Uint8Array, windowLog: number): Promise<Buffer> {
    const z = zstdCompressStream({ compressionLevel: 1, windowLog, checksumFlag: true });
    const parts: Buffer[] = [];
    z.on('data', (c: Buffer) => parts.push(c));
    const done = new Promise((resolve) => z.on('end', resolve));
    z.end(raw);
    await done;
    return Buffer.concat(parts);
  }

  it('a frame whose window is over 2^24 is refused before it is decoded: FERRY_ERR_LIMIT_EXCEEDED', async () => {
    const bytes = await streamed(Buffer.concat([encodeMsgpack([0, 0, 1]), encodeMsgpack([2, Buffer.alloc(1024)])]), 25);
    expect(zstdFrameWindow(bytes)).toBe(2 ** 25);
    const r = await applyFrame('window-25', bytes);
    expect(r.code).toBe('FERRY_ERR_LIMIT_EXCEEDED');
  }, 300_000);

  it('a frame declaring a 2^24 window (the differ\'s cap before it went to 2^23) still applies', async () => {
    const h = fx.header;
    const f = h.layers.find((l) => l.mode === 'rebuild')!;
    const old = (await readFile(fx.bundle.signed.payloadFile)).subarray(f.start, f.end);
    const bytes = await streamed(zstdDecompress(old, 1 << 30), PAYLOAD_WINDOW_LOG_MAX);
    expect(PAYLOAD_WINDOW_LOG_MAX).toBe(24);
    expect(zstdFrameWindow(bytes)).toBe(2 ** 24);
    const r = await applyFrame('window-24', bytes);
    expect(r.code).toBe('applied');
  }, 300_000);
});
