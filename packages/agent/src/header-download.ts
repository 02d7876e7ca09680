/**
 * One bundle header envelope over HTTP, shared by the agent and the relay (DESIGN.md section 8):
 * read as it arrives and refused past HEADER_MAX_BYTES, then checked against its id (the sha256 of
 * the envelope) before anyone uses or keeps it.
 */
import { FerryError, HEADER_MAX_BYTES, digestHex, isFerryError, sha256, type Digest } from '@ferry/core';
import type { HttpTransport } from './http.js';

/** Options of {@link downloadHeader}. */
export interface HeaderDownloadOptions {
  /** Stops the download: FERRY_ERR_ABORTED. */
  signal?: AbortSignal | undefined;
  /** No complete answer within this many ms is FERRY_ERR_NETWORK (default 120 s). */
  timeoutMs?: number;
}

/**
 * Downloads header `id` from `url`. Errors: FERRY_ERR_NOT_FOUND (404), FERRY_ERR_FETCH_HTTP (any
 * other status but 200, with `details.status`), FERRY_ERR_NETWORK (no connection, a cut, the
 * timeout), FERRY_ERR_LIMIT_EXCEEDED (over the header cap), FERRY_ERR_BUNDLE_INVALID (other bytes
 * than `id` names), FERRY_ERR_ABORTED.
 */
export async function downloadHeader(transport: HttpTransport, url: URL, id: Digest, options: HeaderDownloadOptions = {}): Promise<Buffer> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const failed = (err: unknown): FerryError => {
    if (isFerryError(err)) return err;
    if (options.signal?.aborted) return new FerryError('FERRY_ERR_ABORTED', `${url.href}: aborted`, { cause: err });
    const why = timeout.aborted ? `no answer within ${timeoutMs / 1000} s` : (err as Error).message;
    return new FerryError('FERRY_ERR_NETWORK', `${url.href}: ${why}`, { cause: err });
  };
  let res;
  try {
    res = await transport.get(url, { 'accept-encoding': 'identity' }, signal);
  } catch (err) {
    throw failed(err);
  }
  const parts: Buffer[] = [];
  try {
    if (res.status === 404) throw new FerryError('FERRY_ERR_NOT_FOUND', `${url.href}: 404`);
    if (res.status !== 200) throw new FerryError('FERRY_ERR_FETCH_HTTP', `${url.href}: HTTP ${res.status}`, { details: { status: res.status } });
    let n = 0;
    for await (const b of res.body) {
      n += b.length;
      if (n > HEADER_MAX_BYTES) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `${url.href}: header over ${HEADER_MAX_BYTES} bytes`);
      parts.push(b);
    }
  } catch (err) {
    res.abort();
    throw failed(err);
  }
  const bytes = Buffer.concat(parts);
  if (sha256(bytes) !== id) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `${url.href}: header does not match its id ${digestHex(id).slice(0, 12)}`, { details: { digest: id } });
  return bytes;
}
