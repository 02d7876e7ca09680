// Preloaded with `node --import` by packages/cli/test/cli-bounded.test.ts: reports the process's
// peak resident set size on stderr when it exits, so a test can bound the memory of a real run.
process.on('exit', () => process.stderr.write(`ferry-test-maxrss-kb ${process.resourceUsage().maxRSS}\n`));
