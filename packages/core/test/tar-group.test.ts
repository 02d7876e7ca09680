import { describe, expect, it } from 'vitest';
import { HeaderGroupParser, TarFiles, headerBlockOffsets, parseHeaderGroup, recomputeChecksums, splitLayer, type SkeletonEntry } from '../src/index.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TAR_END as END, errorCode, tarHeader as header, tarPadded as padded, paxMember } from '@ferry/test-support';

/** An old-GNU sparse header ('S') whose map continues in one extension block. */
function sparseGroup(): Buffer {
  const h = header({ name: 'sparse.bin', type: 'S', size: 512 });
  h[482] = 1; // isextended: an extension block follows
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  const ext = Buffer.alloc(512);
  ext.write('00000001000\0', 0, 'latin1'); // a sparse map entry, not a header
  ext.write('0000000777\0', 148, 'latin1'); // bytes where a header keeps its checksum
  return Buffer.concat([h, ext]);
}

async function splitEntries(tar: Buffer): Promise<SkeletonEntry[]> {
  const entries: SkeletonEntry[] = [];
  async function* one(): AsyncGenerator<Uint8Array> {
    yield tar;
  }
  await splitLayer(one(), {
    async onBody(body) {
      for await (const _ of body) {
        // drained
      }
    },
    onEntry: (e) => void entries.push(e),
  });
  return entries;
}

describe('the header-group parser', () => {
  it('gives the splitter, the in-memory parser and the docker-archive index the same member', async () => {
    const longName = `dir/${'n'.repeat(150)}/file.txt`;
    const group = Buffer.concat([paxMember({ path: longName, linkpath: 'other' }), header({ name: 'short', size: 3 })]);
    const tar = Buffer.concat([group, padded(Buffer.from('abc')), END]);
    const [entry] = await splitEntries(tar);
    expect(entry).toMatchObject({ path: longName, type: '0', size: 3, linkname: 'other' });
    expect(parseHeaderGroup(Buffer.from(entry!.raw))).toEqual({ path: longName, type: '0', size: 3, linkname: 'other' });
    const dir = await mkdtemp(join(tmpdir(), 'ferry-group-'));
    try {
      await writeFile(join(dir, 'a.tar'), tar);
      const files = await TarFiles.open(join(dir, 'a.tar'));
      expect((await files.read(longName, 10)).toString()).toBe('abc');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('asks for exactly the pieces a group is made of', () => {
    const p = new HeaderGroupParser();
    const pax = paxMember({ path: 'x' });
    expect(p.next()).toEqual({ kind: 'header', bytes: 512 });
    p.push(pax.subarray(0, 512));
    expect(p.next()).toEqual({ kind: 'meta', bytes: pax.length - 512 });
    p.push(pax.subarray(512));
    expect(p.next()).toEqual({ kind: 'header', bytes: 512 });
    p.push(header({ name: 'y' }));
    expect(p.next()).toBeUndefined();
    expect(p.headerOffsets).toEqual([0, pax.length]);
    expect(p.result().path).toBe('x');
  });

  it('reads old GNU sparse extension blocks as part of the group, not as headers', () => {
    const group = sparseGroup();
    expect(parseHeaderGroup(group)).toMatchObject({ path: 'sparse.bin', type: 'S', size: 512 });
    expect(headerBlockOffsets(group)).toEqual([0]);
    const fixed = Buffer.from(group);
    expect(recomputeChecksums(fixed, group)).toBe(true);
    expect(fixed.equals(group)).toBe(true); // the extension block's bytes at 148..156 are left alone
  });

  it('recomputes every checksum of a group whose blocks all changed', () => {
    const base = Buffer.concat([paxMember({ mtime: '1700000000' }), header({ name: 'f', size: 1 })]);
    const target = Buffer.concat([paxMember({ mtime: '1800000000' }), header({ name: 'g', size: 1 })]);
    // the target's fields with the base's checksums, as a checksum-free header patch leaves them
    const patched = Buffer.from(target);
    for (const off of headerBlockOffsets(target)) base.copy(patched, off + 148, off + 148, off + 156);
    expect(patched.equals(target)).toBe(false);
    expect(headerBlockOffsets(patched)).toEqual([0, base.length - 512]);
    expect(recomputeChecksums(patched, base)).toBe(true);
    expect(patched.equals(target)).toBe(true);
  });

  it('refuses malformed groups with one code each', () => {
    const member = header({ name: 'f' });
    const pax = paxMember({ path: 'p' });
    expect(errorCode(() => parseHeaderGroup(Buffer.alloc(0)))).toBe('FERRY_ERR_TAR_BAD_HEADER');
    expect(errorCode(() => parseHeaderGroup(Buffer.alloc(512)))).toBe('FERRY_ERR_TAR_BAD_HEADER'); // a zero block
    expect(errorCode(() => parseHeaderGroup(pax))).toBe('FERRY_ERR_TAR_BAD_HEADER'); // metadata, no member
    expect(errorCode(() => parseHeaderGroup(pax.subarray(0, 512)))).toBe('FERRY_ERR_TAR_TRUNCATED'); // ends inside metadata
    expect(errorCode(() => parseHeaderGroup(sparseGroup().subarray(0, 512)))).toBe('FERRY_ERR_TAR_TRUNCATED'); // ends before the extension block
    expect(errorCode(() => parseHeaderGroup(Buffer.concat([member, member])))).toBe('FERRY_ERR_TAR_BAD_HEADER'); // two members
    const flipped = Buffer.from(member);
    flipped[0]! ^= 1;
    expect(errorCode(() => parseHeaderGroup(flipped))).toBe('FERRY_ERR_TAR_BAD_HEADER'); // bad checksum
    const big = header({ name: 'L', type: 'L', size: 2 * 1024 * 1024 });
    expect(errorCode(() => new HeaderGroupParser().push(big))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
  });
});
