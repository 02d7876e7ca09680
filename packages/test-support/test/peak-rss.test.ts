/**
 * The peak RSS the report-rss preload prints is the child's own: a child spawned by a big process
 * used to report the parent's RSS (maxRSS counts the parent's pages between fork and exec), so
 * every bound a test or a bench put on a child's memory was at least its parent's size.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPORT_RSS = createRequire(import.meta.url).resolve('@ferry/test-support/report-rss');

describe('report-rss', () => {
  it('reports the child’s own peak, not its parent’s RSS at the fork', async () => {
    const ballast = Buffer.alloc(400 * 2 ** 20, 1); // this process: over 400 MB resident
    expect(process.memoryUsage().rss).toBeGreaterThan(400 * 2 ** 20);
    const { stderr } = await run(process.execPath, ['--import', REPORT_RSS, '-e', 'Buffer.alloc(20 * 2 ** 20, 1)']);
    const kb = Number(/^ferry-test-maxrss-kb (\d+)$/m.exec(stderr)?.[1]);
    // node itself and the 20 MiB it touched: well under the parent's 400 MB (maxRSS said > 400 MB)
    expect(kb * 1024).toBeGreaterThan(20 * 2 ** 20);
    expect(kb * 1024).toBeLessThan(200 * 2 ** 20);
    expect(ballast[ballast.length - 1]).toBe(1);
  }, 60_000);
});
