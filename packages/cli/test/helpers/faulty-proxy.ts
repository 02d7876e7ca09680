/**
 * A faulty front for a ferry server (issue 9 item 6): a node:http proxy on port 0 that answers a
 * seeded fraction of every request (check-ins, reports, headers, chunks) with 500, 503 or 408
 * instead of forwarding it, and counts the chunk body bytes it forwards, so a test can check the
 * bytes an agent fetched against the payload. The Host header is kept, so the server announces
 * the proxy as the repository.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { rng } from '@ferry/test-support';

/** A running proxy. */
export interface FaultyProxy {
  url: string;
  /** Fraction of requests answered with an error (change at any time). */
  failRate: number;
  /** Chunk body bytes forwarded to clients. */
  chunkBytes: number;
  /** Chunk body bytes forwarded, by request path (no query). */
  chunkBytesByPath: Map<string, number>;
  /** Errors answered, by status. */
  failed: Record<number, number>;
  /**
   * Holds a chunk answer: after `after` body bytes, nothing more is forwarded until `gate`
   * resolves (a transfer kept in flight while a test does something else).
   */
  hold?: ((path: string) => { after: number; gate: Promise<void> } | undefined) | undefined;
  close(): Promise<void>;
}

/** Starts the proxy in front of `target` (`http://host:port`). */
export async function startFaultyProxy(target: string, failRate: number, seed = 1): Promise<FaultyProxy> {
  const t = new URL(target);
  const random = rng(seed);
  const p: FaultyProxy = { url: '', failRate, chunkBytes: 0, chunkBytesByPath: new Map(), failed: {}, close: async () => {} };
  const statuses = [500, 503, 408];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (random() < p.failRate) {
      const status = statuses[Math.floor(random() * statuses.length)]!;
      p.failed[status] = (p.failed[status] ?? 0) + 1;
      req.resume();
      res.writeHead(status, status === 503 ? { 'retry-after': '0', connection: 'close' } : { connection: 'close' }).end();
      return;
    }
    const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      const path = req.url ?? '';
      const isChunk = path.startsWith('/repo/chunks/');
      const hold = isChunk ? p.hold?.(path) : undefined;
      let sent = 0;
      const fwd = (b: Buffer): void => {
        if (isChunk) {
          p.chunkBytes += b.length;
          p.chunkBytesByPath.set(path, (p.chunkBytesByPath.get(path) ?? 0) + b.length);
        }
        res.write(b);
      };
      answer.on('data', (b: Buffer) => {
        if (hold && sent < hold.after && sent + b.length >= hold.after) {
          const cut = hold.after - sent;
          fwd(b.subarray(0, cut));
          sent += b.length;
          answer.pause();
          void hold.gate.then(() => {
            if (res.destroyed) return;
            fwd(b.subarray(cut));
            answer.resume();
          });
          return;
        }
        sent += b.length;
        fwd(b);
      });
      answer.on('end', () => res.end());
      answer.on('error', () => res.destroy());
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as { port: number };
  p.url = `http://127.0.0.1:${addr.port}`;
  p.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return p;
}
