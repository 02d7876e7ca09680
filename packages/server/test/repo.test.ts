/**
 * Repository hosting: GET/HEAD by digest, single ranges (206 with Content-Range, 416 past the
 * end), strong ETag = digest, immutable caching, conditional requests, and only regular files.
 * The same directory served by Debian's nginx answers ranges that verify against the digests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginx, toolsOrSkip, type RunningNginx } from '@ferry/test-support';
import { call, startTestServer, statusCode, type TestServer } from './helpers.js';

let t: TestServer;
const chunks: { hex: string; bytes: Buffer }[] = [];

beforeAll(async () => {
  t = await startTestServer();
  for (const size of [100_000, 65_536, 1]) {
    const bytes = randomBytes(size);
    const hex = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(t.dir, 'repo', 'chunks', hex), bytes);
    chunks.push({ hex, bytes });
  }
});

afterAll(async () => {
  await t?.close();
});

const get = (base: string, hex: string, headers: Record<string, string> = {}, method = 'GET') => fetch(`${base}/repo/chunks/${hex}`, { method, headers });

describe('repository over HTTP', () => {
  it('serves a whole chunk with its strong ETag and immutable caching', async () => {
    const { hex, bytes } = chunks[0]!;
    const res = await get(t.url, hex);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${hex}"`);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-type')).toBeNull(); // bytes on a DIL link: nothing a client or cache needs
    expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('answers single ranges with 206 and a correct Content-Range', async () => {
    const { hex, bytes } = chunks[0]!;
    const size = bytes.length;
    for (const [range, start, end] of [['bytes=10-19', 10, 19], [`bytes=${size - 5}-`, size - 5, size - 1], ['bytes=-7', size - 7, size - 1], [`bytes=99990-${size + 100}`, 99_990, size - 1]] as const) {
      const res = await get(t.url, hex, { range });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${size}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(start, end + 1))).toBe(true);
    }
  });

  it('a range past the end is 416 with bytes */size', async () => {
    const { hex, bytes } = chunks[1]!;
    const res = await get(t.url, hex, { range: `bytes=${bytes.length}-` });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FERRY_ERR_RANGE_INVALID');
  });

  it('If-Range with another validator sends the whole chunk; If-None-Match is 304; HEAD has no body', async () => {
    const { hex, bytes } = chunks[0]!;
    const whole = await get(t.url, hex, { range: 'bytes=0-9', 'if-range': '"0000"' });
    expect([whole.status, (await whole.arrayBuffer()).byteLength]).toEqual([200, bytes.length]);
    const resumed = await get(t.url, hex, { range: 'bytes=5-', 'if-range': `"${hex}"` });
    expect([resumed.status, (await resumed.arrayBuffer()).byteLength]).toEqual([206, bytes.length - 5]);
    expect((await get(t.url, hex, { 'if-none-match': `"${hex}"` })).status).toBe(304);
    const head = await get(t.url, hex, {}, 'HEAD');
    expect([head.status, head.headers.get('content-length'), (await head.arrayBuffer()).byteLength]).toEqual([200, String(bytes.length), 0]);
  });

  it('serves only regular files: a planted symlink is not followed', async () => {
    const hex = 'c'.repeat(64);
    await symlink('/etc/passwd', join(t.dir, 'repo', 'chunks', hex));
    expect(statusCode(await call(t.url, 'GET', `/repo/chunks/${hex}`))).toEqual([404, 'FERRY_ERR_NOT_FOUND']);
    expect(statusCode(await call(t.url, 'GET', `/repo/blobs/${hex}`))).toEqual([404, 'FERRY_ERR_NOT_FOUND']);
  });
});

const tools = toolsOrSkip('nginx');


describe.skipIf(!tools)('the repository directory behind nginx', () => {
  let nginx: RunningNginx;
  let base: string;

  beforeAll(async () => {
    nginx = await startNginx({ root: join(t.dir, 'repo'), location: '/repo/' });
    base = nginx.url;
  });

  afterAll(async () => {
    await nginx?.stop();
  });

  it('fetches chunks in ranged pieces through nginx and they verify against their digests', async () => {
    for (const { hex, bytes } of chunks) {
      const parts: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += 30_000) {
        const end = Math.min(at + 30_000, bytes.length) - 1;
        const res = await get(base, hex, { range: `bytes=${at}-${end}` });
        expect(res.status).toBe(206);
        expect(res.headers.get('content-range')).toBe(`bytes ${at}-${end}/${bytes.length}`);
        parts.push(Buffer.from(await res.arrayBuffer()));
      }
      expect(createHash('sha256').update(Buffer.concat(parts)).digest('hex')).toBe(hex);
    }
    const past = await get(base, chunks[1]!.hex, { range: `bytes=${chunks[1]!.bytes.length}-` });
    expect([past.status, past.headers.get('content-range')]).toEqual([416, `bytes */${chunks[1]!.bytes.length}`]);
    const whole = await get(base, chunks[0]!.hex);
    expect(whole.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(Buffer.from(await whole.arrayBuffer()).equals(await readFile(join(t.dir, 'repo', 'chunks', chunks[0]!.hex)))).toBe(true);
  });
});
