/**
 * tar-stream part of the skeleton corpus: the npm packer writes ustar headers and switches to a
 * pax header for a name or link target it cannot fit.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { pseudoRandom } from './corpus-tree.js';

/** Paths the tar-stream tar holds. */
export const TAR_STREAM_FACTS = {
  /** >255 bytes with a 200-byte last component: no ustar split exists, so tar-stream emits pax. */
  longFile: `ts/${'k'.repeat(60)}/${'z'.repeat(200)}.txt`,
  symlink: 'ts/link',
  longTarget: `../${'y'.repeat(150)}`,
  nonAscii: 'ts/ñ-名.txt',
} as const;

/** Writes `tar-stream.tar` into `dir` and returns its path. */
export async function makeTarStreamCorpus(dir: string): Promise<string> {
  const f = TAR_STREAM_FACTS;
  const p = pack();
  const mtime = new Date(1_700_000_000_000);
  p.entry({ name: 'ts/', type: 'directory', mode: 0o755, mtime });
  p.entry({ name: 'ts/hello.txt', mtime }, 'hello from tar-stream\n');
  p.entry({ name: f.longFile, mtime }, pseudoRandom(513, 'tar-stream'));
  p.entry({ name: f.symlink, type: 'symlink', linkname: f.longTarget, mtime });
  p.entry({ name: 'ts/short-link', type: 'symlink', linkname: 'hello.txt', mtime });
  p.entry({ name: f.nonAscii, mtime }, 'utf-8 name\n');
  p.entry({ name: 'ts/empty', mtime }, '');
  p.finalize();
  const parts: Buffer[] = [];
  for await (const chunk of p) parts.push(chunk as Buffer);
  const path = join(dir, 'tar-stream.tar');
  await writeFile(path, Buffer.concat(parts));
  return path;
}
