/**
 * The skeleton writer collects records into 64 KiB pieces before they enter its compressor: a
 * skeleton of many small records, with records larger than a piece among them, reads back record
 * for record.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { reusedStreamContextsCreated, sha256, zstdCompressStream, zstdDecompress, type Digest } from '../src/index.js';
import { SkeletonWriter, readSkeleton } from '../src/tar/skeleton-file.js';
import type { SkeletonEntry } from '../src/tar/skeleton.js';
import { seededBytes } from '@ferry/test-support';

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('SkeletonWriter', () => {
  it('round-trips 5,000 records in pieces, records over a piece among them', async () => {
    const entries: SkeletonEntry[] = Array.from({ length: 5000 }, (_, i) => {
      // every 997th record carries a pax header group larger than a piece
      const raw = seededBytes(`raw-${i}`, i % 997 === 5 ? 100_000 + i : 512 + (i % 3) * 512);
      const size = i % 4 === 0 ? 0 : i * 13;
      return { raw, path: `dir/file-${i}`, type: i % 4 === 0 ? '5' : '0', size, digest: size > 0 ? (sha256(raw) as Digest) : undefined, linkname: undefined };
    });
    const w = new SkeletonWriter();
    const bytes = collect(w.output);
    for (const e of entries) {
      w.add(e);
      if (w.backedUp) await w.drain();
    }
    const tail = Buffer.alloc(1024);
    const size = entries.reduce((a, e) => a + e.raw.length + e.size, 0) + tail.length;
    w.finish({ tail, diffId: sha256(tail), size, count: entries.length });
    const r = readSkeleton(Readable.from([await bytes]));
    let i = 0;
    for await (const e of r.entries) {
      const want = entries[i++]!;
      expect(Buffer.from(e.raw).equals(Buffer.from(want.raw)), `record ${i}`).toBe(true);
      expect({ path: e.path, type: e.type, size: e.size, digest: e.digest }).toEqual({ path: want.path, type: want.type, size: want.size, digest: want.digest });
    }
    expect(i).toBe(entries.length);
    expect(r.trailer().count).toBe(entries.length);
  });

  it('compresses one layer\'s skeleton after another with one zstd context, to the same bytes as a stream of its own', async () => {
    const entries: SkeletonEntry[] = Array.from({ length: 300 }, (_, i) => ({ raw: seededBytes(`r-${i}`, 512), path: `f-${i}`, type: '0', size: 0, digest: undefined, linkname: undefined }));
    const write = async (): Promise<Buffer> => {
      const w = new SkeletonWriter();
      const bytes = collect(w.output);
      for (const e of entries) w.add(e);
      const tail = Buffer.alloc(1024);
      w.finish({ tail, diffId: sha256(tail), size: 300 * 512 + 1024, count: 300 });
      return bytes;
    };
    const first = await write();
    const created = reusedStreamContextsCreated();
    expect(created).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) expect((await write()).equals(first)).toBe(true);
    // each skeleton took the context the previous one gave back
    expect(reusedStreamContextsCreated()).toBe(created);
    // the bytes zstd-napi's stream makes with the same parameters (level 6, checksum)
    const raw = zstdDecompress(first, 1 << 24);
    const z = zstdCompressStream({ compressionLevel: 6, checksumFlag: true });
    const again = collect(z);
    z.end(raw);
    expect((await again).equals(first)).toBe(true);
  });
});
