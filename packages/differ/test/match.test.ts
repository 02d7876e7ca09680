/**
 * Matching building blocks (DESIGN.md section 5, "Matching"): units (npm package, Debian package,
 * directory, version numbers normalised), content sketches, and the greedy choice of a reference
 * set by sketch coverage.
 */
import { describe, expect, it } from 'vitest';
import { DpkgOwners, Sketcher, chooseReferenceSet, dpkgListPackage, dpkgListPaths, hitsOf, npmPackage, sketchOf, unitOf, versionless, type Candidate } from '@ferry/differ';

/** How many fingerprints two sorted sketches share. */
const shared = (a: Uint32Array, b: Uint32Array): number => hitsOf(a, b).length;
import { seededBytes } from '@ferry/test-support';
import { prose } from './helpers.js';

describe('units', () => {
  it('name npm packages by the innermost node_modules, wherever they are hoisted', () => {
    expect(npmPackage('app/node_modules/typescript/lib/tsc.js')).toBe('typescript');
    expect(npmPackage('app/node_modules/@babel/core/lib/index.js')).toBe('@babel/core');
    expect(npmPackage('app/node_modules/a/node_modules/b/index.js')).toBe('b');
    expect(npmPackage('app/node_modules/stray.js')).toBeUndefined();
    expect(npmPackage('usr/lib/x.so')).toBeUndefined();
    expect(unitOf('app/node_modules/a/node_modules/b/dist/x.js')).toBe(unitOf('srv/node_modules/b/lib/y.js'));
  });

  it('name Debian packages from their dpkg lists, version numbers normalised', () => {
    expect(dpkgListPackage('var/lib/dpkg/info/libssl3:amd64.list')).toBe('libssl3');
    expect(dpkgListPackage('./var/lib/dpkg/info/python3.11-minimal.list')).toBe('python3.11-minimal');
    expect(dpkgListPackage('var/lib/dpkg/info/libssl3:amd64.md5sums')).toBeUndefined();
    expect(dpkgListPaths(Buffer.from('/.\n/usr\n/usr/lib/python3.11/os.py\n'))).toEqual(['usr', 'usr/lib/python3.11/os.py']);
    const base = new DpkgOwners();
    base.add('libpython3.11-stdlib', ['usr/lib/python3.11/os.py']);
    const target = new DpkgOwners(base);
    target.add('libpython3.13-stdlib', ['usr/lib/python3.13/os.py']);
    expect(unitOf('usr/lib/python3.13/os.py', target)).toBe(unitOf('usr/lib/python3.11/os.py', target));
    expect(unitOf('usr/lib/python3.13/os.py', target)).toBe('deb:libpython#-stdlib');
    expect(unitOf('etc/other.conf', target)).toBe('dir:etc');
  });

  it('normalise version numbers in paths', () => {
    expect(versionless('lib/foo-1.2.3/x')).toBe(versionless('lib/foo-1.2.4/x'));
    expect(versionless('usr/lib/python3.11/os.py')).toBe(versionless('usr/lib/python3.13/os.py'));
    expect(versionless('usr/lib/libssl.so.3')).toBe(versionless('usr/lib/libssl.so.4'));
  });
});

describe('sketches', () => {
  it('see the same anchors in any file holding the same bytes, whatever the pieces', () => {
    const a = prose('sk-a', 200_000);
    const whole = sketchOf(a);
    for (const piece of [777, 5, 31, 32]) {
      const s = new Sketcher();
      for (let i = 0; i < a.length; i += piece) s.update(a.subarray(i, i + piece));
      expect([...s.digest()], `pieces of ${piece}`).toEqual([...whole]);
    }
    // about one anchor per 64 bytes
    expect(whole.length).toBeGreaterThan(200_000 / 64 / 2);
    expect(whole.length).toBeLessThan((200_000 / 64) * 2);
    // a file holding a's second half shares about half of a's fingerprints; unrelated bytes none
    const half = sketchOf(Buffer.concat([prose('other', 50_000), a.subarray(100_000)]));
    expect(shared(whole, half) / whole.length).toBeGreaterThan(0.4);
    expect(shared(whole, half) / whole.length).toBeLessThan(0.6);
    expect(shared(whole, sketchOf(seededBytes('noise', 200_000)))).toBeLessThan(5);
  });
});

describe('chooseReferenceSet', () => {
  const cand = (index: number, body: Buffer, prior = false): Candidate => ({ index, size: body.length, sketch: sketchOf(body), prior });
  const old = [prose('part-a', 60_000), prose('part-b', 60_000), prose('part-c', 60_000)];

  it('takes the old files a target was split from, best-covering last, and leaves unrelated ones', () => {
    const target = sketchOf(Buffer.concat([old[2]!, old[0]!.subarray(0, 30_000)]));
    const choice = chooseReferenceSet(target, [cand(0, old[0]!), cand(1, old[1]!), cand(2, old[2]!), cand(3, prose('unrelated', 100_000))], 1 << 20);
    expect(choice.set.map((c) => c.index)).toEqual([0, 2]);
    expect(choice.covered / choice.total).toBeGreaterThan(0.95);
    expect(choice.bytes).toBe(120_000);
  });

  it('stays under the cap and skips a big file that adds too little for its size', () => {
    const target = sketchOf(Buffer.concat([old[0]!, old[1]!]));
    const capped = chooseReferenceSet(target, [cand(0, old[0]!), cand(1, old[1]!)], 100_000);
    expect(capped.set).toHaveLength(1);
    expect(capped.bytes).toBeLessThanOrEqual(100_000);
    const huge = Buffer.concat([old[1]!.subarray(0, 2_000), prose('filler', 2_000_000)]);
    const choice = chooseReferenceSet(target, [cand(0, old[0]!), cand(5, huge)], 1 << 24);
    expect(choice.set.map((c) => c.index)).toEqual([0]);
  });

  it('keeps a tiny same-path file even without fingerprints, and is deterministic', () => {
    const target = sketchOf(Buffer.concat([old[0]!]));
    const tiny = Buffer.from('{"name":"x"}\n');
    const cands = [cand(0, old[0]!), cand(9, tiny, true)];
    const choice = chooseReferenceSet(target, cands, 1 << 20);
    expect(choice.set.map((c) => c.index)).toEqual([9, 0]);
    expect(chooseReferenceSet(target, [...cands].reverse(), 1 << 20)).toEqual(choice);
  });
});
