/**
 * A real node:http server (port 0) serving a bundle repository directory (docs/protocol.md section
 * 2: `chunks/<hex>` and `headers/<hex>` with Range, If-Range, strong ETag) with switchable faults,
 * for the fetcher's fault tests: error statuses (with or without Retry-After), a stall before the
 * first byte, a trickle, a reset mid-body, a 200 to a Range request, a 206 at the wrong offset,
 * another object at the URL, a flipped bit, a body longer than the chunk. It counts what it sent.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';

/** One way to misbehave. */
export type Fault =
  /** Answer this status (a list: each in turn), with a small body, optionally with Retry-After. */
  | { kind: 'status'; status: number | number[]; retryAfter?: string }
  /** Accept the request and never answer. */
  | { kind: 'stall' }
  /** Send the headers, then the body at this many bytes per second. */
  | { kind: 'trickle'; bytesPerSecond: number }
  /** Send this many body bytes, then reset the connection (RST). */
  | { kind: 'reset'; afterBytes: number }
  /** Answer a Range request with 200 and the whole chunk. */
  | { kind: 'ignore-range' }
  /** Answer a Range request with a 206 starting `shift` bytes away from the asked offset. */
  | { kind: 'wrong-offset'; shift: number }
  /** Serve these bytes as the object at the URL (another release's chunk). */
  | { kind: 'substitute'; body: Buffer }
  /** Flip one bit of the body (at `at`, default its middle). */
  | { kind: 'flip-bit'; at?: number }
  /** Send `extra` bytes past the object's end, without Content-Length. */
  | { kind: 'too-long'; extra: number };

/** When a fault applies. */
export interface FaultRule {
  fault: Fault;
  /** Fraction of the requests it matches that it hits, spread evenly (default 1: all). */
  rate?: number;
  /** How many requests it may still hit (default unlimited). */
  times?: number;
  /** Only chunk requests this accepts. */
  match?: (req: { hex: string; rangeStart: number | undefined }) => boolean;
}

/** What the server did. */
export interface RepoServerStats {
  requests: number;
  /** Start offsets of the ranged chunk requests. */
  rangeStarts: number[];
  statuses: Record<number, number>;
  /** Body bytes handed to sockets for chunk requests (an upper bound on what clients received). */
  bodyBytes: number;
  bodyBytesByChunk: Map<string, number>;
  /** Faults applied, by kind. */
  applied: Record<string, number>;
  /** Every chunk request: chunk, asked range start, status answered (0: none, a stall), time (performance.now and Date.now, ms). */
  log: { hex: string; rangeStart: number | undefined; status: number; at: number; wall: number }[];
}

/** A running repository server. */
export interface RepoServer {
  /** Base URL of the repository (ends with `/`). */
  url: string;
  port: number;
  /** Rules tried in order for each chunk request; change them at any time. */
  faults: FaultRule[];
  stats: RepoServerStats;
  close(): Promise<void>;
}

interface Plan {
  status: number;
  start: number;
  end: number;
  total: number;
}

/** `bytes=a-`, `bytes=a-b`, `bytes=-n` against an object of `size` bytes; undefined: no usable range. */
function rangeOf(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return { start: Math.max(0, size - Number(m[2])), end: size - 1 };
  const start = Number(m[1]);
  if (start >= size) return 'unsatisfiable';
  return { start, end: m[2] === '' ? size - 1 : Math.min(size - 1, Number(m[2])) };
}

function pickFault(rules: FaultRule[], req: { hex: string; rangeStart: number | undefined }): Fault | undefined {
  for (const r of rules) {
    if ((r.times ?? Infinity) <= 0 || (r.match && !r.match(req))) continue;
    const state = r as FaultRule & { seen?: number };
    state.seen = (state.seen ?? 0) + 1;
    const rate = r.rate ?? 1;
    if (Math.floor(state.seen * rate) > Math.floor((state.seen - 1) * rate)) {
      if (r.times !== undefined) r.times--;
      return r.fault;
    }
  }
  return undefined;
}

