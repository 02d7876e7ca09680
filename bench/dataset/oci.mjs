// Layer tars from directory trees (GNU tar, deterministic) and a minimal OCI image layout writer
// (image-spec image-layout.md) with uncompressed layers hard-linked from the dataset's layer files.
import { createHash } from 'node:crypto';
import { link, mkdir, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSize, gzipSize, run, sha256File } from '../lib/util.mjs';

/**
 * Tars the tree at `root` into `out` as a container layer: names without `./`, sorted, PAX format
 * without atime/ctime records, numeric owners. `mtime` (unix seconds) forces every entry's mtime
 * (a no-cache rebuild); `rootOwned` sets owner 0:0 (COPY without --chown).
 */
export async function tarLayer(root, out, { mtime, rootOwned = false } = {}) {
  const top = (await readdir(root)).sort();
  const args = ['--sort=name', '--format=posix', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '--numeric-owner'];
  if (rootOwned) args.push('--owner=0', '--group=0');
  if (mtime !== undefined) args.push(`--mtime=@${mtime}`);
  await rm(out, { force: true });
  await run('tar', [...args, '-cf', out, '-C', root, ...top]);
  const { stdout } = await run('bash', ['-o', 'pipefail', '-c', 'tar -tf "$1" | wc -l', 'count', out]);
  return { file: out, diffId: await sha256File(out), size: await fileSize(out), gzip6: await gzipSize(out, 6), entries: Number(stdout.toString().trim()) };
}

function blobDigest(bytes) {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function putBlob(dir, bytes) {
  const digest = blobDigest(bytes);
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/**
 * Writes an OCI layout at `dir` holding `images`: [{ tag, created, layers: [{file, diffId, size,
 * createdBy}], cmd, env, workingDir }]. Layer blobs are uncompressed (diff_id = digest) and
 * hard-linked from their files.
 */
export async function writeLayout(dir, images) {
  await rm(dir, { recursive: true, force: true });
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] };
  const linked = new Set();
  for (const img of images) {
    for (const l of img.layers) {
      const hex = l.diffId.slice(7);
      if (linked.has(hex)) continue;
      linked.add(hex);
      await link(l.file, join(blobs, hex)).catch(() => copyFile(l.file, join(blobs, hex)));
    }
    const created = new Date(img.created * 1000).toISOString();
    const config = {
      created,
      architecture: 'amd64',
      os: 'linux',
      config: { Env: img.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: img.cmd ?? ['/bin/bash'], WorkingDir: img.workingDir ?? '/' },
      rootfs: { type: 'layers', diff_ids: img.layers.map((l) => l.diffId) },
      history: img.layers.map((l) => ({ created, created_by: l.createdBy ?? 'ADD layer /' })),
    };
    const c = await putBlob(dir, Buffer.from(JSON.stringify(config)));
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
      layers: img.layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.diffId, size: l.size })),
    };
    const m = await putBlob(dir, Buffer.from(JSON.stringify(manifest)));
    index.manifests.push({ mediaType: manifest.mediaType, ...m, platform: { architecture: 'amd64', os: 'linux' }, annotations: { 'org.opencontainers.image.ref.name': img.tag } });
  }
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

/** Concatenates layer tars into one file (the flattened reference input for zstd/xdelta3/bsdiff). */
export async function concatLayers(files, out) {
  await rm(out, { force: true });
  await run('bash', ['-c', 'out="$1"; shift; cat "$@" > "$out"', 'cat', out, ...files]);
  return fileSize(out);
}
