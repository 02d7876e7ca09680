/**
 * `ferry agent` end to end on loopback: a server with v2 released, an agent holding v1. The
 * agent (the built CLI, a child process) syncs once and ends with v2's image ID, having received
 * exactly the payload bytes it needed; a second agent on the same store is refused; reports made
 * while the server is unreachable are kept on disk and arrive, in order, at the next contact; the
 * on-commit command runs with the ref, and its failure is reported, not fatal; a commit prunes the
 * chunk cache unless keepCache is set.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, ReportBuffer } from '@ferry/agent';
import { Store, type Report } from '@ferry/core';
import { ensureBuilt, ferry, startSwitchLink } from '@ferry/test-support';
import { startFleet, type Fleet } from '../src/demo/fleet.js';
import { loadTrust } from '../src/trust.js';

let fleet: Fleet;
let agent: { token: string; store: string };

beforeAll(async () => {
  await ensureBuilt();
  fleet = await startFleet({ targetBytes: 2 * 1024 * 1024 });
  await fleet.release('app:v2', 'stable');
  agent = await fleet.addAgent('edge-1');
});

afterAll(async () => {
  await fleet?.close();
});

const args = (id: string, token: string, store: string): string[] => ['agent', '--server', fleet.url, '--id', id, '--token', token, '--channel', 'stable', ...fleet.trust.flatMap((t) => ['--trust', t]), '--store', store];

/** The JSON lines of `ferry agent --json`: its reports and its result. */
function parseLines(stdout: string): { reports: Report[]; result: { committed: { ref: string; config: string }[] } | undefined } {
  const lines = stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { report?: Report; committed?: { ref: string; config: string }[] });
  return { reports: lines.flatMap((l) => (l.report ? [l.report] : [])), result: lines.find((l) => l.committed) as never };
}

