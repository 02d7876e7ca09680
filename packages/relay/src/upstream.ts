/**
 * Check-ins and reports forwarded to the upstream server (docs/protocol.md section 7): the agent's
 * body and Authorization header as they came, the answer read under the protocol's cap. A failed
 * connection or a timeout means upstream is down (the caller buffers or answers from its own state);
 * any HTTP answer, an error included, is upstream's word and goes back to the agent as it is.
 */
import { FerryError, PROTOCOL_LIMITS, readCapped } from '@ferry/core';

/** An upstream answer. */
export interface UpstreamAnswer {
  status: number;
  /** The body text (JSON). */
  text: string;
  retryAfter: string | undefined;
}

/** Posts JSON to the upstream server. */
export class Upstream {
  constructor(
    private readonly base: string,
    private readonly timeoutMs: number,
  ) {}

  /** Posts `body`; FERRY_ERR_UPSTREAM_UNAVAILABLE when upstream cannot be reached or does not answer in time. */
  async post(path: string, body: string, authorization: string | undefined, signal?: AbortSignal): Promise<UpstreamAnswer> {
    const url = new URL(path.replace(/^\//, ''), this.base);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      const res = await fetch(url, { method: 'POST', headers, body, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      const text = await readCapped(res, PROTOCOL_LIMITS.jsonAnswer);
      return { status: res.status, text, retryAfter: res.headers.get('retry-after') ?? undefined };
    } catch (err) {
      if (err instanceof FerryError && err.code === 'FERRY_ERR_LIMIT_EXCEEDED') throw err;
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new FerryError('FERRY_ERR_UPSTREAM_UNAVAILABLE', `upstream ${url.origin} is unreachable: ${cause?.code ?? (err as Error).message}`, { cause: err });
    }
  }
}
