/** `ferry demo offline` end to end (the offline walk-through): one run, default image size. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureBuilt, ferry } from '@ferry/test-support';

let work: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-demo-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

it('runs the update path, says the image IDs match and prints the comparison table', { timeout: 300_000 }, async () => {
  const dir = join(work, 'demo');
  const r = await ferry(['demo', 'offline', '--dir', dir]);
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  expect(r.stderr).toBe('');
  for (const n of [1, 2, 3, 4, 5, 6]) expect(r.stdout).toMatch(new RegExp(`^${n}\\. `, 'm'));
  expect(r.stdout).toMatch(/publisher image ID ([0-9a-f]{12}), device image ID \1: the image IDs match/);
  expect(r.stdout).toMatch(/BYTES\s+VS BUNDLE\s+AT 64 kbit\/s/);
  expect(r.stdout).toMatch(/^ {2}ferry bundle\s+\d+(\.\d)? KiB\s+1x\s+\d/m);
  expect(r.stdout).toMatch(/^ {2}docker pull, changed layers only \(\d+ layers?\)\s+\d+(\.\d)? MiB\s+\d+x\s+\d/m);
  expect(r.stdout).toMatch(/^ {2}docker pull, full image \(\d+ layers?\)\s+\d+(\.\d)? MiB\s+\d+x\s+\d/m);
  expect(r.stdout).toMatch(/^image IDs match/m);
  // without --keep, what the demo wrote is gone; the directory it was given stays
  expect(await readdir(dir)).toEqual([]);
  // --dir must be empty
  const again = await ferry(['demo', 'offline', '--dir', work]);
  expect(again.code).toBe(2);
});
