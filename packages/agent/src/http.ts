/**
 * The HTTP transport of the fetcher: node:http/https with keep-alive agents. Chosen over fetch
 * (undici) because the fetcher needs the raw socket: it counts every byte read and written
 * (headers included, for the wire-overhead figures), bounds a body as it arrives, and destroys
 * the socket of a stalled or over-long answer so it is never reused; node:http gives all of that
 * without a dependency, and its IncomingMessage is an async iterable with backpressure (which the
 * bandwidth cap relies on).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { FerryError, type ApiFetch } from '@ferry/core';

/** An answer whose body is read as it arrives. */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: AsyncIterable<Buffer>;
  /** Drops the connection (it is never reused); safe to call more than once. */
  abort(): void;
}

/** What the fetcher (and, through transportFetch, the agent's API client) needs from HTTP. */
export interface HttpTransport {
  /** Sends a GET; resolves on the response headers. Aborting `signal` destroys the socket. */
  get(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<HttpResponse>;
  /** Sends any request with an optional body; resolves on the response headers. */
  request(method: string, url: URL, headers: Record<string, string>, signal: AbortSignal | undefined, body?: string | Uint8Array): Promise<HttpResponse>;
  /** Bytes read from and written to sockets so far, headers included. */
  wire(): { received: number; sent: number };
  /** Destroys every pooled socket. */
  close(): void;
}

/** Options of {@link createHttpTransport}. */
export interface HttpTransportOptions {
  /** Sockets per host (default 3: one per chunk in flight). */
  maxSockets?: number;
  /** Extra CA certificates (PEM) for https sources. */
  ca?: string | Buffer | undefined;
}

/** A keep-alive transport over node:http and node:https. */
export function createHttpTransport(options: HttpTransportOptions = {}): HttpTransport {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 3, scheduling: 'lifo' as const };
  const http = new HttpAgent(agentOptions);
  const https = new HttpsAgent({ ...agentOptions, ...(options.ca !== undefined ? { ca: options.ca } : {}) });
  const live = new Set<Socket>();
  const closed = { received: 0, sent: 0 };

  const track = (socket: Socket): void => {
    if (live.has(socket)) return;
    live.add(socket);
    socket.once('close', () => {
      live.delete(socket);
      closed.received += socket.bytesRead;
      closed.sent += socket.bytesWritten;
    });
  };

  const request: HttpTransport['request'] = (method, url, headers, signal, body) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const req = (secure ? httpsRequest : httpRequest)(url, { method, headers, agent: secure ? https : http, signal });
      req.on('socket', track);
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        const abort = (): void => {
          res.destroy();
          req.destroy();
        };
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, abort });
      });
      req.end(body);
    });

  return {
    request,
    get: (url, headers, signal) => request('GET', url, headers, signal),
    wire() {
      let received = closed.received;
      let sent = closed.sent;
      for (const s of live) {
        received += s.bytesRead;
        sent += s.bytesWritten;
      }
      return { received, sent };
    },
    close() {
      http.destroy();
      https.destroy();
    },
  };
}

/**
 * An ApiFetch (core's ApiClient) over this transport: the agent's check-ins and reports go over
 * node:http, which the fetcher loads anyway, instead of the global fetch, which loads undici on
 * first use (+9.8 MiB against +4.0 MiB for node:http, measured in a bare process; the agent's
 * budget is 128 MB). Only string and byte bodies: the agent sends nothing else.
 */
export function transportFetch(transport: HttpTransport): ApiFetch {
  return async (url, init) => {
    const body = init.body;
    if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) throw new FerryError('FERRY_ERR_INTERNAL', 'the agent sends only string or byte bodies');
    const res = await transport.request(init.method, url, init.headers, init.signal, body);
    const get = (name: string): string | null => {
      const v = res.headers[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
    };
    return { ok: res.status >= 200 && res.status < 300, status: res.status, headers: { get }, body: res.body };
  };
}
