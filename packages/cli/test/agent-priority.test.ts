/**
 * Priority (issue 9 item 3): an agent follows "stable" and "hotfix". While it fetches v2 on stable
 * (its chunk held half way by the front, so the transfer stays in flight), an urgent release lands
 * on hotfix: at its next check-in the agent gives the stable transfer up, installs the hotfix, then
 * resumes stable from the bytes it had (Range), fetching no byte of it twice.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '@ferry/agent';
import { Store, type Report } from '@ferry/core';
import { ensureBuilt } from '@ferry/test-support';
import { startFleet, type Fleet } from '../src/demo/fleet.js';
import { loadTrust } from '../src/trust.js';
import { startFaultyProxy, type FaultyProxy } from './helpers/faulty-proxy.js';

let fleet: Fleet;
let proxy: FaultyProxy;

beforeAll(async () => {
  await ensureBuilt();
  fleet = await startFleet({ targetBytes: 2 * 1024 * 1024, other: true });
  await fleet.release('app:v2', 'stable');
  proxy = await startFaultyProxy(fleet.url, 0);
});
afterAll(async () => {
  await proxy?.close();
  await fleet?.close();
});

describe('an urgent release', () => {
  it('preempts a transfer in flight, which then resumes where it was', async () => {
    const HELD_AFTER = 4096;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const stablePaths = new Set<string>();
    const s = { released: false, open: false };
    proxy.hold = (path) => {
      if (s.open) return undefined;
      if (!s.released) stablePaths.add(path);
      return stablePaths.has(path) ? { after: HELD_AFTER, gate } : undefined;
    };
    const reports: Report[] = [];
    const { token, store } = await fleet.addAgent('edge-p');
    const agent = await Agent.open({
      servers: [proxy.url],
      id: 'edge-p',
      token,
      channels: ['stable', 'hotfix'],
      trust: await loadTrust(fleet.trust),
      store,
      transferCheckinSeconds: 1,
      maxBackoffSeconds: 1,
      fetcher: { minRetryMs: 20, maxRetryMs: 300, stallTimeoutMs: 60_000 },
      onProgress: (phase, p) => {
        if (!s.released && phase === 'fetching' && p.bytesDone >= HELD_AFTER) {
          s.released = true;
          void fleet.release('other:v1', 'hotfix', true);
        }
      },
      onReport: (r) => {
        reports.push(r);
        if (r.channel === 'hotfix' && r.state === 'committed' && !s.open) {
          s.open = true;
          openGate();
        }
      },
    });
    try {
      await agent.runOnce();
    } finally {
      await agent.close();
    }
    const committed = reports.filter((r) => r.state === 'committed' && !r.error).map((r) => r.channel);
    expect(committed).toEqual(['hotfix', 'stable']);
    expect(reports.some((r) => r.channel === 'stable' && /preempted by urgent release 1 on hotfix/.test(r.error?.message ?? ''))).toBe(true);
    const device = await Store.open(store);
    expect((await device.resolve('other:v1')).configDigest).toBe(fleet.configs['other:v1']);
    expect((await device.resolve('app:v2')).configDigest).toBe(fleet.configs['app:v2']);
    // the stable chunk bytes crossed once: the held part before the preemption, the rest after
    const stableTotal = reports.filter((r) => r.channel === 'stable' && r.state === 'committed').pop()!.bytesTotal;
    const stableBytes = [...stablePaths].reduce((n, p) => n + (proxy.chunkBytesByPath.get(p) ?? 0), 0);
    expect(stableBytes).toBe(stableTotal);
    // the hotfix's commit pruned the cache but kept the preempted stable transfer's chunks (the
    // line above: none crossed twice); stable's commit then left nothing
    expect(await readdir(join(store, 'agent', 'cache', 'chunks'))).toEqual([]);
  });
});
