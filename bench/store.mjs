// Store bench (issue "foundation" targets): import and export throughput and peak RSS at two
// image sizes, each ferry operation in a fresh child process, beside reference tools run on the
// same bytes in the same run (tar -xf / tar -cf, gzip -1 / gunzip, sha256sum).
// Targets shown, not asserted: import >= 100 MB/s, export >= 200 MB/s, peak RSS < 200 MB at both
// sizes. Throughput is MB/s (10^6 bytes) of uncompressed layer tar bytes.
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCH_DIR, MiB, cacheDir, cleanWork, fileSize, freshDir, inChild, q, readJson, run, timed, timedShell, writeJson } from './lib/util.mjs';
import { bytes, check, printTable, rate, ratio, secs } from './lib/table.mjs';

export const TARGETS = { importMBps: 100, exportMBps: 200, maxRssBytes: 200e6 };

/** Short hash of imagegen's built code, so a changed generator regenerates the cached images. */
async function imagegenHash() {
  const dist = join(BENCH_DIR, '..', 'packages', 'imagegen', 'dist');
  const h = createHash('sha256');
  for (const f of (await readdir(dist)).filter((n) => n.endsWith('.js')).sort()) h.update(f).update(await readFile(join(dist, f)));
  return h.digest('hex').slice(0, 12);
}

/** Generates (or finds cached) an OCI layout holding `v1` of `sizeMiB` MiB with the given layer compression. */
async function generated(sizeMiB, compression) {
  const dir = join(cacheDir(), 'store', `gen-${sizeMiB}m-${compression}-seed1-${await imagegenHash()}`);
  const meta = await readJson(join(dir, 'bench-meta.json'));
  if (meta) return meta;
  const { writeImagePair } = await import('@ferry/imagegen');
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  process.stderr.write(`store: generating ${sizeMiB} MiB image (${compression} layers)...\n`);
  const t0 = performance.now();
  const g = await writeImagePair(tmp, { targetBytes: sizeMiB * MiB, seed: 1, layerCompression: compression, tags: ['v1'] });
  const m = g.images.v1.manifests[0];
  const layers = m.layers.map((l) => ({ diffId: l.diffId, size: l.size, blobSize: l.blobSize, file: `blobs/sha256/${l.digest.slice(7)}` }));
  const info = { sizeMiB, compression, layers, uncompressedBytes: layers.reduce((a, l) => a + l.size, 0), generateSeconds: (performance.now() - t0) / 1000 };
  await writeJson(join(tmp, 'bench-meta.json'), { ...info, dir });
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  // drop images of the same size made by an older imagegen
  const prefix = `gen-${sizeMiB}m-${compression}-seed1-`;
  for (const n of await readdir(join(cacheDir(), 'store'))) if (n.startsWith(prefix) && join(cacheDir(), 'store', n) !== dir) await rm(join(cacheDir(), 'store', n), { recursive: true, force: true });
  return { ...info, dir };
}

const syncDisk = () => run('sync', []);

/** Reference tools on the same bytes: tar -xf of every layer, tar -cf of the result, gzip -1/gunzip/sha256sum of a layer. */
async function references(img, work) {
  const files = img.layers.map((l) => join(img.dir, l.file));
  const tree = join(work, 'tree');
  await run('mkdir', ['-p', tree]);
  await syncDisk();
  const xf = await timedShell(`for f in ${files.map(q).join(' ')}; do tar -xf "$f" -C ${q(tree)} || exit 1; done`);
  await syncDisk();
  const outTar = join(work, 'tree.tar');
  const cf = await timed('tar', ['-cf', outTar, '-C', tree, '.']);
  const cfBytes = await fileSize(outTar);
  await rm(outTar, { force: true });
  await rm(tree, { recursive: true, force: true });
  const largest = img.layers.reduce((a, l) => (l.size > a.size ? l : a));
  const largestFile = join(img.dir, largest.file);
  const gzFile = join(work, 'layer.gz');
  const gz = await timed('gzip', ['-1', '-n', '-c', largestFile], { stdout: gzFile });
  const gunzip = await timed('gunzip', ['-c', gzFile], { stdout: '/dev/null' });
  await rm(gzFile, { force: true });
  const zstd3 = await timed('zstd', ['-3', '-T1', '-q', '-c', largestFile], { stdout: '/dev/null' });
  const sha = await timed('sha256sum', files);
  // what import and export each amount to with standard tools: unpack (or pack) plus hashing the
  // layer bytes once, so every ferry figure has a ratio against the same bytes in the same run
  const sum = (a, b) => ({ seconds: a.seconds + b.seconds, maxRss: Math.max(a.maxRss, b.maxRss), bytes: img.uncompressedBytes });
  return {
    importRef: sum(xf, sha),
    exportRef: sum(cf, sha),
    tarXf: { seconds: xf.seconds, maxRss: xf.maxRss, bytes: img.uncompressedBytes },
    tarCf: { seconds: cf.seconds, maxRss: cf.maxRss, bytes: cfBytes },
    gzip1: { seconds: gz.seconds, maxRss: gz.maxRss, bytes: largest.size },
    gunzip: { seconds: gunzip.seconds, maxRss: gunzip.maxRss, bytes: largest.size },
    sha256sum: { seconds: sha.seconds, maxRss: sha.maxRss, bytes: img.uncompressedBytes },
    zstd3: { seconds: zstd3.seconds, maxRss: zstd3.maxRss, bytes: largest.size },
  };
}

