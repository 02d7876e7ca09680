/**
 * Reference sets and groups (docs/format.md section 5.3): the set codec, the checks made before
 * anything is read, the GROUP and MEMBER records of the
 * payload codec, and decoding groups against a real store with the applier's DeltaDecoder
 * (interleaved members, hostile sets and frames, missing references).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FerryError,
  GroupMembers,
  Store,
  MAX_OPEN_GROUPS,
  MAX_PENDING_MEMBERS,
  REFERENCE_SET_MAX_ENTRIES,
  packU32,
  readOps,
  resolveReferenceSet,
  sha256,
  unpackU32,
  zstdPatchEncode,
  type Digest,
  type DecodedBody,
  type GroupContext,
  type ReferencePart,
} from '../src/index.js';
import { ContentBatch } from '../src/store/contents.js';
import { DeltaDecoder } from '../src/bundle/apply-delta.js';
import { chunks, frameOf } from './helpers/payload-frame.js';
import { seededBytes, seededText } from '@ferry/test-support';

async function code(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    return (err as FerryError).code;
  }
}

const bodies = [seededText('ref-a', 30_000), seededBytes('ref-b', 20_000), seededText('ref-c', 25_000)];
const table: ReferencePart[] = [{ digest: sha256(bodies[0]!), size: 30_000 }, { size: 0 }, { digest: sha256(bodies[1]!), size: 20_000 }, { digest: sha256(bodies[2]!), size: 25_000 }];
const lookup = (i: number): ReferencePart | undefined => table[i];
/** Bodies of the layer in the earlier-entries test. */
const produced = [seededText('new-a', 40_000), seededBytes('new-b', 10_000)];
const tiny = Buffer.from('a small reference body');

