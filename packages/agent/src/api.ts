/**
 * The agent's side of the protocol (docs/protocol.md section 3): check-ins and reports to the
 * first server that answers (a relay, then the server), and bundle headers from the chunk sources
 * or the assignment's repository, read under the header cap and checked against the bundle id.
 */
import { join } from 'node:path';
import { ApiClient, digestHex, FerryError, HEADER_MAX_BYTES, headerPath, isFerryError, protocol, readRegularFile, sha256, writeFileAtomic, type CheckinAnswer, type CheckinRequest, type Digest, type Report, type ReportsAnswer } from '@ferry/core';
import { parseSource } from './sources.js';

/** Longest a check-in, a report or a header download may take before it is dropped. */
const REQUEST_TIMEOUT_MS = 120_000;

/** Talks to the servers an agent knows, in order. */
export class AgentApi {
  private readonly clients: ApiClient[];
  /** The server that answered last: tried first next time. */
  private preferred = 0;

  constructor(servers: string[], token: string, private readonly id: string) {
    this.clients = servers.map((server) => new ApiClient({ server, token }));
  }

  /** Checks in; the answer is shape-checked. */
  async checkin(body: CheckinRequest, signal?: AbortSignal): Promise<CheckinAnswer> {
    const res = await this.post(`/v1/agents/${this.id}/checkin`, body, signal);
    return protocol.checkinAnswer(res);
  }

  /** Sends buffered reports. */
  async reports(counter: number, reports: Report[], signal?: AbortSignal): Promise<ReportsAnswer> {
    return protocol.reportsAnswer(await this.post(`/v1/agents/${this.id}/reports`, { counter, reports }, signal));
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
export async function loadHeader(id: Digest, cacheDir: string, sources: string[], signal?: AbortSignal): Promise<Uint8Array> {
  const dirs = [cacheDir, ...sources.map(parseSource).flatMap((s) => (s.kind === 'file' ? [s.dir] : []))];
  for (const dir of dirs) {
    const bytes = await readHeaderFile(join(dir, headerPath(id)), signal);
    if (bytes && sha256(bytes) === id) return bytes;
  }
  let last: FerryError | undefined;
  for (const s of sources.map(parseSource)) {
    if (s.kind !== 'http') continue;
    try {
      const bytes = await downloadHeader(new URL(headerPath(id), s.base), signal);
      if (sha256(bytes) !== id) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `${s.name}: header ${digestHex(id).slice(0, 12)} does not match its id`);
      await writeFileAtomic(join(cacheDir, headerPath(id)), bytes, { signal });
      return bytes;
    } catch (err) {
      signal?.throwIfAborted();
      last = isFerryError(err) ? err : new FerryError('FERRY_ERR_NETWORK', `${s.name}: ${(err as Error).message}`, { cause: err });
    }
  }
  throw last ?? new FerryError('FERRY_ERR_NOT_FOUND', `no source holds header ${id}`);
}

async function readHeaderFile(path: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  try {
    return await readRegularFile(path, { what: 'bundle header', missing: 'FERRY_ERR_NOT_FOUND', notRegular: 'FERRY_ERR_BUNDLE_INVALID', maxBytes: HEADER_MAX_BYTES, signal });
  } catch (err) {
    if (isFerryError(err) && err.code !== 'FERRY_ERR_ABORTED' && err.code !== 'FERRY_ERR_IO') return undefined;
    throw err;
  }
}

async function downloadHeader(url: URL, signal?: AbortSignal): Promise<Buffer> {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  let res: Response;
  try {
    res = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  } catch (err) {
    signal?.throwIfAborted();
    throw new FerryError('FERRY_ERR_NETWORK', `${url.href}: ${(err as Error).message}`, { cause: err });
  }
  if (res.status === 404) throw new FerryError('FERRY_ERR_NOT_FOUND', `${url.href}: 404`);
  if (!res.ok || !res.body) throw new FerryError('FERRY_ERR_FETCH_HTTP', `${url.href}: HTTP ${res.status}`, { details: { status: res.status } });
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      n += chunk.byteLength;
      if (n > HEADER_MAX_BYTES) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `${url.href}: header over ${HEADER_MAX_BYTES} bytes`);
      parts.push(chunk);
    }
  } catch (err) {
    if (isFerryError(err)) throw err;
    signal?.throwIfAborted();
    throw new FerryError('FERRY_ERR_NETWORK', `${url.href}: ${(err as Error).message}`, { cause: err });
  }
  return Buffer.concat(parts);
}
