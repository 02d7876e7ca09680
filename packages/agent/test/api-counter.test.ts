/**
 * The request counter on the wire (docs/protocol.md section 3): the server takes a check-in or a
 * reports request only when its counter is higher than the last it accepted, so the agent's API
 * sends numbered requests one at a time, each counter taken just before its request goes out,
 * and retries once with a fresh counter a request refused as a replay. Against a real HTTP
 * server on a loopback port that enforces the rule.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Report } from '@ferry/core';
import { AgentApi } from '../src/api.js';
import { Counter } from '../src/agent-state.js';

interface Enforcer {
  url: string;
  /** Every counter that arrived, in arrival order, with whether it was accepted. */
  seen: { counter: number; accepted: boolean }[];
  /** Refuse the next request as a replay whatever its counter (as when a relay forwarded it already). */
  refuseNext: boolean;
  server: Server;
}

async function startEnforcer(): Promise<Enforcer> {
  let last = 0;
  const e: Enforcer = { url: '', seen: [], refuseNext: false, server: createServer() };
  e.server.on('request', (req, res) => {
    let body = '';
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => {
      const { counter } = JSON.parse(body) as { counter: number };
      const accepted = counter > last && !e.refuseNext;
      e.refuseNext = false;
      e.seen.push({ counter, accepted });
      res.setHeader('content-type', 'application/json');
      if (!accepted) {
        res.statusCode = 409;
        res.end(JSON.stringify({ error: { code: 'FERRY_ERR_PROTOCOL_REPLAY', message: `request counter ${counter} is not higher than ${last}` } }));
        return;
      }
      last = counter;
      const answer = req.url!.endsWith('/checkin') ? { now: 1, retryAfter: 60, needInventory: false, assignments: [] } : { accepted: 1, dropped: 0 };
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => e.server.listen(0, '127.0.0.1', r));
  e.url = `http://127.0.0.1:${(e.server.address() as AddressInfo).port}`;
  return e;
}

const checkin = { channels: ['stable'], installed: {}, inventory: { digest: `sha256:${'0'.repeat(64)}` as const }, agent: { version: '0.1.0' } };
const report = (counter: number): Report => ({ counter, at: new Date(0).toISOString(), state: 'idle', channel: null, release: null, bundle: null, bytesDone: 0, bytesTotal: 0, chunksDone: 0, chunksTotal: 0, rate: 0, eta: null, error: null });

let dir: string;
let server: Enforcer;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-api-counter-'));
  server = await startEnforcer();
});
afterEach(async () => {
  await new Promise((r) => server.server.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('numbered requests', () => {
  it('go one at a time in counter order, even when a counter is slow to come', async () => {
    const counter = await Counter.open(dir);
    let calls = 0;
    // the first counter is handed out late, so a request that did not wait for the one before it
    // would reach the server first with the higher number and the first would be refused
    const slowFirst = {
      take: async (): Promise<number> => {
        const n = await counter.take();
        if (calls++ === 0) await new Promise((r) => setTimeout(r, 150));
        return n;
      },
    };
    const api = new AgentApi([server.url], 'token', 'edge-1', slowFirst);
    const r = await counter.take();
    await Promise.all([api.checkin(checkin), api.reports([report(r)]), api.checkin(checkin)]);
    expect(server.seen.map((s) => s.accepted)).toEqual([true, true, true]);
    const counters = server.seen.map((s) => s.counter);
    expect(counters).toEqual([...counters].sort((a, b) => a - b));
  });

  it('retries once with a fresh counter a request refused as a replay; a second refusal is the error', async () => {
    const api = new AgentApi([server.url], 'token', 'edge-1', await Counter.open(dir));
    server.refuseNext = true;
    await api.checkin(checkin);
    expect(server.seen.map((s) => s.accepted)).toEqual([false, true]);
    expect(server.seen[1]!.counter).toBeGreaterThan(server.seen[0]!.counter);

    const stuck = { take: async () => 5 };
    const stale = new AgentApi([server.url], 'token', 'edge-1', stuck);
    await expect(stale.checkin(checkin)).rejects.toMatchObject({ code: 'FERRY_ERR_PROTOCOL_REPLAY' });
    expect(server.seen.slice(2).map((s) => s.accepted)).toEqual([false, false]);
  });
});

describe('transport', () => {
  it('goes over node:http, not the global fetch (undici costs a device ~6 MiB): answers, error answers, no server', async () => {
    const saved = globalThis.fetch;
    globalThis.fetch = (() => Promise.reject(new Error('the agent used the global fetch'))) as typeof fetch;
    const api = new AgentApi([server.url], 'token', 'edge-1', await Counter.open(dir));
    try {
      expect((await api.checkin(checkin)).retryAfter).toBe(60);
      expect(await api.reports([report(1)])).toEqual({ accepted: 1, dropped: 0 });
      server.refuseNext = true;
      const stuck = new AgentApi([server.url], 'token', 'edge-1', { take: async () => 1 });
      await expect(stuck.checkin(checkin)).rejects.toMatchObject({ code: 'FERRY_ERR_PROTOCOL_REPLAY' });
      stuck.close();
      const closed = await new Promise<string>((r) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
          s.close(() => r(url));
        });
      });
      const nobody = new AgentApi([closed], 'token', 'edge-1', await Counter.open(dir));
      await expect(nobody.checkin(checkin)).rejects.toMatchObject({ code: 'FERRY_ERR_NETWORK' });
      nobody.close();
    } finally {
      globalThis.fetch = saved;
      api.close();
    }
  });
});