/** Reference for a compressed import: gunzip piped into tar -x for every layer, plus sha256sum of the uncompressed tars. */
async function gzipReference(gimg, img, work) {
  const tree = join(work, 'tree-gz');
  await run('mkdir', ['-p', tree]);
  await syncDisk();
  const files = gimg.layers.map((l) => join(gimg.dir, l.file));
  const unpack = await timedShell(`for f in ${files.map(q).join(' ')}; do gunzip -c "$f" | tar -xf - -C ${q(tree)} || exit 1; done`);
  await rm(tree, { recursive: true, force: true });
  const sha = await timed('sha256sum', img.layers.map((l) => join(img.dir, l.file)));
  return { seconds: unpack.seconds + sha.seconds, maxRss: Math.max(unpack.maxRss, sha.maxRss), bytes: gimg.uncompressedBytes };
}

/** Imports, exports (OCI and docker archive) and the references for one generated image. */
async function measureSize(sizeMiB, withGzip) {
  const img = await generated(sizeMiB, 'none');
  const work = await freshDir('store', `${sizeMiB}m`);
  const store = join(work, 'store');
  await syncDisk();
  const imp = await inChild('import', { layout: img.dir, ref: 'v1', store, as: 'bench:v1' });
  await syncDisk();
  const oci = await inChild('export-oci', { store, ref: 'bench:v1', out: join(work, 'oci'), compression: 'none' });
  await rm(join(work, 'oci'), { recursive: true, force: true });
  await syncDisk();
  const docker = await inChild('export-docker', { store, ref: 'bench:v1', out: '/dev/null' });
  await rm(store, { recursive: true, force: true });
  const refs = await references(img, work);
  let gzipImport;
  if (withGzip) {
    const gimg = await generated(sizeMiB, 'gzip');
    await syncDisk();
    const r = await inChild('import', { layout: gimg.dir, ref: 'v1', store: join(work, 'store-gz'), as: 'bench:v1' });
    gzipImport = { ...r, blobBytes: gimg.layers.reduce((a, l) => a + l.blobSize, 0) };
    refs.gzipImportRef = await gzipReference(gimg, img, work);
    await rm(join(work, 'store-gz'), { recursive: true, force: true });
  }
  await cleanWork('store', `${sizeMiB}m`);
  return { sizeMiB, layers: img.layers.length, uncompressedBytes: img.uncompressedBytes, files: imp.contentsAdded + imp.contentsDeduplicated, import: imp, gzipImport, exportOci: { ...oci, bytes: img.uncompressedBytes }, exportDocker: { ...docker, bytes: img.uncompressedBytes }, refs };
}

function mbps(b, s) {
  return s ? b / 1e6 / s : 0;
}

