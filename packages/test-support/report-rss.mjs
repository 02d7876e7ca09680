// Preloaded with `node --import @ferry/test-support/report-rss` (packages/cli/test/cli-bounded.test.ts,
// the link bench's agent): reports the process's peak resident set size on stderr when it exits,
// so a test or a bench can bound the memory of a real run.
// The preload also runs in worker threads (the applier's writer): only the main thread reports.
import { isMainThread } from 'node:worker_threads';

if (isMainThread) process.on('exit', () => process.stderr.write(`ferry-test-maxrss-kb ${process.resourceUsage().maxRSS}\n`));
