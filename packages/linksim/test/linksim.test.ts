/**
 * The link emulator's behaviour over real loopback sockets: rate per direction within generous
 * bounds, latency, outages that deliver nothing (stalled or reset), injected resets, silent
 * stalls, and corruption at seeded positions. These measure the emulator, not ferry.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { isFerryError } from '@ferry/core';
import { startLinkSim, type LinkSim, type LinkSimOptions } from '../src/index.js';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** A target that answers every connection with `send` bytes (written as fast as TCP takes them) and records what it receives. */
async function target(send = 0): Promise<{ port: number; received: Buffer[] }> {
  const received: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('data', (b: Buffer) => received.push(b));
    s.on('close', () => sockets.delete(s));
    if (send > 0) s.end(Buffer.alloc(send, 7));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  open.push({ close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }) });
  return { port: (server.address() as { port: number }).port, received };
}

async function sim(options: Omit<LinkSimOptions, 'target'>, port: number): Promise<LinkSim> {
  const s = await startLinkSim({ target: { host: '127.0.0.1', port }, ...options });
  open.push(s);
  return s;
}

/** A connected client socket; `ended` tells how it ended (listened for from the start, so no event is missed). */
async function client(port: number): Promise<Socket & { ended: Promise<string | undefined> }> {
  const s = connect({ host: '127.0.0.1', port });
  open.push({ close: () => s.destroy() });
  let error: string | undefined;
  s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code));
  const closed = new Promise<string | undefined>((r) => s.once('close', () => r(error)));
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    void closed.then(() => reject(new Error(`closed before connecting: ${error}`)));
  });
  return Object.assign(s, { ended: closed });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Samples the link's statistics every 10 ms for `ms`; between two samples that both find it down
 * or stalled, no byte may have been delivered. Returns how many such pairs were seen.
 */
async function downSamples(link: LinkSim, ms: number): Promise<number> {
  let prev = link.stats();
  let n = 0;
  for (const end = performance.now() + ms; performance.now() < end; ) {
    await sleep(10);
    const s = link.stats();
    if (!prev.up && !s.up) {
      n++;
      expect(s.bytesDown).toBe(prev.bytesDown);
    }
    prev = s;
  }
  return n;
}

