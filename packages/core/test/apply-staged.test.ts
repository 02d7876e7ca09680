/**
 * A GROUP whose reference set names bodies this layer wrote (docs/format.md section 5.3) reads
 * them where the layer writer staged them, from its temp files, with no flush (a flush is two
 * syncfs and a fork of the whole process; dep-bump's layer made 45 of them): the inline writer
 * says where they are; the writer thread's sink follows its temp files and waits until the
 * thread has written them. Either way the group decodes to the same bodies and every body ends
 * up stored under its name.
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

describe.each([false, true])('a group referencing bodies of its own layer (writer thread %s)', (thread) => {
  it('decodes against them with no flush, and stores every body', async () => {
    const store = await Store.open(join(work, `store-${thread}`), { create: true });
    const dir = join(store.root, 'pending');
    await mkdir(dir, { recursive: true });
    const table = await BaselineTable.build(store, [], { dir });
    const out = openLayerSink(store, dir, { thread });
    const deltas = new DeltaDecoder(store, (d) => out.stagedPath(d));
    let flushes = 0;
    const flush = out.flush.bind(out);
    out.flush = async () => {
      flushes++;
      await flush();
    };
    try {
      // two bodies of the layer, written and not flushed
      const own = [seededText('own-a', 60_000), seededBytes('own-b', 20_000)];
      const digests: Digest[] = [];
      for (const b of own) digests.push(await out.body(b.length, [b]));
      for (const d of digests) expect(await out.whenStaged(d)).toBe(true);
      for (const d of digests) expect(existsSync(store.contentPath(d))).toBe(false);
      for (const d of digests) expect(out.stagedPath(d)).toBeDefined();
      // a group whose set is both of them (2 and 1 places back), rebuilding two members
      const members = [Buffer.concat([own[0]!.subarray(1_000, 41_000), Buffer.from('an edit\n')]), Buffer.concat([own[1]!.subarray(5_000), own[0]!.subarray(0, 3_000)])];
      const frame = zstdPatchEncode(Buffer.concat(own), Buffer.concat(members));
      const groups = new LayerGroups({ store, table, out, deltas, maxReference: 1 << 20, back: (k) => ({ digest: digests[digests.length - k]!, size: own[own.length - k]!.length }) });
      const body: Extract<DecodedBody, { kind: 'group' }> = { kind: 'group', set: [], earlier: [2, 1], sizes: members.map((m) => m.length), size: members[0]!.length, frameSize: frame.length, data: chunks([frame]) };
      const first = await groups.open(body, 1 << 20);
      expect(first).toEqual({ digest: sha256(members[0]!), size: members[0]!.length });
      expect(groups.next(0)).toEqual({ digest: sha256(members[1]!), size: members[1]!.length });
      groups.finish();
      expect(flushes).toBe(0);
      await out.flush();
      for (const [i, b] of [...own, ...members].entries()) expect(stored(store, sha256(b), b.length).equals(b), `body ${i}`).toBe(true);
    } finally {
      deltas.close();
      await out.close();
      await table.close();
    }
  });
});
