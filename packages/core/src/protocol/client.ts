/**
 * A small JSON client for the protocol's API (publishing commands, admin commands; an agent may
 * use it for check-ins): bearer token, the answer read under a size cap, a non-2xx answer turned
 * back into the server's FerryError, a failed connection into FERRY_ERR_NETWORK.
 */
import { FerryError } from '../errors.js';
import { PROTOCOL_LIMITS } from './constants.js';
import { errorFromBody, parseJsonText } from './answers.js';

/** What ApiClient reads of an answer (a fetch Response has it). */
export interface ApiResponse {
  ok: boolean;
  status: number;
  headers: { get(name: string): string | null };
  body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | null;
}

/** What ApiClient sends: the global fetch, or another transport (the agent's node:http one). */
export type ApiFetch = (url: URL, init: { method: string; headers: Record<string, string>; body?: unknown; signal?: AbortSignal | undefined }) => Promise<ApiResponse>;

/** How requests are made (the fetch implementation is injectable). */
export interface ApiClientOptions {
  /** Server base URL (`https://ferry.example:8443`). */
  server: string;
  token?: string | undefined;
  /** Default: the global fetch. */
  fetch?: ApiFetch;
  /** Largest answer read (default PROTOCOL_LIMITS.jsonAnswer). */
  maxAnswer?: number;
}

/** One request. */
export interface ApiRequest {
  method: string;
  /** Path under the server, starting with `/`. */
  path: string;
  /** A JSON body. */
  json?: unknown;
  /** A raw body (a stream needs `length`). */
  body?: BodyInit | AsyncIterable<Uint8Array>;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

/** Reads a response body as text, failing as soon as it passes `cap` bytes. */
export async function readCapped(res: ApiResponse, cap: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? -1);
  if (declared > cap) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `the answer is ${declared} bytes, over the ${cap}-byte cap`);
  if (!res.body) return '';
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    n += chunk.byteLength;
    if (n > cap) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `the answer passed the ${cap}-byte cap`);
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** A client for one server. */
export class ApiClient {
  constructor(private readonly o: ApiClientOptions) {}

  /** Sends a request; returns the parsed JSON answer (undefined for an empty one) and the status. */
  async request(r: ApiRequest): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = { accept: 'application/json', ...r.headers };
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    let body = r.body;
    if (r.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(r.json);
    }
    const url = new URL(r.path.replace(/^\//, ''), this.o.server.endsWith('/') ? this.o.server : `${this.o.server}/`);
    let res: ApiResponse;
    try {
      const init = { method: r.method, headers, body, signal: r.signal, duplex: 'half' };
      res = await (this.o.fetch ?? (fetch as unknown as ApiFetch))(url, init);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw new FerryError('FERRY_ERR_ABORTED', `${r.method} ${url.pathname} aborted`, { cause: err });
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new FerryError('FERRY_ERR_NETWORK', `cannot reach ${url.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
    }
    const text = await readCapped(res, this.o.maxAnswer ?? PROTOCOL_LIMITS.jsonAnswer);
    const parsed = text.length > 0 ? (res.ok ? parseJsonText(text, `answer to ${r.method} ${url.pathname}`) : safeJson(text)) : undefined;
    if (!res.ok) throw errorFromBody(parsed, res.status);
    return { status: res.status, body: parsed };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
