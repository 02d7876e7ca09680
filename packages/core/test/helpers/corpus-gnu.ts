/**
 * GNU tar part of the skeleton corpus: one source tree archived in every --format, plus archives
 * that exercise one feature each (sparse versions, base-256 ids, trailing zeros, incremental dumps).
 */
import { access, appendFile, copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool, runTool } from '@ferry/test-support';
import { buildSourceTree, type TreeFacts } from './corpus-tree.js';

/** One generated tar. */
export interface CorpusTar {
  path: string;
  /** What tar printed; formats that cannot represent a member name it here and skip it. */
  warnings: string;
}

/** The GNU tar corpus: tars by name, and the facts about the tree they came from. */
export interface GnuCorpus {
  tree: TreeFacts;
  tars: Record<string, CorpusTar>;
}

/** Names of the GNU tar corpus members, fixed so tests can be declared before generation. */
export const GNU_TARS = [
  'gnu',
  'oldgnu',
  'posix',
  'ustar',
  'v7',
  'gnu-bigids',
  'posix-bigids',
  'posix-sparse-0.0',
  'posix-sparse-0.1',
  'posix-sparse-1.0',
  'posix-global-header',
  'gnu-incremental-label',
  'gnu-blocking-factor-64',
  'gnu-extra-zero-blocks',
  'posix-junk-after-eoa',
] as const;

/** A GNU tar corpus member name. */
export type GnuTarName = (typeof GNU_TARS)[number];

const COMMON = ['--sort=name', '--sparse'];

/** Generates the tree under `work/src` and every GNU tar in GNU_TARS under `work`. */
export async function makeGnuCorpus(work: string): Promise<GnuCorpus> {
  const tar = requireTool('tar');
  const version = (await runTool('tar', ['--version'])).stdout;
  if (!/GNU tar/.test(version)) throw new Error(`skeleton corpus needs GNU tar at ${tar}, found: ${version.split('\n')[0]}`);
  const src = join(work, 'src');
  const tree = await buildSourceTree(src);
  const tars: Record<string, CorpusTar> = {};
  // exit 2 means "some members were not dumped": formats that cannot represent a case say so
  const make = async (name: GnuTarName, args: string[], members: string[] = ['.'], allow = [0]): Promise<void> => {
    const path = join(work, `${name}.tar`);
    const r = await runTool('tar', [...args, '-C', src, '-cf', path, ...members], { allow, cwd: work });
    if (!(await exists(path))) throw new Error(`tar ${args.join(' ')} wrote no archive: ${r.stderr}`);
    tars[name] = { path, warnings: r.stderr };
  };
  // --xattrs would switch gnu format to posix, so only the posix archive carries xattrs
  await make('gnu', ['--format=gnu', ...COMMON]);
  await make('oldgnu', ['--format=oldgnu', ...COMMON]);
  await make('posix', ['--format=posix', ...COMMON, '--xattrs']);
  // --sparse is a GNU extension these formats refuse outright; without it tar stores the holes
  for (const format of ['ustar', 'v7'] as const) await make(format, [`--format=${format}`, '--sort=name'], ['.'], [0, 2]);
  // uid/gid 3e9 and a pre-1970 mtime: base-256 fields in gnu format, pax records in posix format
  const big = ['--owner=big:3000000000', '--group=big:3000000000', '--mtime=@-2500000000'];
  await make('gnu-bigids', ['--format=gnu', ...COMMON, ...big]);
  await make('posix-bigids', ['--format=posix', ...COMMON, ...big]);
  for (const v of ['0.0', '0.1', '1.0'] as const) {
    await make(`posix-sparse-${v}`, ['--format=posix', ...COMMON, `--sparse-version=${v}`], [tree.sparse, 'small.txt', tree.longFile]);
  }
  await make('posix-global-header', ['--format=posix', ...COMMON, '--pax-option=comment=global ferry note'], ['small.txt', 'opq']);
  const snar = join(work, 'incremental.snar');
  await make('gnu-incremental-label', ['--format=gnu', ...COMMON, `--listed-incremental=${snar}`, '--label=ferry volume'], ['opq', 'wh', 'mid']);
  await make('gnu-blocking-factor-64', ['--format=gnu', ...COMMON, '--blocking-factor=64'], ['small.txt', 'empty', 'mid']);
  await extraZeroBlocks(work, tars);
  return { tree, tars };
}

/** Archives whose end is unusual: extra zero blocks, and bytes after the end-of-archive marker. */
async function extraZeroBlocks(work: string, tars: Record<string, CorpusTar>): Promise<void> {
  const gnu = tars.gnu;
  const posix = tars.posix;
  if (gnu === undefined || posix === undefined) throw new Error('gnu and posix tars must exist first');
  const zeros = join(work, 'gnu-extra-zero-blocks.tar');
  await copyFile(gnu.path, zeros);
  await appendFile(zeros, Buffer.alloc(7 * 512));
  tars['gnu-extra-zero-blocks'] = { path: zeros, warnings: '' };
  const junk = join(work, 'posix-junk-after-eoa.tar');
  const body = await readFile(posix.path);
  await writeFile(junk, Buffer.concat([body, Buffer.from('not a tar member, kept verbatim\n'), Buffer.alloc(100)]));
  tars['posix-junk-after-eoa'] = { path: junk, warnings: '' };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
