/**
 * A GROUP whose reference set names bodies this layer wrote (docs/format.md section 5.3) reads
 * them where the layer writer staged them, from its temp files, with no flush (a flush is two
 * syncfs and a fork of the whole process; dep-bump's layer made 45 of them): the inline writer
 * says where they are; the writer thread's sink follows its temp files and waits until the
 * thread has written them. Either way the group decodes to the same bodies and every body ends
 * up stored under its name. A body the store held already is read from the store (the writer
 * dropped its temp file), and a group that starts while the thread is still behind waits for it.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, sha256, zstdPatchEncode, type DecodedBody, type Digest } from '../src/index.js';
import { BaselineTable } from '../src/bundle/baseline.js';
import { DeltaDecoder } from '../src/bundle/apply-delta.js';
import { LayerGroups } from '../src/bundle/apply-refset.js';
import { openLayerSink } from '../src/bundle/apply-sink.js';
import { readContentInto } from '../src/store/content-file.js';
import { seededBytes, seededText } from '@ferry/test-support';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-staged-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function* chunks(list: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* list;
}

/** The stored content `digest` of `size` bytes, read back from its own file. */
function stored(store: Store, digest: Digest, size: number): Buffer {
  const out = Buffer.alloc(size);
  readContentInto(store, digest, out, (n) => Buffer.alloc(n));
  return out;
}

/** A layer's sink and delta decoder on a fresh store, with its flushes counted. */
async function layer(name: string, thread: boolean) {
  const store = await Store.open(join(work, name), { create: true });
  const dir = join(store.root, 'pending');
  await mkdir(dir, { recursive: true });
  const table = await BaselineTable.build(store, [], { dir });
  const out = openLayerSink(store, dir, { thread });
  const deltas = new DeltaDecoder(store, (d) => out.stagedPath(d));
  const counts = { flushes: 0 };
  const flush = out.flush.bind(out);
  out.flush = async () => {
    counts.flushes++;
    await flush();
  };
  const close = async (): Promise<void> => {
    deltas.close();
    await out.close();
    await table.close();
  };
  return { store, table, out, deltas, counts, close };
}

/** A group's two members made from bodies `own`, and its frame: a patch against their concatenation. */
function groupOf(own: Buffer[]): { members: Buffer[]; frame: Buffer } {
  const members = [Buffer.concat([own[0]!.subarray(1_000, 41_000), Buffer.from('an edit\n')]), Buffer.concat([own[1]!.subarray(5_000), own[0]!.subarray(0, 3_000)])];
  return { members, frame: zstdPatchEncode(Buffer.concat(own), Buffer.concat(members)) };
}

/**
 * Decodes a group whose reference set is the layer's last two bodies `own` (2 and 1 places back),
 * rebuilding two members, and checks the members it names. Returns the members.
 */
async function decodeGroup(l: Awaited<ReturnType<typeof layer>>, own: Buffer[], digests: Digest[], group = groupOf(own)): Promise<Buffer[]> {
  const { members, frame } = group;
  const groups = new LayerGroups({ store: l.store, table: l.table, out: l.out, deltas: l.deltas, maxReference: 1 << 20, back: (k) => ({ digest: digests[digests.length - k]!, size: own[own.length - k]!.length }) });
  const body: Extract<DecodedBody, { kind: 'group' }> = { kind: 'group', set: [], earlier: [2, 1], sizes: members.map((m) => m.length), size: members[0]!.length, frameSize: frame.length, data: chunks([frame]) };
  const first = await groups.open(body, 1 << 20);
  expect(first).toEqual({ digest: sha256(members[0]!), size: members[0]!.length });
  expect(groups.next(0)).toEqual({ digest: sha256(members[1]!), size: members[1]!.length });
  groups.finish();
  return members;
}

describe.each([false, true])('a group referencing bodies of its own layer (writer thread %s)', (thread) => {
  it('decodes against them with no flush, and stores every body', async () => {
    const l = await layer(`store-${thread}`, thread);
    try {
      // two bodies of the layer, written and not flushed
      const own = [seededText('own-a', 60_000), seededBytes('own-b', 20_000)];
      const digests: Digest[] = [];
      for (const b of own) digests.push(await l.out.body(b.length, [b]));
      for (const d of digests) expect(await l.out.whenStaged(d)).toBe(true);
      for (const d of digests) expect(existsSync(l.store.contentPath(d))).toBe(false);
      for (const d of digests) expect(l.out.stagedPath(d)).toBeDefined();
      const members = await decodeGroup(l, own, digests);
      expect(l.counts.flushes).toBe(0);
      await l.out.flush();
      for (const [i, b] of [...own, ...members].entries()) expect(stored(l.store, sha256(b), b.length).equals(b), `body ${i}`).toBe(true);
    } finally {
      await l.close();
    }
  });

  it('reads a body the store held already from the store, with no flush', async () => {
    const l = await layer(`store-held-${thread}`, thread);
    try {
      const own = [seededText('held-a', 60_000), seededBytes('held-b', 20_000)];
      // a first layer stored body a; this one writes it again (the writer drops the temp file)
      await l.out.body(own[0]!.length, [own[0]!]);
      await l.out.flush();
      const digests: Digest[] = [];
      for (const b of own) digests.push(await l.out.body(b.length, [b]));
      expect(await l.out.whenStaged(digests[0]!)).toBe(thread); // inline: not staged, stored
      expect(l.out.stagedPath(digests[0]!)).toBeUndefined();
      await decodeGroup(l, own, digests);
      expect(l.counts.flushes).toBe(1);
    } finally {
      await l.close();
    }
  });
});

describe('a group referencing a body the writer thread has not written yet', () => {
  it('waits for the thread, then decodes against the body, with no flush', async () => {
    const l = await layer('store-behind', true);
    try {
      // a large body ahead keeps the thread busy (its level-3 compression) while the group starts;
      // the thread is behind when the group starts on almost every try: a few tries make it sure
      for (let attempt = 0; attempt < 5 && l.out.stagedWaits === 0; attempt++) {
        const own = [seededText(`behind-a-${attempt}`, 60_000), seededBytes(`behind-b-${attempt}`, 20_000)];
        const group = groupOf(own); // before the bodies: nothing between their writing and the group's start
        await l.out.body(8 << 20, [seededText(`ahead-${attempt}`, 8 << 20)]);
        const digests: Digest[] = [];
        for (const b of own) digests.push(await l.out.body(b.length, [b]));
        await decodeGroup(l, own, digests, group);
      }
      expect(l.out.stagedWaits).toBeGreaterThan(0);
      expect(l.counts.flushes).toBe(0);
    } finally {
      await l.close();
    }
  });
});