let work: string;
/** A real store holding every body above: groups decode against it with the applier's DeltaDecoder. */
let store: Store;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-refset-'));
  store = await Store.open(join(work, 'store'), { create: true });
  const batch = new ContentBatch(store);
  for (const b of [...bodies, ...produced, tiny]) await batch.put((async function* () { yield b; })(), b.length);
  await batch.flush();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('reference set codec', () => {
  it('round-trips index and size lists', () => {
    for (const list of [[0], [3, 1, 2], [0xffffffff, 0, 7], Array.from({ length: 1000 }, (_, i) => (i * 7919) % 50_000)]) {
      expect(unpackU32(packU32(list), 'set')).toEqual(list);
    }
  });

  it('refuses empty, ragged and too long lists before allocating', async () => {
    expect(await code(() => unpackU32(new Uint8Array(0), 'set'))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await code(() => unpackU32(new Uint8Array(6), 'set'))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await code(() => unpackU32(new Uint8Array(4 * (REFERENCE_SET_MAX_ENTRIES + 1)), 'set'))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
  });
});

describe('resolveReferenceSet', () => {
  it('returns the parts in set order with their total', () => {
    const r = resolveReferenceSet([3, 0], lookup, 1 << 20);
    expect(r.parts).toEqual([table[3], table[0]]);
    expect(r.size).toBe(55_000);
  });

  it('refuses a repeated, missing or bodiless entry, and a set over the cap, each with one code', async () => {
    expect(await code(() => resolveReferenceSet([0, 2, 0], lookup, 1 << 20))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await code(() => resolveReferenceSet([0, 4], lookup, 1 << 20))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await code(() => resolveReferenceSet([1], lookup, 1 << 20))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await code(() => resolveReferenceSet([0, 2, 3], lookup, 74_999))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(resolveReferenceSet([0, 2, 3], lookup, 75_000).size).toBe(75_000);
  });
});

const HEADER = { kind: 'literal', bytes: Buffer.alloc(512, 1) } as const;

describe('GROUP and MEMBER records', () => {
  it('round-trip through the payload codec, data included', async () => {
    const frame = seededBytes('frame', 2_500_000);
    const z = await frameOf((w) => {
      w.entry(HEADER, { kind: 'group', set: [7, 3, 100_000], sizes: [10, 2_000_000, 5], n: frame.length, frame });
      w.entry(HEADER, { kind: 'group', set: [], earlier: [2, 9], sizes: [1], n: 3, frame: Buffer.from('abc') });
      w.entry(HEADER, { kind: 'member', d: 0 });
      w.entry(HEADER, { kind: 'member', d: 3 });
      w.tail(new Uint8Array(1024));
    });
    const seen: unknown[] = [];
    for await (const op of readOps(chunks(z), 1 << 24)) {
      if (op.op !== 'entry') continue;
      const b = op.body;
      if (b.kind === 'group') {
        const parts: Uint8Array[] = [];
        for await (const p of b.data) parts.push(Buffer.from(p)); // each piece is a view, valid until the next
        expect(Buffer.concat(parts).equals(b.frameSize === 3 ? Buffer.from('abc') : frame)).toBe(true);
        seen.push({ set: b.set, earlier: b.earlier, sizes: b.sizes, size: b.size, frameSize: b.frameSize });
      } else seen.push(b);
    }
    expect(seen).toEqual([
      { set: [7, 3, 100_000], earlier: [], sizes: [10, 2_000_000, 5], size: 10, frameSize: frame.length },
      { set: [], earlier: [2, 9], sizes: [1], size: 1, frameSize: 3 },
      { kind: 'member', d: 0 },
      { kind: 'member', d: 3 },
    ]);
  });

  it('refuses malformed group bodies', async () => {
    const bad = async (body: unknown): Promise<string | undefined> => {
      const z = await frameOf((w) => (w as unknown as { rec(v: unknown): void }).rec([1, Buffer.alloc(512, 1), body]));
      return code(async () => {
        for await (const op of readOps(chunks(z), 1 << 20)) if (op.op === 'entry' && 'data' in op.body) for await (const _ of op.body.data) { /* drain */ }
      });
    };
    expect(await bad([6, 'set', packU32([1]), 10])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await bad([6, packU32([1]), packU32([0]), 10])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await bad([6, packU32([1]), new Uint8Array(3), 10])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await bad([6, packU32([1]), packU32([4]), 0])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await bad([6, packU32([1]), packU32([4]), 10, packU32([0])])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await bad([6, packU32([1]), packU32([4]), 10, 'earlier'])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await bad([7])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await bad([7, -1])).toBe('FERRY_ERR_BUNDLE_INVALID');
  });
});

describe('body kinds and the header version', () => {
  it('refuses a body kind from a later format version than the header declares', async () => {
    const read = async (body: unknown, version: number): Promise<string | undefined> => {
      const z = await frameOf((w) => {
        (w as unknown as { rec(v: unknown): void }).rec([1, Buffer.alloc(512, 1), body]);
        w.tail(new Uint8Array(1024));
      });
      return code(async () => {
        for await (const op of readOps(chunks(z), 1 << 20, { version })) if (op.op === 'entry' && 'data' in op.body) for await (const _ of op.body.data) { /* drain */ }
      });
    };
    const member = [7, 0];
    const segmented = [8, 0, 10, new Uint8Array(0), 1];
    expect(await read(member, 1)).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await read(member, 2)).toBeUndefined();
    expect(await read(segmented, 2)).toBe('FERRY_ERR_BUNDLE_INVALID');
    // a version 1 body (a copy) is read under every version
    expect(await read([0, 3], 1)).toBeUndefined();
  });
});

/** A group context's record of what it did: decodes started, and the bodies written (first or stashed). */
interface Trace {
  decodes: number;
  stored: Map<Digest, Buffer>;
  firsts: Digest[];
}

/**
 * A group context over the real store and DeltaDecoder; put collects bodies by digest. `layer`
 * holds the bodies of the entries before the group (the last one is 1 place back).
 */
function context(maxReference = 1 << 20, layer: ReferencePart[] = [], look = lookup): GroupContext & { trace: Trace } {
  const deltas = new DeltaDecoder(store);
  const trace: Trace = { decodes: 0, stored: new Map(), firsts: [] };
  return {
    trace,
    lookup: look,
    earlier: (k) => (k >= 1 && k <= layer.length ? layer[layer.length - k] : undefined),
    maxReference,
    decode(ref, layerParts, data, frameSize, size, use) {
      trace.decodes++;
      expect(layerParts).toBeLessThanOrEqual(ref.parts.length);
      return deltas.patch(ref, data, frameSize, size, use);
    },
    async put(body, first) {
      const b = Buffer.from(body);
      trace.stored.set(sha256(b), b);
      if (first) trace.firsts.push(sha256(b));
      return sha256(b);
    },
  };
}

function groupBody(set: number[], members: Buffer[], frame: Uint8Array, earlier: number[] = []): Extract<DecodedBody, { kind: 'group' }> {
  return { kind: 'group', set, earlier, sizes: members.map((m) => m.length), size: members[0]!.length, frameSize: frame.length, data: chunks([frame]) };
}

/** Target files built from the reference bodies: a split, an edit, a concatenation. */
const members = [
  Buffer.concat([bodies[0]!.subarray(0, 12_000), Buffer.from('// split here\n')]),
  Buffer.concat([bodies[0]!.subarray(12_000), Buffer.from('export const x = 1;\n')]),
  Buffer.concat([bodies[2]!.subarray(5_000), bodies[1]!.subarray(0, 3_000)]),
];

describe('GroupMembers', () => {
  it('rebuilds every member from one frame against the set, and hands them out in order', async () => {
    const ref = Buffer.concat([bodies[1]!, bodies[0]!, bodies[2]!]);
    const frame = zstdPatchEncode(ref, Buffer.concat(members), 19);
    expect(frame.length).toBeLessThan(2000);
    const ctx = context();
    const g = new GroupMembers();
    const first = await g.open(groupBody([2, 0, 3], members, frame), ctx);
    expect(first).toEqual({ digest: sha256(members[0]!), size: members[0]!.length });
    expect(g.next(0)).toEqual({ digest: sha256(members[1]!), size: members[1]!.length });
    expect(g.next(0).digest).toBe(sha256(members[2]!));
    g.finish();
    for (const m of members) expect(ctx.trace.stored.get(sha256(m))?.equals(m)).toBe(true);
    // the first member enters the layer at the group's entry; the others are stashed for theirs
    expect(ctx.trace.firsts).toEqual([sha256(members[0]!)]);
  });

  it('appends the bodies of earlier entries of the layer to the set', async () => {
    // the layer so far: new-a, an entry without a body, new-b (1 place back)
    const layer: ReferencePart[] = [{ digest: sha256(produced[0]!), size: 40_000 }, { size: 0 }, { digest: sha256(produced[1]!), size: 10_000 }];
    const target = Buffer.concat([produced[0]!.subarray(1000, 30_000), bodies[2]!.subarray(0, 9_000), produced[1]!]);
    const frame = zstdPatchEncode(Buffer.concat([bodies[2]!, produced[0]!, produced[1]!]), target);
    expect(frame.length).toBeLessThan(1000);
    const ctx = context(1 << 20, layer);
    const b = await new GroupMembers().open(groupBody([3], [target], frame, [3, 1]), ctx);
    expect(b.digest).toBe(sha256(target));
    // an earlier entry that does not exist, has no body, or is named twice; the cap counts both parts
    for (const earlier of [[4], [2], [1, 1]]) expect(await code(new GroupMembers().open(groupBody([3], [target], frame, earlier), context(1 << 20, layer)))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await code(new GroupMembers().open(groupBody([3], [target], frame, [3, 1]), context(25_000 + 40_000, layer)))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(await code(new GroupMembers().open(groupBody([], [target], frame, []), context(1 << 20, layer)))).toBe('FERRY_ERR_BUNDLE_INVALID');
  });

  it('keeps interleaved groups apart by distance', async () => {
    const ctx = context();
    const g = new GroupMembers();
    const a = [bodies[0]!.subarray(0, 100), bodies[0]!.subarray(100, 300)];
    const b = [bodies[2]!.subarray(0, 50), bodies[2]!.subarray(50, 70)];
    await g.open(groupBody([0], a, zstdPatchEncode(bodies[0]!, Buffer.concat(a))), ctx);
    await g.open(groupBody([3], b, zstdPatchEncode(bodies[2]!, Buffer.concat(b))), ctx);
    expect(g.next(1).digest).toBe(sha256(a[1]!));
    expect(g.next(0).digest).toBe(sha256(b[1]!));
    expect(await code(() => g.next(0))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await code(() => g.next(5))).toBe('FERRY_ERR_BUNDLE_INVALID');
    g.finish();
  });

  it('refuses a layer that ends with untaken members', async () => {
    const g = new GroupMembers();
    await g.open(groupBody([0], members.slice(0, 2), zstdPatchEncode(bodies[0]!, Buffer.concat(members.slice(0, 2)))), context());
    expect(await code(() => g.finish())).toBe('FERRY_ERR_BUNDLE_INVALID');
  });

  it('refuses a hostile set before reading any body', async () => {
    const ctx = context();
    const frame = zstdPatchEncode(bodies[0]!, members[0]!);
    const refused = async (set: number[], maxReference?: number, sizes?: number[]): Promise<string | undefined> =>
      code(new GroupMembers().open({ ...groupBody(set, [members[0]!], frame), ...(sizes ? { sizes } : {}) }, { ...ctx, maxReference: maxReference ?? ctx.maxReference }));
    expect(await refused([0, 0])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await refused([9])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await refused([1])).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await refused([0, 2], 40_000)).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(await refused([0], undefined, [2 ** 27])).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(await refused([0, 2], 49_999)).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(ctx.trace.decodes).toBe(0);
  });

  it('refuses a frame that decodes to fewer or more bytes than its members, or is too large for them', async () => {
    const frame = zstdPatchEncode(bodies[0]!, members[0]!);
    const short = { ...groupBody([0], [members[0]!], frame), sizes: [members[0]!.length + 10] };
    expect(await code(new GroupMembers().open(short, context()))).toBe('FERRY_ERR_ZSTD_CORRUPT');
    const long = { ...groupBody([0], [members[0]!], frame), sizes: [members[0]!.length - 10] };
    expect(await code(new GroupMembers().open(long, context()))).toBe('FERRY_ERR_ZSTD_CORRUPT');
    // a frame far larger than its members could need is refused before the set is read
    const ctx = context();
    const huge = { ...groupBody([0], [members[0]!.subarray(0, 100)], Buffer.alloc(4096)) };
    expect(await code(new GroupMembers().open(huge, ctx))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(ctx.trace.decodes).toBe(0);
  });

  it('refuses a reference body the store lacks, or one of another size than the table says, as FERRY_ERR_BASELINE_MISSING', async () => {
    const frame = zstdPatchEncode(bodies[0]!, members[0]!);
    const absent = seededText('never-stored', 30_000);
    for (const part of [{ digest: sha256(absent), size: 30_000 }, { digest: table[0]!.digest, size: 29_999 }, { digest: table[0]!.digest, size: 30_001 }]) {
      expect(await code(new GroupMembers().open(groupBody([0], [members[0]!], frame), context(1 << 20, [], () => part)))).toBe('FERRY_ERR_BASELINE_MISSING');
    }
  });

  it(`refuses more than ${MAX_OPEN_GROUPS} groups open at once`, async () => {
    const g = new GroupMembers();
    const two = [tiny.subarray(0, 10), tiny.subarray(10, 20)];
    const frame = zstdPatchEncode(tiny, Buffer.concat(two));
    const ctx = context(1 << 20, [], () => ({ digest: sha256(tiny), size: tiny.length }));
    for (let i = 0; i < MAX_OPEN_GROUPS; i++) await g.open(groupBody([0], two, frame), ctx);
    expect(await code(g.open(groupBody([0], two, frame), ctx))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
  });

  it(`refuses more than ${MAX_PENDING_MEMBERS} members waiting for their entries, before decoding`, async () => {
    const ctx = context(1 << 20, [], () => ({ digest: sha256(tiny), size: tiny.length }));
    const g = new GroupMembers();
    // 1 + 40,000 waiting, then 1 + 30,000 more: over the cap, refused before its frame is read
    const many = (n: number): Buffer[] => Array.from({ length: n }, () => tiny.subarray(0, 1));
    const first = many(40_001);
    await g.open(groupBody([0], first, zstdPatchEncode(tiny, Buffer.concat(first))), ctx);
    const second = many(30_001);
    const body = groupBody([0], second, zstdPatchEncode(tiny, Buffer.concat(second)));
    let read = false;
    body.data = (async function* () {
      read = true;
      yield Buffer.alloc(0);
    })();
    expect(await code(g.open(body, ctx))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(read).toBe(false);
  });
});
