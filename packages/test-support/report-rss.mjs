// Preloaded with `node --import @ferry/test-support/report-rss` (packages/cli/test/cli-bounded.test.ts,
// the link bench's agent): reports the process's peak resident set size (peak-rss.mjs: its own, not the parent's) on stderr when it exits,
// so a test or a bench can bound the memory of a real run. With FERRY_RSS_DETAIL=1 it also samples
// process.memoryUsage() every 20 ms and reports the sample with the highest RSS (where it went).
// The preload also runs in worker threads (the applier's writer): only the main thread reports.
import { isMainThread } from 'node:worker_threads';
import { peakRss } from './peak-rss.mjs';

if (isMainThread) {
  let peak;
  if (process.env.FERRY_RSS_DETAIL === '1') {
    setInterval(() => {
      const m = process.memoryUsage();
      if (!peak || m.rss > peak.rss) peak = { ...m, at: process.uptime() };
    }, 20).unref();
  }
  process.on('exit', () => {
    process.stderr.write(`ferry-test-maxrss-kb ${Math.round(peakRss() / 1024)}\n`);
    if (peak) process.stderr.write(`ferry-test-rss-peak ${JSON.stringify(Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, k === 'at' ? Number(v.toFixed(2)) : Math.round(v / 2 ** 20)])))}\n`);
  });
}
