/**
 * readOps (bundle/payload.ts) hands body data out as views of the frame's decoded records, not a
 * fresh copy per record: the pieces of thousands of bodies come from a bounded number of buffers
 * (the decoder's output piece and the one buffer that assembles a record spanning pieces), and
 * each piece is right while it is read, before the next is asked for. What an op keeps (header
 * bytes and patches, padding, the tail) is its own copy and stays right after later records.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seededBytes } from '@ferry/test-support';
import { POISON_BYTE, readOps, zstdCompress, zstdDecode, type PayloadOp } from '../src/index.js';
import { chunks, frameOf } from './helpers/payload-frame.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('readOps data pieces', () => {
  it('come from a bounded number of buffers, each right while it is read; kept op fields stay right', async () => {
    // one body of 3.4 records of PAYLOAD_PART (each spans many decoded pieces), then 300 small
    // bodies (many whole records per decoded piece), with literal and patched headers and padding
    const big = seededBytes('big', 3_600_000);
    const small = Array.from({ length: 300 }, (_, i) => seededBytes(`small ${i}`, 1000 + i * 7));
    const header = (i: number): Uint8Array => Buffer.alloc(512, i & 0xff);
    const pad = Buffer.alloc(16, 0x55);
    const tail = seededBytes('tail', 3000);
    const frame = await frameOf((w) => {
      w.entry({ kind: 'literal', bytes: header(1) }, { kind: 'literal', data: big });
      for (const [i, d] of small.entries()) {
        w.entry(i % 2 ? { kind: 'literal', bytes: header(i) } : { kind: 'patched', index: i, patch: Buffer.from([1, 2, 0xaa, 0xbb]) }, { kind: 'literal', data: d }, pad);
      }
      w.tail(tail);
    });
    const buffers = new Set<ArrayBufferLike>();
    const hashes: string[] = [];
    const ops: PayloadOp[] = [];
    for await (const op of readOps(chunks(frame), 1 << 26)) {
      ops.push(op);
      if (op.op !== 'entry' || op.body.kind !== 'literal') continue;
      const h = createHash('sha256');
      for await (const p of op.body.data) {
        buffers.add(p.buffer);
        h.update(p); // read before the next piece is asked for
      }
      hashes.push(h.digest('hex'));
    }
    expect(hashes).toEqual([big, ...small].map(sha));
    // the decoder's output piece and the buffer that assembles a data record spanning pieces
    // (copies made 15 here: one per assembled record, one per decoded piece of whole records)
    expect(buffers.size).toBeLessThanOrEqual(2);
    // the ops' own fields, read after every later record was decoded
    const entries = ops.filter((o) => o.op === 'entry');
    expect(entries).toHaveLength(301);
    for (const [i, o] of entries.slice(1).entries()) {
      if (o.op !== 'entry') continue;
      expect(Buffer.from(o.pad!).equals(pad)).toBe(true);
      if (i % 2) expect(o.header).toEqual({ kind: 'literal', bytes: Buffer.from(header(i)) });
      else expect(o.header).toMatchObject({ kind: 'patched', index: i, patch: Buffer.from([1, 2, 0xaa, 0xbb]) });
    }
    const last = ops.at(-1)!;
    expect(last.op === 'tail' && Buffer.from(last.bytes).equals(tail)).toBe(true);
  });
});

// test/setup-poison.ts turns poisonReusedOutput on for every suite (for core's sources too: the
// switch is per process): a view kept past the next pull reads POISON_BYTE, so a consumer that
// should have copied fails at once
describe('poisoned reused pieces (the test setup)', () => {
  it('zstdDecode overwrites each reused piece once the next is asked for', async () => {
    const body = seededBytes('poison', 1_000_000);
    const kept: Uint8Array[] = [];
    const copies: Buffer[] = [];
    for await (const p of zstdDecode(chunks([zstdCompress(body)]), body.length, { reuseOutput: true })) {
      kept.push(p);
      copies.push(Buffer.from(p));
    }
    expect(Buffer.concat(copies).equals(body)).toBe(true);
    expect(kept.length).toBeGreaterThan(2);
    // every piece but the last was handed out, then overwritten when the next was asked for
    for (const p of kept.slice(0, -1)) expect(p.every((b) => b === POISON_BYTE)).toBe(true);
  });

  it('a body data piece of readOps kept past the next pull is poison, never another record quietly', async () => {
    const bodies = [seededBytes('kept 0', 300_000), seededBytes('kept 1', 300_000)];
    const frame = await frameOf((w) => {
      for (const d of bodies) w.entry({ kind: 'literal', bytes: Buffer.alloc(512, 1) }, { kind: 'literal', data: d });
      w.tail(Buffer.alloc(1024));
    });
    const kept: Uint8Array[] = [];
    for await (const op of readOps(chunks(frame), 1 << 26)) {
      if (op.op !== 'entry' || op.body.kind !== 'literal') continue;
      for await (const p of op.body.data) kept.push(p);
    }
    expect(kept.length).toBeGreaterThan(1);
    expect(Buffer.from(kept[0]!).equals(bodies[0]!.subarray(0, kept[0]!.length))).toBe(false);
    expect(kept[0]!.every((b) => b === POISON_BYTE)).toBe(true);
  });
});
