/**
 * Real test images, written by umoci (Go's archive/tar, gzip layers, OCI whiteouts) and turned
 * into a docker archive by skopeo. Contents are generated in code (STYLE.md "Tests").
 *
 *   v1: one layer: etc/hello, app/big.bin, app/copy.bin (same bytes as big.bin), usr/lib/libx.so
 *   v2: v1's layer plus one that rewrites app/big.bin, deletes etc/hello, adds app/new.txt
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Sizes of the files in the images, for exact assertions. */
export const SIZES = { hello: 6, big: 200_000, libx: 50_000, big2: 150_000, newTxt: 9 } as const;

/** Paths of the generated sources. */
export interface Fixtures {
  /** OCI layout with tags v1 and v2 (gzip layers). */
  layout: string;
  /** docker archive of v1, tagged app:v1. */
  archive: string;
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(seed).digest();
  for (let i = 0; i < n; i += 32) {
    block.copy(out, i);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

async function umoci(...args: string[]): Promise<void> {
  await exec('umoci', args);
}

async function edit(layout: string, tag: string, work: string, change: (rootfs: string) => Promise<void>): Promise<void> {
  const bundle = join(work, `bundle-${tag}`);
  await umoci('unpack', '--rootless', '--image', `${layout}:${tag}`, bundle);
  await change(join(bundle, 'rootfs'));
  await umoci('repack', '--image', `${layout}:${tag}`, bundle);
  await rm(bundle, { recursive: true, force: true });
}

/** Writes the fixtures under `work`. */
export async function makeFixtures(work: string): Promise<Fixtures> {
  const layout = join(work, 'oci');
  await umoci('init', '--layout', layout);
  await umoci('new', '--image', `${layout}:v1`);
  await edit(layout, 'v1', work, async (root) => {
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(join(root, 'app'), { recursive: true });
    await mkdir(join(root, 'usr/lib'), { recursive: true });
    await writeFile(join(root, 'etc/hello'), 'hello\n');
    await writeFile(join(root, 'app/big.bin'), bytes(SIZES.big, 'big'));
    await writeFile(join(root, 'app/copy.bin'), bytes(SIZES.big, 'big'));
    await writeFile(join(root, 'usr/lib/libx.so'), bytes(SIZES.libx, 'libx'));
  });
  await umoci('config', '--image', `${layout}:v1`, '--config.cmd', '/app/big.bin');
  await umoci('tag', '--image', `${layout}:v1`, 'v2');
  await edit(layout, 'v2', work, async (root) => {
    await unlink(join(root, 'etc/hello'));
    await writeFile(join(root, 'app/big.bin'), bytes(SIZES.big2, 'big2'));
    await writeFile(join(root, 'app/new.txt'), 'new file\n');
  });
  const archive = join(work, 'app-v1.tar');
  await exec('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `docker-archive:${archive}:app:v1`]);
  return { layout, archive };
}

/** `skopeo inspect --raw` (the manifest) or `--config` of an image reference. */
export async function skopeoJson(what: '--raw' | '--config', ref: string): Promise<Record<string, unknown>> {
  const { stdout } = await exec('skopeo', ['inspect', what, ref]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** sha256 of a string or bytes, as a digest. */
export function digestOf(b: string | Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** The config digest of tag `tag` in an OCI layout (as the source image carries it). */
export async function layoutConfigDigest(layout: string, tag: string): Promise<string> {
  const manifest = await skopeoJson('--raw', `oci:${layout}:${tag}`);
  return (manifest.config as { digest: string }).digest;
}
