/**
 * What the zstd encode helpers keep and peak at, counted in a child process (helpers/
 * zstd-memory-child.mjs), never timed:
 * - zstdCompress of an input over ZSTD_REUSE_INPUT_MAX keeps no context: a cached level-19
 *   context kept ~28 MB of tables for a 2 MiB input for the rest of the process;
 * - a long-path patch (reference over PATCH_ONE_SHOT_REFERENCE) attaches the dictionary's tables
 *   (ZSTD_C_FORCE_ATTACH_DICT) instead of copying them into tables sized for the reference; its
 *   output is deterministic and decodes back. Slow (a level-19 dictionary of 8 MiB): runs with
 *   FERRY_SLOW_TESTS=1, as CI does.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./helpers/zstd-memory-child.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SLOW = process.env.FERRY_SLOW_TESTS === '1';

async function child(kind: 'compress' | 'patch'): Promise<Record<string, number | boolean>> {
  const { stdout } = await run(process.execPath, [CHILD, kind], { cwd: ROOT });
  return JSON.parse(stdout.trim()) as Record<string, number | boolean>;
}

describe('zstd encode memory', () => {
  it('keeps no compression context after an input over ZSTD_REUSE_INPUT_MAX', async () => {
    const r = await child('compress');
    // before: +27.9 MB kept (the cached context's level-19 tables); now about zero
    expect(r.kept as number).toBeLessThan(12e6);
  }, 120_000);

  it.skipIf(!SLOW)('attaches a long-path dictionary: deterministic, decodes back, peak under the copied tables', async () => {
    const r = await child('patch');
    expect(r.same).toBe(true);
    expect(r.roundTrip).toBe(true);
    // copied (before): the dictionary's tables plus context tables of the same size, ~180 MB
    expect(r.peak as number).toBeLessThan(140e6);
  }, 600_000);
});
