// One measured ferry operation in a fresh process: `node child.mjs OP 'JSON params'`.
// Prints `RESULT {json}` with the operation's own wall time (module loading excluded) and the
// process's peak RSS (@ferry/test-support/peak-rss: VmHWM, the whole process life, without the
// bench process's pages that maxRSS counts between fork and exec).
import { createWriteStream } from 'node:fs';
import { peakRss } from '@ferry/test-support/peak-rss';
import { stat } from 'node:fs/promises';
import { Store, applyBundle, exportDockerArchive, exportOci, importImage, openBundle, openImage, parsePrivateKey, parsePublicKey, rolePolicy } from '@ferry/core';
import { createBundle, writeFerryFile } from '@ferry/differ';
import { capYoungGeneration } from '@ferry/cli/memory';

const ops = {
  /** Imports `ref` of the layout at `layout` into `store` as `as`. */
  async import({ layout, ref, store, as }) {
    const s = await Store.open(store, { create: true });
    const source = await openImage(layout, { ref });
    const r = await importImage(s, source, as);
    return { bytesRead: r.bytesRead, bytesStored: r.bytesStored, contentsAdded: r.contentsAdded, contentsDeduplicated: r.contentsDeduplicated, layers: r.layers.length, manifestDigest: r.manifestDigest };
  },

  /** Exports `ref` from `store` as an OCI layout at `out`. */
  async 'export-oci'({ store, ref, out, compression }) {
    const s = await Store.open(store);
    const r = await exportOci(s, ref, out, { compression });
    return { manifestDigest: r.manifestDigest };
  },

  /** Streams `ref` from `store` as a docker archive to `out` (/dev/null for the bench). */
  async 'export-docker'({ store, ref, out }) {
    const s = await Store.open(store);
    const sink = createWriteStream(out);
    await exportDockerArchive(s, ref, sink);
    return { written: sink.bytesWritten };
  },

  /** Computes the bundle from `from` to `to` in `store` and writes it as one .ferry file at `out`. */
  async bundle({ store, from, to, out, privatePem, channel, release }) {
    const s = await Store.open(store);
    const key = parsePrivateKey(privatePem);
    const now = Math.floor(Date.now() / 1000);
    const b = await createBundle(s, { from, to, channel, release, expires: now + 30 * 86400, releaseKeys: [key], headerKeys: [key] });
    try {
      await writeFerryFile(out, b.signed);
    } finally {
      await b.dispose();
    }
    return {
      fileSize: (await stat(out)).size,
      payloadSize: b.signed.payloadSize,
      headerSize: b.signed.envelope.length,
      chunks: b.signed.chunks.length,
      layers: b.layers.map((l) => ({ diffId: l.diffId, size: l.size, mode: l.mode, payload: l.end - l.start, gzipSize: l.gzipSize })),
      stats: b.stats,
    };
  },

  /** Applies the .ferry file at `bundle` to `store` (which holds the baseline), with the V8 settings `ferry apply` runs with. */
  async apply({ store, bundle, publicPem, as }) {
    capYoungGeneration();
    const s = await Store.open(store);
    const pub = parsePublicKey(publicPem);
    const policy = rolePolicy([pub]);
    const r = await applyBundle(s, await openBundle(bundle), { trust: { release: policy, header: policy }, ref: as });
    return { manifestDigest: r.manifestDigest, payloadBytes: r.payloadBytes, layers: r.layers };
  },
};

const [op, json] = process.argv.slice(2);
const fn = ops[op];
if (!fn) {
  console.error(`unknown op ${op}`);
  process.exit(2);
}
const t0 = performance.now();
const result = await fn(JSON.parse(json ?? '{}'));
const seconds = (performance.now() - t0) / 1000;
const ru = process.resourceUsage();
console.log(`RESULT ${JSON.stringify({ ...result, seconds, maxRss: peakRss(), cpuSeconds: (ru.userCPUTime + ru.systemCPUTime) / 1e6 })}`);