function printSize(r) {
  const n = r.uncompressedBytes;
  const row = (name, m, b, refName, refM, target) => [name, secs(m.seconds), m.cpuSeconds ? secs(m.cpuSeconds) : '', rate(b, m.seconds), refM ? `${ratio(mbps(b, m.seconds), mbps(refM.bytes, refM.seconds))} of ${refName}` : '', m.maxRss ? bytes(m.maxRss) : '-', target ?? ''];
  const t = TARGETS;
  const rssOk = (m) => m.maxRss < t.maxRssBytes;
  const rows = [
    row('ferry import (tar layers)', r.import, r.import.bytesRead, 'tar -xf + sha256sum', r.refs.importRef ?? r.refs.tarXf, `>=${t.importMBps} MB/s ${check(mbps(r.import.bytesRead, r.import.seconds) >= t.importMBps)}; RSS ${check(rssOk(r.import))}`),
  ];
  if (r.gzipImport) rows.push(row(`ferry import (gzip layers, ${bytes(r.gzipImport.blobBytes)})`, r.gzipImport, r.gzipImport.bytesRead, 'gunzip | tar -xf + sha256sum', r.refs.gzipImportRef ?? r.refs.gunzip, `>=${t.importMBps} MB/s ${check(mbps(r.gzipImport.bytesRead, r.gzipImport.seconds) >= t.importMBps)}; RSS ${check(rssOk(r.gzipImport))}`));
  rows.push(
    row('ferry export OCI (uncompressed)', r.exportOci, n, 'tar -cf + sha256sum', r.refs.exportRef ?? r.refs.tarCf, `>=${t.exportMBps} MB/s ${check(mbps(n, r.exportOci.seconds) >= t.exportMBps)}; RSS ${check(rssOk(r.exportOci))}`),
    row('ferry export docker archive > /dev/null', r.exportDocker, n, 'tar -cf + sha256sum', r.refs.exportRef ?? r.refs.tarCf, `>=${t.exportMBps} MB/s ${check(mbps(n, r.exportDocker.seconds) >= t.exportMBps)}; RSS ${check(rssOk(r.exportDocker))}`),
    row('ref: tar -xf + sha256sum (import reference)', r.refs.importRef, r.refs.importRef.bytes),
    ...(r.refs.gzipImportRef ? [row('ref: gunzip | tar -xf + sha256sum (gzip import reference)', r.refs.gzipImportRef, r.refs.gzipImportRef.bytes)] : []),
    row('ref: tar -cf + sha256sum (export reference)', r.refs.exportRef, r.refs.exportRef.bytes),
    row('ref: tar -xf (every layer)', r.refs.tarXf, r.refs.tarXf.bytes),
    row('ref: tar -cf (extracted tree)', r.refs.tarCf, r.refs.tarCf.bytes),
    row(`ref: gzip -1 (largest layer ${bytes(r.refs.gzip1.bytes)})`, r.refs.gzip1, r.refs.gzip1.bytes),
    row('ref: gunzip (same layer)', r.refs.gunzip, r.refs.gunzip.bytes),
    row('ref: sha256sum (every layer)', r.refs.sha256sum, r.refs.sha256sum.bytes),
  );
  if (r.refs.zstd3) rows.push(row('ref: zstd -3 -T1 (largest layer)', r.refs.zstd3, r.refs.zstd3.bytes));
  printTable(
    `store: ${r.sizeMiB} MiB image (${r.layers} layers, ${bytes(n)} uncompressed, ${r.files} files)`,
    ['operation', 'time', 'CPU', 'throughput', 'vs reference', 'peak RSS', 'target'],
    rows,
    ['throughput = MB/s (10^6 B) of uncompressed layer bytes; each ferry row is a fresh node process (peak RSS includes node itself, ~45 MB); page cache warm',
      'CPU = user+sys seconds of the ferry process and its threads (CPU < time: waiting on I/O, fsync)'],
  );
}

/** Runs the store bench. `sizes` in MiB (default 512 and 1024); the gzip import runs at the first size. */
export async function runStore({ sizes = [512, 1024] } = {}) {
  const results = [];
  for (const [i, s] of sizes.entries()) {
    process.stderr.write(`store: measuring ${s} MiB image...\n`);
    const r = await measureSize(s, i === 0);
    printSize(r);
    results.push(r);
  }
  if (results.length > 1) {
    const rss = results.map((r) => Math.max(r.import.maxRss, r.exportOci.maxRss, r.exportDocker.maxRss));
    console.log(`\n  peak RSS across sizes: ${results.map((r, i) => `${r.sizeMiB} MiB -> ${bytes(rss[i])}`).join(', ')} (target: < 200 MB and independent of image size)`);
  }
  return { targets: TARGETS, sizes: results };
}
