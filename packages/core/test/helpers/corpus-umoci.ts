/**
 * Go part of the skeleton corpus: layers written by umoci (Go's archive/tar), the writer behind
 * most OCI tooling. Three layers: a rich rootfs, a diff that deletes (whiteouts), an opaque insert.
 */
import { chown, link, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { runTool } from '@ferry/test-support';
import { pseudoRandom } from './corpus-tree.js';

/** Names of the umoci corpus members, in layer order. */
export const UMOCI_TARS = ['umoci-rootfs', 'umoci-whiteouts', 'umoci-opaque'] as const;

/** A umoci corpus member name. */
export type UmociTarName = (typeof UMOCI_TARS)[number];

/** Paths in the umoci layers. */
export const UMOCI_FACTS = {
  longFile: `srv/${'g'.repeat(100)}/${'h'.repeat(100)}/${'i'.repeat(60)}.dat`,
  symlink: 'srv/link',
  longTarget: `/${'j'.repeat(120)}/${'l'.repeat(150)}`,
  hardlink: 'srv/hard',
  deletedFile: 'srv/doomed.txt',
  deletedDir: 'srv/doomed-dir',
  opaqueDir: 'srv/opaque',
} as const;

interface OciDescriptor {
  digest: string;
  mediaType?: string;
  annotations?: Record<string, string>;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', ...digest.split(':'));
}

async function populate(rootfs: string): Promise<void> {
  const f = UMOCI_FACTS;
  await mkdir(join(rootfs, f.longFile, '..'), { recursive: true });
  await mkdir(join(rootfs, f.deletedDir), { recursive: true });
  await mkdir(join(rootfs, f.opaqueDir, 'old'), { recursive: true });
  await writeFile(join(rootfs, f.longFile), pseudoRandom(3000, 'umoci-long'));
  await writeFile(join(rootfs, 'srv/big.bin'), pseudoRandom(2 * 1024 * 1024 + 7, 'umoci-big'));
  await writeFile(join(rootfs, 'srv/empty'), '');
  await writeFile(join(rootfs, 'srv/big-ids'), 'ids\n');
  await writeFile(join(rootfs, 'srv/ünïcødé.txt'), 'utf-8 name\n');
  await writeFile(join(rootfs, f.deletedFile), 'to be deleted\n');
  await writeFile(join(rootfs, f.deletedDir, 'inner'), 'inner\n');
  await writeFile(join(rootfs, f.opaqueDir, 'old', 'file'), 'hidden by the opaque layer\n');
  await symlink(f.longTarget, join(rootfs, f.symlink));
  await link(join(rootfs, f.longFile), join(rootfs, f.hardlink));
  await runTool('mkfifo', [join(rootfs, 'srv/fifo')]);
  await runTool('mknod', [join(rootfs, 'srv/null'), 'c', '1', '3']);
  await runTool('setfattr', ['-n', 'user.ferry', '-v', 'from umoci', join(rootfs, 'srv/empty')]);
  // ids beyond 8^7 need a pax record (or base-256); a non-UTF-8 name is raw bytes in a pax path
  await chown(join(rootfs, 'srv/big-ids'), 3_000_000_000, 3_000_000_000);
  await writeFile(Buffer.concat([Buffer.from(join(rootfs, 'srv/latin1-')), Buffer.from([0xe9, 0xff])]), 'non-UTF-8 name\n');
}

/** The umoci layers as tar files, and the diff_ids umoci recorded for them in the image config. */
export interface UmociCorpus {
  tars: Record<UmociTarName, string>;
  diffIds: Record<UmociTarName, string>;
}

/** Builds an OCI layout with umoci under `dir` and returns each layer, gunzipped, as a tar path. */
export async function makeUmociCorpus(dir: string): Promise<UmociCorpus> {
  const layout = join(dir, 'layout');
  const bundle = join(dir, 'bundle');
  const image = `${layout}:t`;
  await runTool('umoci', ['init', '--layout', layout]);
  await runTool('umoci', ['new', '--image', image]);
  await runTool('umoci', ['unpack', '--image', image, bundle]);
  const rootfs = join(bundle, 'rootfs');
  await populate(rootfs);
  await runTool('umoci', ['repack', '--refresh-bundle', '--image', image, bundle]);
  await rm(join(rootfs, UMOCI_FACTS.deletedFile));
  await rm(join(rootfs, UMOCI_FACTS.deletedDir), { recursive: true });
  await writeFile(join(rootfs, 'srv/added.txt'), 'added in layer 2\n');
  await runTool('umoci', ['repack', '--image', image, bundle]);
  const replacement = join(dir, 'replacement');
  await mkdir(replacement);
  await writeFile(join(replacement, 'new'), 'only file left after the opaque layer\n');
  await runTool('umoci', ['insert', '--opaque', '--image', image, replacement, `/${UMOCI_FACTS.opaqueDir}`]);
  return extractLayers(layout, dir);
}

async function extractLayers(layout: string, dir: string): Promise<UmociCorpus> {
  const index = await readJson<{ manifests: OciDescriptor[] }>(join(layout, 'index.json'));
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 't');
  if (desc === undefined) throw new Error('umoci layout has no manifest tagged t');
  const manifest = await readJson<{ config: OciDescriptor; layers: OciDescriptor[] }>(blobPath(layout, desc.digest));
  const config = await readJson<{ rootfs: { diff_ids: string[] } }>(blobPath(layout, manifest.config.digest));
  if (manifest.layers.length !== UMOCI_TARS.length) throw new Error(`umoci image has ${manifest.layers.length} layers, expected ${UMOCI_TARS.length}`);
  const tars: Partial<Record<UmociTarName, string>> = {};
  const diffIds: Partial<Record<UmociTarName, string>> = {};
  for (const [i, layer] of manifest.layers.entries()) {
    if (layer.mediaType !== 'application/vnd.oci.image.layer.v1.tar+gzip') throw new Error(`unexpected umoci layer type ${layer.mediaType}`);
    const name = UMOCI_TARS[i]!;
    const path = join(dir, `${name}.tar`);
    await writeFile(path, gunzipSync(await readFile(blobPath(layout, layer.digest))));
    tars[name] = path;
    diffIds[name] = config.rootfs.diff_ids[i];
  }
  return { tars: tars as Record<UmociTarName, string>, diffIds: diffIds as Record<UmociTarName, string> };
}
