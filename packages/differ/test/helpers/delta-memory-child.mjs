// Child of delta-memory.test.ts: `node delta-memory-child.mjs ROOT REF_DIGEST REF_SIZE TARGET_DIGEST
// TARGET_SIZE`: runs one `delta` job (zstd patch-from, bsdiff, level-19 compression of the bsdiff
// delta) on a one-worker patch pool over the store at ROOT and prints one JSON line: the peak RSS
// the job added over the warmed-up pool, and what the job chose.
import { PatchPool } from '@ferry/differ';
import { peakRss } from '@ferry/test-support/peak-rss';

const [root, refDigest, refSize, targetDigest, targetSize] = process.argv.slice(2);
const ref = { digest: refDigest, size: Number(refSize) };
const target = { digest: targetDigest, size: Number(targetSize) };
const pool = new PatchPool(root, 19, { size: 1 });
try {
  // the worker loaded and its first read done, so the figure is the delta job's own
  await pool.run({ kind: 'sketch', body: ref }, 0);
  const before = peakRss();
  const r = await pool.run({ kind: 'delta', ref, target }, 0);
  process.stdout.write(`${JSON.stringify({ peak: peakRss() - before, kind: r.job === 'delta' ? r.kind : r.job })}\n`);
} finally {
  await pool.close();
}