describe('ferry agent --once', () => {
  it('brings v2 into a store holding v1, fetching each needed byte once', async () => {
    const hookOut = join(fleet.work, 'hook-out');
    const run = await ferry([...args('edge-1', agent.token, agent.store), '--once', '--json', '--on-commit', `printf '%s' {ref} > ${hookOut}`]);
    expect(run.code, run.stderr).toBe(0);
    const { reports, result } = parseLines(run.stdout);
    expect(result?.committed.map((c) => [c.ref, c.config])).toEqual([['app:v2', fleet.configs['app:v2']]]);
    const store = await Store.open(agent.store);
    expect((await store.resolve('app:v2')).configDigest).toBe(fleet.configs['app:v2']);
    const done = reports.find((r) => r.state === 'committed')!;
    expect(done.bytesTotal).toBeGreaterThan(0);
    expect([done.bytesDone, done.chunksDone]).toEqual([done.bytesTotal, done.chunksTotal]);
    // every chunk crossed once: the bytes received are the payload bytes the plan needed
    expect(done.link!.bytesReceived).toBe(done.bytesTotal);
    expect(reports.map((r) => r.counter)).toEqual([...reports.map((r) => r.counter)].sort((a, b) => a - b));

    expect(await readFile(hookOut, 'utf8')).toBe('app:v2');
    // the commit pruned the cache: nothing is pending, so no chunk or header is kept
    const cache = join(agent.store, 'agent', 'cache');
    expect([await readdir(join(cache, 'chunks')), await readdir(join(cache, 'headers')), await readdir(join(cache, 'partial'))]).toEqual([[], [], []]);

    // the same agent from a config file (paths relative to it), the command line adding --store
    await writeFile(join(fleet.work, 'token'), agent.token + '\n');
    await writeFile(join(fleet.work, 'agent.json'), JSON.stringify({ servers: [fleet.url], id: 'edge-1', tokenFile: 'token', channels: ['stable'], trust: fleet.trust.map((t) => relative(fleet.work, t)), bandwidth: '1mbit' }));
    const again = await ferry(['agent', '--config', join(fleet.work, 'agent.json'), '--store', agent.store, '--once']);
    expect([again.code, again.stdout, again.stderr]).toEqual([0, 'up to date\n', expect.stringMatching(/^idle\s*\n$/)]);
    await writeFile(join(fleet.work, 'bad.json'), JSON.stringify({ servers: [fleet.url], chanels: ['stable'] }));
    const bad = await ferry(['agent', '--config', join(fleet.work, 'bad.json'), '--once']);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/FERRY_ERR_USAGE: .*unknown key\(s\) chanels/)]);
    // the singular of a list key is the likely slip, and the error names the plural
    await writeFile(join(fleet.work, 'bad.json'), JSON.stringify({ server: fleet.url, channels: ['stable'] }));
    const singular = await ferry(['agent', '--config', join(fleet.work, 'bad.json'), '--once']);
    expect([singular.code, singular.stderr]).toEqual([2, expect.stringMatching(/unknown key\(s\) server \(did you mean servers, a list\?\) \(known: servers,/)]);
  });

  it('refuses a second agent on the same store', async () => {
    const trust = await loadTrust(fleet.trust);
    const o = { servers: [fleet.url], id: 'edge-1', token: agent.token, channels: ['stable'], trust, store: agent.store };
    const first = await Agent.open(o);
    try {
      await expect(Agent.open(o)).rejects.toMatchObject({ code: 'FERRY_ERR_AGENT_RUNNING' });
    } finally {
      await first.close();
    }
    const run = await ferry([...args('edge-1', agent.token, agent.store), '--once']);
    expect(run.code).toBe(0);
  });

  it('keeps reports made offline on disk and sends them, in order, at the next contact', async () => {
    const second = await fleet.addAgent('edge-2');
    const trust = await loadTrust(fleet.trust);
    const o = { id: 'edge-2', token: second.token, channels: ['stable'], trust, store: second.store, maxBackoffSeconds: 1 };
    const offline = await Agent.open({ ...o, servers: ['http://127.0.0.1:9'] });
    let outcomes;
    try {
      outcomes = [await offline.sync(), await offline.sync()];
    } finally {
      await offline.close();
    }
    expect(outcomes.map((x) => (x.kind === 'failed' ? x.error.code : x.kind))).toEqual(['FERRY_ERR_NETWORK', 'FERRY_ERR_NETWORK']);
    const buffered = (await ReportBuffer.open(`${second.store}/agent`, 256)).peek(256);
    expect(buffered.map((r) => [r.state, r.error?.code])).toEqual([['failed', 'FERRY_ERR_NETWORK'], ['failed', 'FERRY_ERR_NETWORK']]);

    const seen: Report[] = [];
    const online = await Agent.open({ ...o, keepCache: true, servers: [fleet.url], onReport: (r) => seen.push(r), onCommit: async () => { throw new Error('docker is not running'); } });
    try {
      await online.runOnce();
    } finally {
      await online.close();
    }
    const kept = await fleet.server.state.agents.recentReports('edge-2', 100);
    const offlineCounters = buffered.map((r) => r.counter);
    expect(kept.filter((r) => offlineCounters.includes(r.counter)).map((r) => r.counter).reverse()).toEqual(offlineCounters);
    // what is left is the last state, made after the last contact (it goes at the next one)
    expect((await ReportBuffer.open(`${second.store}/agent`, 256)).peek(256).map((r) => r.state)).toEqual(['idle']);
    // the on-commit failure is reported; the image is installed all the same
    expect(seen.filter((r) => r.state === 'committed').map((r) => r.error?.code ?? null)).toEqual([null, 'FERRY_ERR_AGENT_HOOK']);
    expect((await (await Store.open(second.store)).resolve('app:v2')).configDigest).toBe(fleet.configs['app:v2']);
    // keepCache: every chunk the transfer verified is still in the cache after the commit
    const done = seen.find((r) => r.state === 'committed')!;
    expect((await readdir(join(second.store, 'agent', 'cache', 'chunks'))).length).toBe(done.chunksTotal);
  });

  it('reports a commit whose report was lost (killed between the commit and the report) at its next sync, once', async () => {
    const fifth = await fleet.addAgent('edge-5');
    const trust = await loadTrust(fleet.trust);
    const seen: Report[] = [];
    const o = { servers: [fleet.url], id: 'edge-5', token: fifth.token, channels: ['stable'], trust, store: fifth.store, onReport: (r: Report) => seen.push(r) };
    const once = async (): Promise<void> => {
      const a = await Agent.open(o);
      try {
        await a.runOnce();
      } finally {
        await a.close();
      }
    };
    await once();
    const release = (await (await Store.open(fifth.store)).getChannel('stable'))!.release;
    expect(seen.filter((r) => r.state === 'committed').map((r) => r.release)).toEqual([release]);
    // the state a kill -9 right after the commit leaves: the store at the new release, no report of it
    await writeFile(join(fifth.store, 'agent', 'committed.json'), '{}\n');
    seen.length = 0;
    await once();
    expect(seen.filter((r) => r.state === 'committed').map((r) => [r.channel, r.release, r.bytesTotal])).toEqual([['stable', release, 0]]);
    const kept = await fleet.server.state.agents.recentReports('edge-5', 100);
    expect(kept.filter((r) => r.state === 'committed' && r.release === release)).toHaveLength(2);
    // reported now: the next sync makes no other
    seen.length = 0;
    await once();
    expect(seen.map((r) => r.state)).toEqual(['idle']);
  });

  it('checks in as soon as a probe gets an answer after the link returns, however long its backoff', async () => {
    const third = await fleet.addAgent('edge-3');
    const link = await startSwitchLink(fleet.url);
    const seen: Report[] = [];
    try {
      const trust = await loadTrust(fleet.trust);
      // a 10-minute backoff after the failed check-in: only the probe can end it before the test times out
      const o = { servers: [link.url], id: 'edge-3', token: third.token, channels: ['stable'], trust, store: third.store, minBackoffSeconds: 600, maxBackoffSeconds: 600, probeSeconds: 0.05 };
      const a = await Agent.open({ ...o, onReport: (r) => (seen.push(r), r.state === 'failed' && (link.up = true)) });
      try {
        expect((await a.runOnce()).map((r) => r.configDigest)).toEqual([fleet.configs['app:v2']]);
      } finally {
        await a.close();
      }
    } finally {
      await link.close();
    }
    expect(seen.filter((r) => r.state === 'failed').map((r) => r.error?.code)).toEqual(['FERRY_ERR_NETWORK']);
  }, 60_000);
});
