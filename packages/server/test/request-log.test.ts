/**
 * The request log: at info (the default) an answered request writes nothing, so a fleet's
 * check-ins cost no log line each; a refused one is still logged; at debug every answered request
 * is one line.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { call, startTestServer } from './helpers.js';

/** Log lines (parsed) of a server at `level` after three good requests and one refused. */
async function linesAt(level: string): Promise<Array<{ level: number; msg: string; req?: { url?: string }; code?: string }>> {
  const lines: string[] = [];
  const t = await startTestServer({ logger: { level, stream: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) } });
  try {
    for (let i = 0; i < 3; i++) expect((await call(t.url, 'GET', '/v1/agents', { token: t.admin })).status).toBe(200);
    expect((await call(t.url, 'GET', '/v1/agents', { token: 'fa_nonsense' })).status).toBe(401);
  } finally {
    await t.close();
  }
  return lines.map((l) => JSON.parse(l));
}

describe('the request log', () => {
  it('is quiet at info for answered requests and still logs a refused one', async () => {
    const lines = await linesAt('info');
    expect(lines.filter((l) => l.req?.url === '/v1/agents' || /request completed|incoming request/.test(l.msg))).toEqual([]);
    expect(lines.filter((l) => l.msg === 'request refused').map((l) => l.code)).toEqual(['FERRY_ERR_AUTH_REQUIRED']);
  });

  it('has a line as each request arrives and one as it is answered at debug', async () => {
    const lines = await linesAt('debug');
    expect(lines.filter((l) => l.msg === 'incoming request').map((l) => [l.level, l.req?.url])).toEqual(Array.from({ length: 4 }, () => [20, '/v1/agents']));
    expect(lines.filter((l) => l.msg === 'request completed').map((l) => l.level)).toEqual([20, 20, 20, 20]);
  });
});
