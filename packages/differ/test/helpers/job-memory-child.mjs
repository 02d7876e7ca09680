// Child of job-memory.test.ts: `node job-memory-child.mjs ROOT JOB` runs one patch job (JOB: the
// pool job as JSON, bodies named by digest and size) on a one-worker level-19 patch pool over the
// store at ROOT and prints one JSON line: the peak RSS the job added over the warmed-up pool, and
// what the job chose.
import { PatchPool } from '@ferry/differ';
import { peakRss } from '@ferry/test-support/peak-rss';

const [root, json] = process.argv.slice(2);
const job = JSON.parse(json);
const pool = new PatchPool(root, 19, { size: 1 });
try {
  // the worker loaded and its first read done, so the figure is the job's own
  await pool.run({ kind: 'sketch', body: job.ref }, 0);
  const before = peakRss();
  const r = await pool.run(job, 0);
  const kind = r.job === 'delta' ? r.kind : r.job === 'segmented' ? (r.segments ? 'segmented' : 'literal') : r.job;
  process.stdout.write(`${JSON.stringify({ peak: peakRss() - before, kind })}\n`);
} finally {
  await pool.close();
}
