/**
 * Real test images, written by umoci (Go's archive/tar, gzip layers, OCI whiteouts) and turned
 * into a docker archive by skopeo. Contents are generated in code (STYLE.md "Tests").
 *
 *   v1: one layer: etc/hello, app/big.bin, app/copy.bin (same bytes as big.bin), usr/lib/libx.so
 *   v2: v1's layer plus one that rewrites app/big.bin, deletes etc/hello, adds app/new.txt
 */
import { mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool, seededBytes } from '@ferry/test-support';

/** Sizes of the files in the images, for exact assertions. */
export const SIZES = { hello: 6, big: 200_000, libx: 50_000, big2: 150_000, newTxt: 9 } as const;

/** Paths of the generated sources. */
export interface Fixtures {
  /** OCI layout with tags v1 and v2 (gzip layers). */
  layout: string;
  /** docker archive of v1, tagged app:v1. */
  archive: string;
}

/** Tools the fixtures are made with: tests using them skip (visibly) without these. */
export const FIXTURE_TOOLS = ['umoci', 'skopeo'] as const;

async function umoci(...args: string[]): Promise<void> {
  await runTool('umoci', args);
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
    await writeFile(join(root, 'app/big.bin'), seededBytes('big', SIZES.big));
    await writeFile(join(root, 'app/copy.bin'), seededBytes('big', SIZES.big));
    await writeFile(join(root, 'usr/lib/libx.so'), seededBytes('libx', SIZES.libx));
  });
  await umoci('config', '--image', `${layout}:v1`, '--config.cmd', '/app/big.bin');
  await umoci('tag', '--image', `${layout}:v1`, 'v2');
  await edit(layout, 'v2', work, async (root) => {
    await unlink(join(root, 'etc/hello'));
    await writeFile(join(root, 'app/big.bin'), seededBytes('big2', SIZES.big2));
    await writeFile(join(root, 'app/new.txt'), 'new file\n');
  });
  const archive = join(work, 'app-v1.tar');
  await runTool('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `docker-archive:${archive}:app:v1`]);
  return { layout, archive };
}

/** `skopeo inspect --raw` (the manifest) or `--config` of an image reference. */
export async function skopeoJson(what: '--raw' | '--config', ref: string): Promise<Record<string, unknown>> {
  const { stdout } = await runTool('skopeo', ['inspect', what, ref]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** The config digest of tag `tag` in an OCI layout (as the source image carries it). */
export async function layoutConfigDigest(layout: string, tag: string): Promise<string> {
  const manifest = await skopeoJson('--raw', `oci:${layout}:${tag}`);
  return (manifest.config as { digest: string }).digest;
}
