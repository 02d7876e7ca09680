/**
 * `ferry linksim` as a user runs it: a child process proxying a real TCP target on loopback,
 * announcing its port (--json lines), carrying bytes at its rate, stopping on SIGINT with its
 * final statistics, and refusing bad options with one line and exit 2.
 */
import { spawn } from 'node:child_process';
import { createServer, connect, type Server } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, ensureBuilt, ferry } from '@ferry/test-support';

let target: Server;
let port: number;

beforeAll(async () => {
  await ensureBuilt();
  target = createServer((s) => {
    s.on('error', () => {});
    s.end(Buffer.alloc(20_000, 9));
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  port = (target.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => target.close(() => r())));

describe('ferry linksim', () => {
  it('proxies a connection at its rate and prints its statistics when stopped', async () => {
    const child = spawn(process.execPath, [MAIN, 'linksim', '--listen', '127.0.0.1:0', '--target', `127.0.0.1:${port}`, '--rate', '400kbit', '--latency', '20ms', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    try {
      const listening = JSON.parse((await lines.next()).value as string) as { event: string; port: number };
      expect(listening.event).toBe('listening');
      const got = await new Promise<number>((resolve, reject) => {
        let n = 0;
        const c = connect({ host: '127.0.0.1', port: listening.port });
        c.on('data', (b: Buffer) => (n += b.length));
        c.on('end', () => resolve(n));
        c.on('error', reject);
      });
      expect(got).toBe(20_000);
      child.kill('SIGINT');
      const closed = JSON.parse((await lines.next()).value as string) as { event: string; stats: { bytesDown: number; connections: number } };
      expect(closed).toMatchObject({ event: 'closed', stats: { bytesDown: 20_000, connections: 1 } });
      const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.on('exit', r)));
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses bad options with one line and exit 2', async () => {
    for (const args of [
      ['--listen', '127.0.0.1:0'],
      ['--listen', '127.0.0.1:0', '--target', 'nowhere'],
      ['--listen', '127.0.0.1:0', '--target', '127.0.0.1:9', '--rate', 'fast'],
      ['--listen', '127.0.0.1:0', '--target', '127.0.0.1:9', '--down-mode', 'explode'],
      ['--listen', '127.0.0.1:0', '--target', '127.0.0.1:9', '--up', '20s'],
      ['--listen', '127.0.0.1:0', '--target', '127.0.0.1:9', '--corrupt', '2'],
    ]) {
      const r = await ferry(['linksim', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ferry: error FERRY_ERR_USAGE: \S/);
    }
  });
});