/** Starts a server for the repository at `dir`, under `/repo/`. */
export async function startRepoServer(dir: string): Promise<RepoServer> {
  const stats: RepoServerStats = { requests: 0, rangeStarts: [], statuses: {}, bodyBytes: 0, bodyBytesByChunk: new Map(), applied: {}, log: [] };
  const faults: FaultRule[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const count = (hex: string, n: number): void => {
    stats.bodyBytes += n;
    stats.bodyBytesByChunk.set(hex, (stats.bodyBytesByChunk.get(hex) ?? 0) + n);
  };
  const head = (res: ServerResponse, status: number, headers: Record<string, string | number>): void => {
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    res.writeHead(status, headers);
  };

  function trickle(res: ServerResponse, hex: string, body: Buffer, bytesPerSecond: number): void {
    const tick = Math.max(10, 1000 / bytesPerSecond);
    const step = Math.max(1, Math.round((bytesPerSecond * tick) / 1000));
    let at = 0;
    const t = setInterval(() => {
      if (res.destroyed || at >= body.length) {
        clearInterval(t);
        timers.delete(t);
        if (!res.destroyed) res.end();
        return;
      }
      const part = body.subarray(at, at + step);
      at += part.length;
      count(hex, part.length);
      res.write(part);
    }, tick);
    timers.add(t);
  }

  async function chunk(req: IncomingMessage, res: ServerResponse, hex: string): Promise<void> {
    let object: Buffer;
    try {
      object = await readFile(join(dir, 'chunks', hex));
    } catch {
      head(res, 404, { 'content-length': 0 });
      res.end();
      return;
    }
    const ifRange = req.headers['if-range'];
    const rangeHeader = ifRange === undefined || ifRange === `"${hex}"` ? req.headers.range : undefined;
    const asked = rangeOf(rangeHeader, object.length);
    const rangeStart = typeof asked === 'object' ? asked.start : undefined;
    const fault = pickFault(faults, { hex, rangeStart });
    if (fault) stats.applied[fault.kind] = (stats.applied[fault.kind] ?? 0) + 1;
    const entry = { hex, rangeStart, status: 0, at: performance.now(), wall: Date.now() };
    stats.log.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    res.on('close', () => (entry.status = res.headersSent ? res.statusCode : 0));
    if (fault?.kind === 'status') {
      const list = ([] as number[]).concat(fault.status);
      head(res, list[(stats.applied.status! - 1) % list.length]!, { 'content-type': 'text/plain', ...(fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {}) });
      res.end('fault');
      return;
    }
    if (fault?.kind === 'stall') return;
    if (fault?.kind === 'substitute') object = fault.body;
    const range = fault?.kind === 'ignore-range' ? undefined : fault?.kind === 'substitute' ? rangeOf(rangeHeader, object.length) : asked;
    if (range === 'unsatisfiable') {
      head(res, 416, { 'content-range': `bytes */${object.length}`, 'content-length': 0 });
      res.end();
      return;
    }
    const plan: Plan = range ? { status: 206, start: range.start, end: range.end, total: object.length } : { status: 200, start: 0, end: object.length - 1, total: object.length };
    if (fault?.kind === 'wrong-offset' && range) plan.start = Math.min(plan.end, Math.max(0, plan.start + fault.shift));
    let body = object.subarray(plan.start, plan.end + 1);
    if (fault?.kind === 'flip-bit' && body.length > 0) {
      body = Buffer.from(body);
      const at = Math.min(body.length - 1, fault.at ?? Math.floor(body.length / 2));
      body[at] = body[at]! ^ 1;
    }
    if (fault?.kind === 'too-long') body = Buffer.concat([body, Buffer.alloc(fault.extra, 0x5a)]);
    const headers: Record<string, string | number> = { etag: `"${hex}"`, 'accept-ranges': 'bytes', 'cache-control': 'public, max-age=31536000, immutable' };
    if (plan.status === 206) headers['content-range'] = `bytes ${plan.start}-${plan.end}/${plan.total}`;
    if (fault?.kind === 'too-long') headers.connection = 'close';
    else headers['content-length'] = body.length;
    head(res, plan.status, headers);
    if (req.method === 'HEAD') return void res.end();
    if (fault?.kind === 'trickle') return trickle(res, hex, body, fault.bytesPerSecond);
    if (fault?.kind === 'reset') {
      const part = body.subarray(0, Math.min(fault.afterBytes, body.length));
      count(hex, part.length);
      res.write(part, () => res.socket?.resetAndDestroy());
      return;
    }
    count(hex, body.length);
    res.end(body);
  }

  const server = createServer((req, res) => {
    stats.requests++;
    const m = /^\/repo\/(chunks|headers)\/([0-9a-f]{64})$/.exec(req.url ?? '');
    if (!m || (req.method !== 'GET' && req.method !== 'HEAD')) {
      head(res, m ? 405 : 404, { 'content-length': 0 });
      return void res.end();
    }
    if (m[1] === 'chunks' && req.headers.range) stats.rangeStarts.push(Number(/^bytes=(\d+)-/.exec(req.headers.range)?.[1] ?? -1));
    const served = m[1] === 'chunks' ? chunk(req, res, m[2]!) : readFile(join(dir, 'headers', m[2]!)).then((b) => (head(res, 200, { 'content-length': b.length }), res.end(b)));
    served.catch(() => {
      if (!res.headersSent) head(res, 404, { 'content-length': 0 });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/repo/`,
    port,
    faults,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearInterval(t);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
