/**
 * The source tree the GNU tar part of the skeleton corpus archives: every shape of member that
 * forces a tar writer off its plain path (long names and link targets, links, special files,
 * sparse data, xattrs, OCI whiteouts, non-UTF-8 names, a multi-megabyte body).
 */
import { createHash } from 'node:crypto';
import { link, mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '@ferry/test-support';

/** Paths in the tree (relative, as strings; non-UTF-8 ones in pathString form). */
export interface TreeFacts {
  /** A regular file whose path is longer than 255 bytes. */
  longFile: string;
  /** A regular file whose path is 101..255 bytes and splits into a ustar prefix and name. */
  midFile: string;
  /** A file whose last path component alone is longer than 100 bytes (ustar cannot store it). */
  wideFile: string;
  /** Symlink name -> target, targets of <100, 101..255 and >255 bytes. */
  symlinks: Record<string, string>;
  /** Hardlink name -> the earlier member it links to (GNU tar archives the first name seen). */
  hardlinks: Record<string, string>;
  /** The sparse file (8 MiB apparent, 30 data extents). */
  sparse: string;
  /** The multi-megabyte file and its size. */
  big: { path: string; size: number };
  /** Non-UTF-8 names as pathString renders them. */
  nonUtf8: string[];
  /** OCI whiteout files. */
  whiteouts: string[];
  /** Directories. */
  dirs: string[];
  /** Files carrying user.* xattrs. */
  xattrFiles: string[];
}

const SEG_A = 'a'.repeat(90);
const SEG_B = 'b'.repeat(90);
const SEG_C = 'c'.repeat(90);

/** Deterministic pseudo-random bytes (sha256 in counter mode) so runs are reproducible. */
export function pseudoRandom(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; off += 32, i++) {
    createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  }
  return out;
}

async function makeSparse(path: string): Promise<void> {
  // 30 extents: more than the 4 an old-GNU header holds, so extension blocks follow it
  const fh = await open(path, 'w');
  try {
    for (let i = 0; i < 30; i++) await fh.write(pseudoRandom(4096, `sparse${i}`), 0, 4096, i * 256 * 1024);
    await fh.truncate(8 * 1024 * 1024);
  } finally {
    await fh.close();
  }
}

/** Builds the tree under `root` (which must not exist yet). Needs root for mknod. */
export async function buildSourceTree(root: string): Promise<TreeFacts> {
  const longDir = join('long', SEG_A, SEG_B, SEG_C);
  const midDir = join('mid', 'm'.repeat(70));
  const facts: TreeFacts = {
    longFile: join(longDir, 'file-in-a-path-longer-than-255-bytes.txt'),
    midFile: join(midDir, `${'n'.repeat(50)}.txt`),
    wideFile: `${'w'.repeat(120)}.txt`,
    symlinks: {
      'sym-short': 'small.txt',
      'sym-150': `${'t'.repeat(140)}/target.txt`,
      'sym-300': `${'../'.repeat(10)}${'u'.repeat(260)}`,
    },
    hardlinks: {},
    sparse: 'sparse.img',
    big: { path: 'big.bin', size: 5 * 1024 * 1024 + 123 },
    nonUtf8: ['dir-\\xff', 'dir-\\xff/f\\xfe\\xfd.txt', `dir-\\xff/${'\\xe9'.repeat(110)}`],
    whiteouts: ['wh/.wh.gone', 'opq/.wh..wh..opq'],
    dirs: ['long', longDir, 'mid', 'opq', 'wh'],
    xattrFiles: ['small.txt', 'empty'],
  };
  await mkdir(join(root, longDir), { recursive: true });
  await mkdir(join(root, midDir), { recursive: true });
  await mkdir(join(root, 'opq'));
  await mkdir(join(root, 'wh'));
  await writeFile(join(root, 'small.txt'), 'hello ferry\n');
  await writeFile(join(root, 'empty'), '');
  await writeFile(join(root, 'ünïcødé-名前.txt'), 'utf-8 name\n');
  await writeFile(join(root, facts.longFile), pseudoRandom(1000, 'long'));
  await writeFile(join(root, facts.midFile), pseudoRandom(512, 'mid'));
  await writeFile(join(root, facts.wideFile), 'wide\n');
  await writeFile(join(root, facts.big.path), pseudoRandom(facts.big.size, 'big'));
  await makeSparse(join(root, facts.sparse));
  for (const w of facts.whiteouts) await writeFile(join(root, w), '');
  await writeFile(join(root, 'opq', 'kept'), 'kept\n');
  for (const [name, target] of Object.entries(facts.symlinks)) await symlink(target, join(root, name));
  // --sort=name archives the earlier name as the file and the later one as a link to it
  facts.hardlinks = { 'zz-hard-long': facts.longFile, 'zz-hard-mid': facts.midFile, 'zz-hard-small': 'small.txt' };
  for (const [name, target] of Object.entries(facts.hardlinks)) await link(join(root, target), join(root, name));
  // non-UTF-8 names: Buffer paths reach the file system as raw bytes
  const rootBytes = Buffer.from(root);
  const bad = (...parts: number[][]): Buffer => Buffer.concat([rootBytes, Buffer.from('/'), ...parts.map((p) => Buffer.from(p))]);
  const dirBytes = [...Buffer.from('dir-'), 0xff];
  await mkdir(bad(dirBytes));
  await writeFile(bad(dirBytes, [0x2f, 0x66, 0xfe, 0xfd, ...Buffer.from('.txt')]), 'latin-1 bytes in the name\n');
  await writeFile(bad(dirBytes, [0x2f, ...new Array<number>(110).fill(0xe9)]), 'long non-UTF-8 name\n');
  await runTool('mkfifo', [join(root, 'fifo')]);
  await runTool('mknod', [join(root, 'chr'), 'c', '1', '3']);
  await runTool('mknod', [join(root, 'blk'), 'b', '7', '0']);
  try {
    await runTool('setfattr', ['-n', 'user.ferry', '-v', 'xattr value', join(root, 'small.txt')]);
    await runTool('setfattr', ['-n', 'user.big', '-v', 'x'.repeat(1500), join(root, 'empty')]);
    await runTool('setfattr', ['-n', 'user.dir', '-v', '1', join(root, 'opq')]);
  } catch (err) {
    throw new Error(`skeleton corpus: ${root} must allow user.* xattrs (tmpfs before Linux 6.6 does not); point TMPDIR at ext4 or xfs`, { cause: err });
  }
  return facts;
}
