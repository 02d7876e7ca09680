/**
 * The agent's side of the protocol (docs/protocol.md section 3): check-ins and reports to the
 * first server that answers (a relay, then the server), and bundle headers from the chunk sources
 * or the assignment's repository, read under the header cap and checked against the bundle id.
 */
import { join } from 'node:path';
import { ApiClient, FerryError, HEADER_MAX_BYTES, headerPath, isFerryError, messages, readRegularFile, sha256, toFerryError, writeFileAtomic, type CheckinAnswer, type CheckinRequest, type Digest, type Report, type ReportsAnswer } from '@ferry/core';
import type { Counter } from './agent-state.js';
import { downloadHeader } from './header-download.js';
import { createHttpTransport, transportFetch, type HttpTransport } from './http.js';
import { SerialQueue } from './serial.js';
import { parseSource } from './sources.js';

/** Longest a check-in, a report or a header download may take before it is dropped. */
const REQUEST_TIMEOUT_MS = 120_000;

/** Talks to the servers an agent knows, in order. */
export class AgentApi {
  private readonly clients: ApiClient[];
  /** The server that answered last: tried first next time. */
  private preferred = 0;
  /** Numbered requests, one at a time (see {@link numbered}). */
  private readonly inOrder = new SerialQueue();
  /** node:http rather than the global fetch (transportFetch). */
  private readonly transport = createHttpTransport({ maxSockets: 1 });

  constructor(
    servers: string[],
    token: string,
    private readonly id: string,
    private readonly counter: Pick<Counter, 'take'>,
  ) {
    this.clients = servers.map((server) => new ApiClient({ server, token, fetch: transportFetch(this.transport) }));
  }

  /** Closes the pooled sockets. */
  close(): void {
    this.transport.close();
  }

  /** Checks in (the request counter is filled in here); the answer is shape-checked. */
  async checkin(body: Omit<CheckinRequest, 'counter'>, signal?: AbortSignal): Promise<CheckinAnswer> {
    return messages.checkinAnswer(await this.numbered(`/v1/agents/${this.id}/checkin`, body, signal));
  }

  /** Sends buffered reports. */
  async reports(reports: Report[], signal?: AbortSignal): Promise<ReportsAnswer> {
    return messages.reportsAnswer(await this.numbered(`/v1/agents/${this.id}/reports`, { reports }, signal));
  }

  /**
   * Posts a request that carries the agent's request counter: one at a time, the counter taken
   * just before it is sent. The server takes only a counter higher than the last it accepted, so
   * two requests in flight at once (a check-in during a transfer, a report flush) could arrive out
   * of order and the later-numbered one's success refuse the other. A refusal as a replay all the
   * same (an abandoned request of ours that reached the server late) is retried once with a fresh
   * counter, which is above every one this agent has used.
   */
  private numbered(path: string, body: object, signal?: AbortSignal): Promise<unknown> {
    const send = async (): Promise<unknown> => this.post(path, { ...body, counter: await this.counter.take() }, signal);
    const run = async (): Promise<unknown> => {
      try {
        return await send();
      } catch (err) {
        if (!isFerryError(err) || err.code !== 'FERRY_ERR_PROTOCOL_REPLAY') throw err;
        return send();
      }
    };
    return this.inOrder.run(run);
  }

  /**
   * Whether any server answers now: one small GET each, and any HTTP answer (a 404 included) means
   * the link is up. The daemon's backoff after a network failure ends on it (backoff.ts).
   */
  async probe(signal: AbortSignal): Promise<boolean> {
    for (const client of this.clients) {
      try {
        await client.request({ method: 'GET', path: '/v1/', signal });
        return true;
      } catch (err) {
        if (isFerryError(err) && err.code !== 'FERRY_ERR_NETWORK' && err.code !== 'FERRY_ERR_ABORTED') return true;
      }
    }
    return false;
  }

