/**
 * The agent's small parts: which assignment goes first and what preempts a transfer, the durable
 * report buffer (bounded, in order, surviving a reopen, a damaged file dropped), and the request
 * counter (never reused across a reopen, even when its file is lost), the record of releases
 * reported committed, and the request pacer's lead.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Assignment, Report } from '@ferry/core';
import { pickAssignment, preemptor, ReportBuffer, type ReadyAssignment } from '../src/index.js';
import { CommitLog, Counter } from '../src/agent-state.js';
import { LoopDelay, RequestPacer } from '../src/pacer.js';
import { Run } from '../src/run.js';

const bundle = (n: number) => ({ id: `sha256:${String(n).repeat(64).slice(0, 64)}` as const, payloadSize: 1, chunkSize: 1, chunks: 1, baseline: 0 });
const ready = (channel: string, n: number, urgent = false): Assignment => ({ channel, state: 'ready', release: n, urgent, bundle: bundle(n), repository: 'http://x/repo/' });

describe('priority', () => {
  it('picks urgent first, then the channel order; skips bundles left alone and assignments not ready', () => {
    const list: Assignment[] = [ready('b', 2), { channel: 'c', state: 'building' }, ready('a', 1)];
    expect(pickAssignment(list, ['a', 'b', 'c'])?.channel).toBe('a');
    expect(pickAssignment(list, ['b', 'a', 'c'])?.channel).toBe('b');
    expect(pickAssignment([...list, ready('c', 3, true)], ['a', 'b', 'c'])?.channel).toBe('c');
    expect(pickAssignment(list, ['a', 'b'], (id) => id === bundle(1).id)?.channel).toBe('b');
    expect(pickAssignment([{ channel: 'a', state: 'current' }], ['a'])).toBeUndefined();
  });

  it('preempts only for an urgent release of another bundle, and never an urgent transfer', () => {
    const current = ready('a', 1) as ReadyAssignment;
    expect(preemptor([ready('a', 1), ready('b', 2)], current, ['a', 'b'])).toBeUndefined();
    expect(preemptor([ready('a', 1), ready('b', 2, true)], current, ['a', 'b'])?.channel).toBe('b');
    expect(preemptor([ready('a', 1, true)], { ...current, urgent: true }, ['a'])).toBeUndefined();
    expect(preemptor([ready('b', 2, true)], ready('c', 3, true) as ReadyAssignment, ['b', 'c'])).toBeUndefined();
  });
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-agent-units-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const report = (counter: number): Report => ({ counter, at: new Date(0).toISOString(), state: 'fetching', bytesDone: counter, bytesTotal: 100, chunksDone: 0, chunksTotal: 1, rate: 0, eta: null, error: null });

describe('report buffer', () => {
  it('keeps the newest reports up to its cap, in order, across a reopen, and drops acknowledged ones', async () => {
    const b = await ReportBuffer.open(dir, 3);
    for (const c of [1, 2, 3, 4, 5]) await b.push(report(c));
    expect(b.peek(10).map((r) => r.counter)).toEqual([3, 4, 5]);
    const again = await ReportBuffer.open(dir, 3);
    expect(again.peek(10).map((r) => r.counter)).toEqual([3, 4, 5]);
    await again.ack(4);
    expect((await ReportBuffer.open(dir, 3)).peek(10).map((r) => r.counter)).toEqual([5]);
  });

  it('drops a damaged file and entries that are not reports', async () => {
    await writeFile(join(dir, 'reports.json'), '[{"counter": 1}, ');
    expect((await ReportBuffer.open(dir, 5)).size).toBe(0);
    await writeFile(join(dir, 'reports.json'), JSON.stringify([{ counter: 'x' }, report(7)]));
    expect((await ReportBuffer.open(dir, 5)).peek(5).map((r) => r.counter)).toEqual([7]);
  });
});

describe('request counter', () => {
  it('never hands out a number twice across reopens, even when its file is lost', async () => {
    const a = await Counter.open(dir);
    const first = [await a.take(), await a.take()];
    const b = await Counter.open(dir);
    const next = await b.take();
    expect(next).toBeGreaterThan(first[1]!);
    await rm(join(dir, 'counter'));
    const c = await Counter.open(dir);
    expect(await c.take()).toBeGreaterThan(first[1]!);
  });

  it('reads its file bounded: a longer one is damaged (the clock is the floor), a device in its place is refused', async () => {
    const far = Date.now() + 1e9;
    await writeFile(join(dir, 'counter'), JSON.stringify({ next: far }));
    expect(await (await Counter.open(dir)).take()).toBe(far);
    // still JSON, but past the 1 KiB a counter file can need
    await writeFile(join(dir, 'counter'), JSON.stringify({ next: far }) + ' '.repeat(4096));
    const floor = Date.now();
    const n = await (await Counter.open(dir)).take();
    expect(n).toBeGreaterThanOrEqual(floor);
    expect(n).toBeLessThan(far);
    // an endless file is never read
    await rm(join(dir, 'counter'));
    await symlink('/dev/zero', join(dir, 'counter'));
    await expect(Counter.open(dir)).rejects.toMatchObject({ code: 'FERRY_ERR_IO' });
  });
});

describe('commit record', () => {
  it('starts from what the store runs, survives a reopen, and reads a damaged, oversized or strange record as empty', async () => {
    const current = async (): Promise<Map<string, number>> => new Map([['stable', 4]]);
    const a = await CommitLog.open(dir, current);
    expect([a.get('stable'), a.get('beta')]).toEqual([4, undefined]);
    await a.set('beta', 2);
    const b = await CommitLog.open(dir, async () => new Map());
    expect([b.get('stable'), b.get('beta')]).toEqual([4, 2]);
    for (const bad of ['not json', '[1,2]', JSON.stringify({ stable: 'x', beta: 1.5 }), ' '.repeat(65 * 1024)]) {
      await writeFile(join(dir, 'committed.json'), bad);
      const c = await CommitLog.open(dir, current);
      expect([c.get('stable'), c.get('beta')]).toEqual([undefined, undefined]);
    }
    // a key JSON can hold but an object should not take as a property stays a plain entry
    await writeFile(join(dir, 'committed.json'), '{"__proto__": 3, "stable": 5}');
    const d = await CommitLog.open(dir, current);
    expect([d.get('__proto__'), d.get('stable'), d.get('constructor')]).toEqual([3, 5, undefined]);
    await rm(join(dir, 'committed.json'));
    await mkdir(join(dir, 'committed.json'));
    await expect(CommitLog.open(dir, current)).rejects.toMatchObject({ code: 'FERRY_ERR_IO' });
  });
});

describe('request pacer', () => {
  it('leads by its minimum until the rate is known, then by two round trips and 0.1 s of bytes at the last second\'s rate', () => {
    const p = new RequestPacer(16_384);
    expect(p.leadBytes(0, null)).toBe(16_384);
    p.add(1000, 0);
    expect(p.rate(10)).toBe(0); // one sample: its bytes came before the span
    p.add(50_000, 50);
    expect(p.rate(50)).toBe(100_000); // a burst is spread over half a second at least
    for (let t = 100; t <= 1000; t += 100) p.add(100_000, t);
    expect(p.rate(1000)).toBe(1_050_000); // 1.05 MB over the second after the first sample
    expect(p.leadBytes(1000, 0.2)).toBe(525_000);
    expect(p.leadBytes(1000, null)).toBe(105_000);
    // a second later with nothing received the rate is gone and the minimum holds again
    expect(p.rate(2100)).toBe(0);
    expect(p.leadBytes(2100, 0.2)).toBe(16_384);
  });

  it('leads by the event loop\'s recent delay too: a rebuild holding the thread delays the next request', () => {
    let delayMs = 0;
    const p = new RequestPacer(1024, () => delayMs);
    for (let t = 0; t <= 1000; t += 100) p.add(100_000, t);
    expect(p.leadBytes(1000, 0)).toBe(100_000);
    delayMs = 400;
    expect(p.leadBytes(1000, 0)).toBe(500_000);
  });

  it('measures the event loop\'s delay: a 150 ms busy spell shows', async () => {
    const d = new LoopDelay();
    d.enable();
    try {
      await new Promise((r) => setTimeout(r, 50));
      const t = Date.now();
      while (Date.now() - t < 150);
      await new Promise((r) => setTimeout(r, 30));
      expect(d.ms(performance.now())).toBeGreaterThanOrEqual(100);
    } finally {
      d.disable();
    }
  });
});

describe('run: paced taking of chunks', () => {
  const digest = (i: number) => `sha256:${String(i).repeat(64).slice(0, 64)}` as const;
  const settled = async (p: Promise<unknown>): Promise<boolean> => {
    let done = false;
    void p.then(() => (done = true));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    return done;
  };

  it('holds the next worker until the chunk in flight has the lead left, then keeps a second one queued behind the one arriving', async () => {
    const run = new Run([1, 2, 3, 4].map((i) => ({ digest: digest(i), size: 65_536 })));
    run.enqueuePending(3);
    const lead = (): number => 16_384;
    const first = await run.take(lead, true);
    expect(first?.digest).toBe(digest(1));
    const second = run.take(lead, true);
    expect(await settled(second)).toBe(false); // 64 KiB left of the first
    first!.partial = { offset: 40_000 };
    run.nudge();
    expect(await settled(second)).toBe(false); // 25,536 bytes left: more than the lead
    first!.partial = { offset: 50_000 };
    run.nudge();
    expect((await second)?.digest).toBe(digest(2));
    run.done(first!);
    // a chunk was verified: one more may queue behind the one arriving whatever it has left
    expect((await run.take(lead, false))?.digest).toBe(digest(3));
    const fourth = run.take(lead, false);
    expect(await settled(fourth)).toBe(false); // two in flight, 128 KiB left
    run.finish();
    expect(await fourth).toBeUndefined();
  });
});
