/**
 * `ferry demo` (what `npm run demo` runs) on a faster link so that it stays quick: it must end
 * with the device's image ID equal to the publisher's v2 after one kill -9 of the agent, report
 * the bytes beside docker pull's, and leave nothing behind.
 */
import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ensureBuilt, ferry } from '@ferry/test-support';

// about a minute and a half on a busy machine: CI runs it (FERRY_SLOW_TESTS=1)
describe.skipIf(!process.env.FERRY_SLOW_TESTS)('ferry demo', () => {
  it('updates the device over linksim through a kill -9, and cleans up', async () => {
    await ensureBuilt();
    const before = (await readdir('/dev/shm').catch(() => [] as string[])).filter((f) => f.startsWith('ferry-fleet-'));
    const run = await ferry(['demo', '--link', '128kbit', '--up', '3s', '--down', '1s', '--image-size', '2MiB', '--kill-at', '0.3', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout.trim().split('\n').pop()!) as { imageId: string; expected: string; match: boolean; payloadBytes: number; wireBytes: number; killedAtBytes: number | null; dockerPull: { bytes: number } };
    expect(r.match).toBe(true);
    expect(r.killedAtBytes).not.toBeNull();
    expect(r.imageId).toBe(r.expected);
    expect(r.wireBytes).toBeGreaterThanOrEqual(r.payloadBytes);
    expect(r.dockerPull.bytes).toBeGreaterThan(r.payloadBytes);
    const after = (await readdir('/dev/shm').catch(() => [] as string[])).filter((f) => f.startsWith('ferry-fleet-'));
    expect(after.filter((f) => !before.includes(f))).toEqual([]);
  }, 300_000);
});
