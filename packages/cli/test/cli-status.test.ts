/**
 * `ferry status` against a real server after real check-ins and reports: the table has each
 * agent's bar with the right percent, bytes, rate, ETA, stale agents marked, the last error and the
 * channels; --json prints the operator API's answers; --watch redraws in place on a terminal and
 * prints a snapshot per interval otherwise, until Ctrl-C; a refused token is one line, exit 7.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventoryDigest, parsePublicKey } from '@ferry/core';
import { createServer, type RunningServer } from '@ferry/server';
import { runCli } from '../src/cli.js';
import { ensureBuilt, ferry, ferryJson, MAIN } from '@ferry/test-support';

let work: string;
let server: Omit<RunningServer, 'url'>;
let url: string;
let operator: string;
let skew = 0;
const tokens: Record<string, string> = {};

async function api(method: string, path: string, token: string, json?: unknown): Promise<any> {
  const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: json === undefined ? undefined : JSON.stringify(json) });
  expect(res.status, path).toBeLessThan(300);
  return res.json();
}

const reportOf = (counter: number, fields: Record<string, unknown>) => ({ counter, at: new Date().toISOString(), state: 'fetching', channel: 'stable', release: 1, bytesDone: 0, bytesTotal: 0, chunksDone: 0, chunksTotal: 0, rate: 0, eta: null, error: null, ...fields });
const post = (id: string, counter: number, fields: Record<string, unknown>) => api('POST', `/v1/agents/${id}/reports`, tokens[id]!, { counter: counter + 1, reports: [reportOf(counter, fields)] });
const checkin = (id: string, counter: number) => api('POST', `/v1/agents/${id}/checkin`, tokens[id]!, { counter, channels: ['stable'], inventory: { digest: inventoryDigest([]), layers: [] } });

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-status-'));
  expect((await ferry(['keygen', '--out', join(work, 'release')])).code).toBe(0);
  const s = await createServer({ dataDir: join(work, 'data'), port: 0, logger: false, rateLimit: false, checkinInterval: 60, now: () => Date.now() + skew, releaseKeys: [parsePublicKey(await readFile(join(work, 'release.pub')))] });
  url = await s.listen();
  server = s;
  operator = (await api('POST', '/v1/tokens', s.admin.token, { role: 'operator', name: 'ops' })).token;
  for (const id of ['edge-1', 'edge-2']) {
    tokens[id] = (await api('POST', '/v1/agents', s.admin.token, { id })).token;
    await checkin(id, 1);
  }
  await post('edge-1', 2, { bytesDone: 256 * 1024, bytesTotal: 1024 * 1024, rate: 3072, eta: 256 });
  await post('edge-2', 2, { state: 'failed', error: { code: 'FERRY_ERR_DISK_FULL', message: 'needs 2 MiB more' } });
});

afterAll(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

const rowOf = (out: string, id: string): string => out.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';

describe('ferry status', () => {
  it('prints a bar per agent with its percent, bytes, rate, ETA, last error, and the channels', async () => {
    const r = await ferry(['status', '--server', url, '--token', operator]);
    expect(r.code, r.stderr).toBe(0);
    const e1 = rowOf(r.stdout, 'edge-1');
    expect(e1).toContain(`[${'\u2588'.repeat(5)}${'\u2591'.repeat(15)}]  25.0%`);
    expect(e1).toMatch(/fetching\s+stable\/1/);
    expect(e1).toContain('256.0 KiB / 1.0 MiB');
    expect(e1).toContain('3.0 KiB/s');
    expect(e1).toContain('4 min 16 s');
    expect(e1).not.toContain('STALE');
    expect(rowOf(r.stdout, 'edge-2')).toContain('FERRY_ERR_DISK_FULL: needs 2 MiB more');
    expect(r.stdout).toMatch(/^2 agents, 1 transferring, 0 stale, 1 failed/);
    expect(r.stdout).toMatch(/^CHANNEL\s+RELEASE\s+IMAGE/m);
    expect(r.stdout).toMatch(/^stable\s+none\s+-\s+-\s+0 of 2 agents$/m);
  });

  it('marks agents that missed 3 check-in intervals as STALE', async () => {
    skew += 200_000;
    try {
      await checkin('edge-1', 10);
      const r = await ferry(['status', '--server', url, '--token', operator]);
      // 200 s plus however long the run took (no wall-clock bound on a loaded machine)
      expect(rowOf(r.stdout, 'edge-2')).toMatch(/\b(3 min [2-5]\d|[4-9] min \d+) s ago \(STALE\)/);
      expect(rowOf(r.stdout, 'edge-1')).not.toContain('STALE');
    } finally {
      skew -= 200_000;
      await checkin('edge-2', 11);
    }
  });

  it('--json prints the operator API answers', async () => {
    const { run, json } = await ferryJson<{ now: number; agents: { id: string; bytesDone: number }[]; channels: { name: string }[]; bundles: { bundles: unknown[] } }>(['status', '--server', url, '--token', operator]);
    expect(run.code).toBe(0);
    const direct = await api('GET', '/v1/agents', operator);
    expect(json.agents).toEqual(direct.agents.map((a: { lastSeen: number }) => expect.objectContaining({ ...a, lastSeen: expect.any(Number) })));
    expect(json.channels.map((c) => c.name)).toEqual(['stable']);
    expect(json.bundles.bundles).toEqual([]);
  });

  it('--watch redraws in place on a terminal until interrupted', async () => {
    const writes: string[] = [];
    const stdout = Object.assign(new Writable({ write: (c, _e, cb) => (writes.push(String(c)), cb()) }), { isTTY: true, columns: 200 });
    const stderr = new Writable({ write: (_c, _e, cb) => cb() });
    const stop = new AbortController();
    const done = runCli(['status', '--watch', '--interval', '200ms', '--server', url, '--token', operator], { stdout, stderr, cwd: work, debug: false, version: 'test', signal: stop.signal });
    await expect.poll(() => writes.length, { timeout: 10_000 }).toBeGreaterThan(0);
    await post('edge-1', 20, { bytesDone: 768 * 1024, bytesTotal: 1024 * 1024, rate: 3072, eta: 85 });
    await expect.poll(() => writes.some((w) => w.includes('75.0%')), { timeout: 10_000 }).toBe(true);
    stop.abort();
    expect(await done).toBe(0);
    const first = writes[0]!;
    const drawn = first.split('\n').length - 1;
    const later = writes.find((w) => w.includes('75.0%'))!;
    // each redraw moves back over the previous view and clears it: no stacking of tables
    expect(later.startsWith(`\x1b[${drawn}A\r\x1b[J`)).toBe(true);
    expect(first.startsWith('\x1b[J')).toBe(true);
  });

  it('--watch without a terminal prints a snapshot per interval and ends on SIGINT with 0', async () => {
    const child = spawn(process.execPath, [MAIN, 'status', '--watch', '--interval', '200ms', '--server', url, '--token', operator], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await expect.poll(() => out.split('AGENT ').length - 1, { timeout: 15_000 }).toBeGreaterThanOrEqual(2);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).not.toContain('\x1b[');
  });

  it('a refused token is one line and exit code 7', async () => {
    const r = await ferry(['status', '--server', url, '--token', tokens['edge-1']!]);
    expect(r.code).toBe(7);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ferry: error FERRY_ERR_AUTH_FORBIDDEN: /)]);
  });
});