describe('linksim', () => {
  it('delivers downstream bytes at the configured rate (within 25%)', async () => {
    const t = await target(2_000_000);
    const link = await sim({ rateDown: 400_000 }, t.port); // 50 kB/s
    const c = await client(link.port);
    let got = 0;
    let first = 0;
    c.on('data', (b: Buffer) => {
      if (got === 0) first = performance.now();
      got += b.length;
    });
    await sleep(2000);
    const elapsed = (performance.now() - first) / 1000;
    const rate = got / elapsed;
    expect(rate).toBeGreaterThan(50_000 * 0.75);
    expect(rate).toBeLessThan(50_000 * 1.25);
  });

  it('delivers upstream bytes at their own rate and adds latency one way', async () => {
    const t = await target();
    const link = await sim({ rateUp: 160_000, latencyUpMs: 150 }, t.port); // 20 kB/s up
    const c = await client(link.port);
    const sent = performance.now();
    c.write(Buffer.alloc(200_000, 1));
    while (t.received.length === 0) await sleep(5);
    expect(performance.now() - sent).toBeGreaterThanOrEqual(145);
    await sleep(1500);
    const got = t.received.reduce((n, b) => n + b.length, 0);
    const elapsed = (performance.now() - sent - 150) / 1000;
    expect(got / elapsed).toBeGreaterThan(20_000 * 0.75);
    expect(got / elapsed).toBeLessThan(20_000 * 1.25);
    expect(link.stats().bytesUp).toBe(got);
  });

  it('delivers nothing while down (stall mode) and resumes the same connection when up', async () => {
    const t = await target(3_000_000);
    const link = await sim({ rateDown: 800_000, schedule: { kind: 'fixed', upMs: 300, downMs: 400 }, downMode: 'stall' }, t.port);
    const c = await client(link.port);
    let got = 0;
    c.on('data', (b: Buffer) => (got += b.length));
    expect(await downSamples(link, 2200)).toBeGreaterThan(3);
    expect(link.stats().outages).toBeGreaterThanOrEqual(2);
    expect(link.stats().resets).toBe(0);
    expect(got).toBeGreaterThan(0);
    expect(c.destroyed).toBe(false);
  });

  // An RST sometimes reaches a local client as an end of stream rather than ECONNRESET (the kernel
  // reports the error once; libuv may consume it first), so a reset is checked as: the connection
  // ended long before the target's data did, and the link counted the reset.
  it('resets open connections when the link goes down and refuses new ones until it is up', async () => {
    const t = await target(50_000_000);
    const link = await sim({ rateDown: 800_000, schedule: { kind: 'fixed', upMs: 1000, downMs: 1500 }, downMode: 'reset' }, t.port);
    const c = await client(link.port);
    let got = 0;
    c.on('data', (b: Buffer) => (got += b.length));
    expect([undefined, 'ECONNRESET']).toContain(await c.ended);
    expect(got).toBeLessThan(1_000_000);
    expect(link.stats().up).toBe(false);
    const late = connect({ host: '127.0.0.1', port: link.port });
    open.push({ close: () => late.destroy() });
    late.on('error', () => {});
    let lateGot = 0;
    late.on('data', (b: Buffer) => (lateGot += b.length));
    await new Promise((r) => late.once('close', r));
    expect(lateGot).toBe(0);
    expect(link.stats()).toMatchObject({ resets: 1, refused: 1, outages: 1 });
  });

  it('resets connections mid-transfer at the configured rate', async () => {
    const t = await target(50_000_000);
    const link = await sim({ rateDown: 800_000, resetEveryMs: 300 }, t.port);
    const c = await client(link.port);
    let got = 0;
    c.on('data', (b: Buffer) => (got += b.length));
    expect([undefined, 'ECONNRESET']).toContain(await c.ended);
    expect(got).toBeGreaterThan(0);
    expect(got).toBeLessThan(1_000_000);
    expect(link.stats().resets).toBe(1);
  });

  it('holds bytes during silent stalls without closing the connection', async () => {
    const t = await target(3_000_000);
    const link = await sim({ rateDown: 800_000, stallEveryMs: 200, stallMs: 250, seed: 3 }, t.port);
    const c = await client(link.port);
    c.on('data', () => {});
    expect(await downSamples(link, 2000)).toBeGreaterThan(3);
    expect(link.stats().stalls).toBeGreaterThanOrEqual(2);
    expect(c.destroyed).toBe(false);
    expect(link.stats().resets).toBe(0);
  });

  describe('corruption', () => {
    const data = randomBytes(400_000);
    async function corruptedPositions(seed: number): Promise<number[]> {
      const t = await target();
      const link = await sim({ corruptRate: 1e-3, seed }, t.port);
      const c = await client(link.port);
      c.end(data);
      while (t.received.reduce((n, b) => n + b.length, 0) < data.length) await sleep(5);
      const got = Buffer.concat(t.received);
      expect(got.length).toBe(data.length);
      const positions: number[] = [];
      for (let i = 0; i < data.length; i++) {
        if (got[i] !== data[i]) {
          positions.push(i);
          const x = got[i]! ^ data[i]!;
          expect(x & (x - 1)).toBe(0); // exactly one bit flipped
        }
      }
      expect(link.stats().corruptedBytes).toBe(positions.length);
      return positions;
    }

    it('flips one bit in about rate x bytes, at positions the seed decides', async () => {
      const a = await corruptedPositions(42);
      expect(a.length).toBeGreaterThan(400 * 0.7);
      expect(a.length).toBeLessThan(400 * 1.3);
      expect(await corruptedPositions(42)).toEqual(a);
      expect(await corruptedPositions(43)).not.toEqual(a);
    });
  });

  it('refuses bad options with FERRY_ERR_USAGE', async () => {
    for (const bad of [{ rateDown: 0 }, { corruptRate: 2 }, { latencyUpMs: -1 }, { schedule: { kind: 'fixed' as const, upMs: 0, downMs: 1 } }]) {
      const err = await startLinkSim({ target: { host: '127.0.0.1', port: 9 }, ...bad }).catch((e: unknown) => e);
      expect(isFerryError(err, 'FERRY_ERR_USAGE'), JSON.stringify(bad)).toBe(true);
    }
  });
});