  /** Posts to each server in turn until one answers; a server's own error answer is final. */
  private async post(path: string, json: unknown, signal?: AbortSignal): Promise<unknown> {
    let last: FerryError | undefined;
    for (let k = 0; k < this.clients.length; k++) {
      const i = (this.preferred + k) % this.clients.length;
      const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
      try {
        const { body } = await this.clients[i]!.request({ method: 'POST', path, json, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
        this.preferred = i;
        return body;
      } catch (err) {
        signal?.throwIfAborted();
        if (isFerryError(err) && isTransientStatus(err)) {
          // a front (nginx, a proxy) answering 5xx, 408 or 429 without a ferry body: try again later
          last = new FerryError('FERRY_ERR_FETCH_HTTP', `${path}: HTTP ${err.details!.status as number}`, { cause: err, details: err.details });
          continue;
        }
        if (!isFerryError(err) || (err.code !== 'FERRY_ERR_NETWORK' && err.code !== 'FERRY_ERR_ABORTED')) throw err;
        last = err.code === 'FERRY_ERR_ABORTED' ? new FerryError('FERRY_ERR_NETWORK', `${path}: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`, { cause: err }) : err;
      }
    }
    throw last!;
  }
}

/** A non-ferry error answer with a status that says "not now": 408, 429 or 5xx. */
function isTransientStatus(err: FerryError): boolean {
  const status = err.details?.status;
  return err.code === 'FERRY_ERR_PROTOCOL_INVALID' && typeof status === 'number' && (status === 408 || status === 429 || status >= 500);
}

/**
 * The header envelope of bundle `id`: from the cache directory (`headers/<hex>`, kept from an
 * earlier download), a directory source, or an HTTP source, in that order. Read at most to the
 * header cap and checked against `id` (sha256 of the envelope); an HTTP copy is kept in the cache.
 */
export async function loadHeader(id: Digest, cacheDir: string, sources: string[], signal?: AbortSignal, transport?: HttpTransport): Promise<Uint8Array> {
  const dirs = [cacheDir, ...sources.map(parseSource).flatMap((s) => (s.kind === 'file' ? [s.dir] : []))];
  for (const dir of dirs) {
    const bytes = await readHeaderFile(join(dir, headerPath(id)), signal);
    if (!bytes || sha256(bytes) !== id) continue;
    // a copy in the cache keeps the transfer's chunks when the cache is pruned (cache-prune.ts)
    if (dir !== cacheDir) await writeFileAtomic(join(cacheDir, headerPath(id)), bytes, { signal });
    return bytes;
  }
  const http = sources.map(parseSource).filter((s) => s.kind === 'http');
  if (http.length === 0) throw new FerryError('FERRY_ERR_NOT_FOUND', `no source holds header ${id}`);
  const own = transport ? undefined : createHttpTransport({ maxSockets: 1 });
  let last: FerryError | undefined;
  try {
    for (const s of http) {
      try {
        const bytes = await downloadHeader((transport ?? own)!, new URL(headerPath(id), s.base), id, { signal, timeoutMs: REQUEST_TIMEOUT_MS });
        await writeFileAtomic(join(cacheDir, headerPath(id)), bytes, { signal });
        return bytes;
      } catch (err) {
        signal?.throwIfAborted();
        last = toFerryError(err, s.name);
      }
    }
  } finally {
    own?.close();
  }
  throw last!;
}

/** A cached or source header file, read bounded; undefined when it is missing or not one. */
export async function readHeaderFile(path: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  try {
    return await readRegularFile(path, { what: 'bundle header', missing: 'FERRY_ERR_NOT_FOUND', notRegular: 'FERRY_ERR_BUNDLE_INVALID', maxBytes: HEADER_MAX_BYTES, signal });
  } catch (err) {
    if (isFerryError(err) && err.code !== 'FERRY_ERR_ABORTED' && err.code !== 'FERRY_ERR_IO') return undefined;
    throw err;
  }
}
