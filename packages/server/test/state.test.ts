/**
 * The state API on SQLite: a job is queued once however often it is asked for and claimed by one
 * builder of many; a claim whose builder stopped is taken over after the stale delay; release
 * numbers only grow; reports keep the highest counter. (The same API on PostgreSQL: postgres.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, type ReleaseStatement } from '@ferry/core';
import { openState, type State } from '../src/index.js';

let dir: string;
let state: State;
let clock = 1_000_000;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-state-'));
  state = await openState({ sqlitePath: join(dir, 'state.db'), now: () => clock });
});

afterAll(async () => {
  await state?.close();
  await rm(dir, { recursive: true, force: true });
});

const release = (n: number): ReleaseStatement => ({ channel: 'stable', release: n, ref: 'app:v2', manifest: sha256('m'), config: sha256('c'), expires: 2_000_000_000, created: 1 });

describe('bundle jobs', () => {
  it('are queued once and claimed by exactly one of many builders', async () => {
    const baseline = [sha256('layer')];
    const rows = await Promise.all(Array.from({ length: 5 }, () => state.bundles.ensure('stable', 1, sha256('b'), baseline)));
    expect(new Set(rows.map((r) => r.key)).size).toBe(1);
    const claims = await Promise.all(['w1', 'w2', 'w3', 'w4'].map((w) => state.bundles.claim(w, clock - 60_000)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await state.bundles.pending()).toBe(1);
    // the builder died: after the stale delay another takes it over, and only its result counts
    clock += 120_000;
    const again = await state.bundles.claim('w9', clock - 60_000);
    expect([again?.key, again?.builds]).toEqual([rows[0]!.key, 2]);
    await state.bundles.finish(rows[0]!.key, 'w1', { bundleId: sha256('stale'), payloadSize: 1, chunkSize: 1, chunks: 1, headerSize: 1, pullBytes: 1 });
    expect((await state.bundles.get(rows[0]!.key))?.state).toBe('building');
    await state.bundles.finish(rows[0]!.key, 'w9', { bundleId: sha256('fresh'), payloadSize: 10, chunkSize: 4, chunks: 3, headerSize: 100, pullBytes: 1000 });
    expect((await state.bundles.ready('stable', 1)).map((b) => b.bundleId)).toEqual([sha256('fresh')]);
    expect(await state.bundles.claim('w1', clock)).toBeUndefined();
  });

  it('a failed job is queued again on request, once', async () => {
    const job = await state.bundles.ensure('stable', 2, sha256('c'), []);
    expect((await state.bundles.claim('w1', clock - 60_000))?.key).toBe(job.key);
    await state.bundles.fail(job.key, 'w1', 'disk full');
    expect((await state.bundles.get(job.key))?.error).toBe('disk full');
    expect(await Promise.all([state.bundles.requeue(job.key), state.bundles.requeue(job.key)])).toEqual([true, false]);
    expect((await state.bundles.claim('w2', clock - 60_000))?.builds).toBe(2);
  });
});

describe('releases', () => {
  it('only grow per channel', async () => {
    await state.releases.add(release(3), new Uint8Array([1]), false);
    await expect(state.releases.add(release(3), new Uint8Array([2]), false)).rejects.toMatchObject({ code: 'FERRY_ERR_BUNDLE_ROLLBACK' });
    await expect(state.releases.add(release(2), new Uint8Array([2]), false)).rejects.toMatchObject({ code: 'FERRY_ERR_BUNDLE_ROLLBACK' });
    await state.releases.add(release(4), new Uint8Array([4]), true);
    const latest = await state.releases.latest('stable');
    expect([latest?.release, latest?.urgent, [...latest!.envelope]]).toEqual([4, true, [4]]);
    expect((await state.releases.list()).map((r) => r.release)).toEqual([4, 3]);
    expect((await state.releases.channels()).map((c) => [c.name, c.release?.release])).toEqual([['stable', 4]]);
  });
});

describe('agents', () => {
  it('keep the report with the highest counter and a bounded history', async () => {
    await state.agents.create('edge-1');
    const r = (counter: number) => ({ counter, at: 'now', state: 'fetching' as const, bytesDone: counter, bytesTotal: 1000, chunksDone: 0, chunksTotal: 1, rate: 0, eta: null, error: null });
    expect(await state.agents.recordReports('edge-1', Array.from({ length: 150 }, (_, i) => r(i + 1)))).toEqual({ accepted: 150, dropped: 0 });
    expect(await state.agents.recordReports('edge-1', [r(150), r(3), r(151)])).toEqual({ accepted: 1, dropped: 2 });
    expect((await state.agents.get('edge-1'))?.report?.counter).toBe(151);
    // the history was cut to the newest 100 when the batch arrived; single reports are trimmed
    // 16 at a time, so it holds 100 to 115 and never loses the newest
    const held = async (): Promise<number[]> => (await state.agents.recentReports('edge-1', 500)).map((x) => x.counter);
    const sizes = [(await held()).length];
    for (let c = 152; c <= 182; c++) {
      await state.agents.recordReports('edge-1', [r(c)]);
      const h = await held();
      expect(h[0]).toBe(c);
      sizes.push(h.length);
    }
    expect(Math.min(...sizes)).toBe(100);
    expect(Math.max(...sizes)).toBe(115);
    expect(sizes.filter((n) => n === 100).length).toBeGreaterThanOrEqual(2);
    await expect(state.agents.acceptCounter('edge-9', 1)).rejects.toMatchObject({ code: 'FERRY_ERR_NOT_FOUND' });
  });
});
