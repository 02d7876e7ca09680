/**
 * The agent's check-ins and reports over node:http/https instead of the global fetch: fetch loads
 * undici on first use (about 6 MiB more RSS than node:http, which the fetcher loads anyway), and
 * the agent's budget is 128 MB (bench/README.md, link bench). One keep-alive socket per protocol.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { FerryError, type ApiFetch, type ApiResponse } from '@ferry/core';

/** An ApiFetch over node:http, and the pooled sockets to close. */
export interface NodeApiFetch {
  fetch: ApiFetch;
  close(): void;
}

function answer(res: IncomingMessage): ApiResponse {
  const status = res.statusCode ?? 0;
  const get = (name: string): string | null => {
    const v = res.headers[name.toLowerCase()];
    return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
  };
  return { ok: status >= 200 && status < 300, status, headers: { get }, body: res };
}

/** A fetch for ApiClient on keep-alive node:http/https agents. */
export function nodeApiFetch(): NodeApiFetch {
  const agentOptions = { keepAlive: true, maxSockets: 1 };
  const http = new HttpAgent(agentOptions);
  const https = new HttpsAgent(agentOptions);
  const fetch: ApiFetch = (url, init) =>
    new Promise<ApiResponse>((resolve, reject) => {
      const body = init.body;
      if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
        reject(new FerryError('FERRY_ERR_INTERNAL', 'the agent sends only string or byte bodies'));
        return;
      }
      const secure = url.protocol === 'https:';
      const req = (secure ? httpsRequest : httpRequest)(url, { method: init.method, headers: init.headers, agent: secure ? https : http, signal: init.signal });
      req.on('error', reject);
      req.on('response', (res) => resolve(answer(res)));
      req.end(body);
    });
  return {
    fetch,
    close() {
      http.destroy();
      https.destroy();
    },
  };
}
