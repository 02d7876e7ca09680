/**
 * Test repositories generated in code: random chunk bytes in `chunks/<hex>` with their digests and
 * sizes (all the fetcher needs; no real bundle), and checks of a chunk cache.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A chunk as the fetcher knows it: digest and size. */
export interface TestChunk {
  digest: `sha256:${string}`;
  size: number;
}

const sha256 = (b: Uint8Array): `sha256:${string}` => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hexOf = (d: string): string => d.slice(7);

/** A repository directory and what it holds. */
export interface TestRepo {
  dir: string;
  chunks: TestChunk[];
  bytes: Buffer[];
  /** Sum of the chunk sizes. */
  payload: number;
}

/** Writes `count` random chunks of `size` bytes (the last one `lastSize`) under `dir/chunks/`. */
export async function makeRepo(dir: string, count: number, size: number, lastSize = size): Promise<TestRepo> {
  await mkdir(join(dir, 'chunks'), { recursive: true });
  const chunks: TestChunk[] = [];
  const bytes: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = randomBytes(i === count - 1 ? lastSize : size);
    const digest = sha256(b);
    await writeFile(join(dir, 'chunks', hexOf(digest)), b);
    chunks.push({ digest, size: b.length });
    bytes.push(b);
  }
  return { dir, chunks, bytes, payload: bytes.reduce((n, b) => n + b.length, 0) };
}

/** Every chunk of `repo` is in the cache at `cacheDir` under its final name, with the right bytes. */
export async function cacheHolds(cacheDir: string, repo: TestRepo): Promise<boolean> {
  for (const c of repo.chunks) {
    const b = await readFile(join(cacheDir, 'chunks', hexOf(c.digest))).catch(() => undefined);
    if (!b || sha256(b) !== c.digest) return false;
  }
  return true;
}

/** A scratch directory and its removal. */
export async function scratchDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(process.env.TMPDIR ?? '/tmp', `ferry-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
