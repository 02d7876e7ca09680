/**
 * The API refuses bad input with the exact status and code, and changes nothing: tokens, replayed
 * counters, bodies over the cap, malformed JSON, releases (rollback, untrusted key, expiry, an
 * image the server lacks), uploads that do not match their digest, traversal in digests, a slow
 * client holding a socket, and the rate limit.
 */
import { connect } from 'node:net';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, generateKeyPair, inventoryDigest, parsePrivateKey, sha256, zstdCompress, type StoredImage } from '@ferry/core';
import { agent, call, makeLayout, seedStore, signRelease, startTestServer, statusCode, token, type TestServer } from './helpers.js';

let work: string;
let t: TestServer;
let images: Record<'v1' | 'v2', StoredImage>;
let publisher: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-api-'));
  const layout = await makeLayout(work);
  t = await startTestServer({ seed: (dir) => seedStore(dir, layout, ['v1', 'v2']).then(() => undefined), timeouts: { request: 1500, headers: 1000, checkInterval: 200 }, rateLimit: false });
  const store = await Store.open(join(t.dir, 'store'));
  images = { v1: await store.resolve('app:v1'), v2: await store.resolve('app:v2') };
  publisher = await token(t, 'publisher', 'ci');
});

afterAll(async () => {
  await t?.close();
  await rm(work, { recursive: true, force: true });
});

const checkinBody = (counter: number) => ({ counter, channels: ['stable'], inventory: { digest: inventoryDigest([]), layers: [] } });

describe('tokens', () => {
  it('missing, unknown or another agent\'s token is refused; a token of the wrong role too', async () => {
    const a = await agent(t, 'edge-a');
    await agent(t, 'edge-b');
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-b/checkin', { json: checkinBody(1) }))).toEqual([401, 'FERRY_ERR_AUTH_REQUIRED']);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-b/checkin', { token: 'fya_forged', json: checkinBody(1) }))).toEqual([401, 'FERRY_ERR_AUTH_REQUIRED']);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-b/checkin', { token: a, json: checkinBody(1) }))).toEqual([403, 'FERRY_ERR_AUTH_FORBIDDEN']);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-b/reports', { token: a, json: { counter: 1, reports: [] } }))).toEqual([403, 'FERRY_ERR_AUTH_FORBIDDEN']);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents', { token: publisher, json: { id: 'edge-c' } }))).toEqual([403, 'FERRY_ERR_AUTH_FORBIDDEN']);
    expect(statusCode(await call(t.url, 'POST', '/v1/push/missing', { token: a, json: { layers: [], contents: [] } }))).toEqual([403, 'FERRY_ERR_AUTH_FORBIDDEN']);
    // edge-b never checked in: the refused requests recorded nothing
    expect((await t.server.state.agents.get('edge-b'))?.lastSeen).toBeUndefined();
  });

  it('an agent id is registered once; a revoked token stops working', async () => {
    expect(statusCode(await call(t.url, 'POST', '/v1/agents', { token: t.admin, json: { id: 'edge-a' } }))).toEqual([409, 'FERRY_ERR_ALREADY_EXISTS']);
    const op = await token(t, 'operator', 'watcher');
    expect((await call(t.url, 'GET', '/v1/channels/stable', { token: op })).status).toBe(200);
    expect((await call(t.url, 'DELETE', '/v1/tokens/watcher', { token: t.admin })).status).toBe(204);
    expect(statusCode(await call(t.url, 'GET', '/v1/channels/stable', { token: op }))).toEqual([401, 'FERRY_ERR_AUTH_REQUIRED']);
    const lost = await agent(t, 'edge-lost');
    expect((await call(t.url, 'DELETE', `/v1/tokens/${encodeURIComponent('agent:edge-lost')}`, { token: t.admin })).status).toBe(204);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-lost/checkin', { token: lost, json: checkinBody(1) }))).toEqual([401, 'FERRY_ERR_AUTH_REQUIRED']);
    expect(statusCode(await call(t.url, 'DELETE', '/v1/tokens/admin', { token: t.admin }))).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
  });
});

describe('agent requests', () => {
  it('a replayed or older request counter is refused with 409', async () => {
    const a = await agent(t, 'edge-r');
    expect((await call(t.url, 'POST', '/v1/agents/edge-r/checkin', { token: a, json: checkinBody(5) })).status).toBe(200);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-r/checkin', { token: a, json: checkinBody(5) }))).toEqual([409, 'FERRY_ERR_PROTOCOL_REPLAY']);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-r/checkin', { token: a, json: checkinBody(4) }))).toEqual([409, 'FERRY_ERR_PROTOCOL_REPLAY']);
    const report = (counter: number, bytesDone: number) => ({ counter, at: new Date().toISOString(), state: 'fetching', bytesDone, bytesTotal: 100, chunksDone: 1, chunksTotal: 2, rate: 10, eta: 5, error: null });
    const r1 = await call(t.url, 'POST', '/v1/agents/edge-r/reports', { token: a, json: { counter: 9, reports: [report(7, 50), report(8, 60)] } });
    expect([r1.status, r1.json]).toEqual([200, { accepted: 2, dropped: 0 }]);
    // a report replayed inside a fresh request is dropped silently; the kept report stays the newest
    const r2 = await call(t.url, 'POST', '/v1/agents/edge-r/reports', { token: a, json: { counter: 10, reports: [report(8, 99), report(6, 99)] } });
    expect([r2.status, r2.json]).toEqual([200, { accepted: 0, dropped: 2 }]);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-r/reports', { token: a, json: { counter: 10, reports: [report(11, 1)] } }))).toEqual([409, 'FERRY_ERR_PROTOCOL_REPLAY']);
    const view = await t.server.state.agents.get('edge-r');
    expect([view?.report?.counter, view?.report?.bytesDone]).toEqual([8, 60]);
  });

  it('an oversized body is 413, malformed JSON or a wrong shape 400', async () => {
    const a = await agent(t, 'edge-j');
    const big = { ...checkinBody(1), agent: { version: 'x'.repeat(2 * 1024 * 1024) } };
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-j/checkin', { token: a, json: big }))).toEqual([413, 'FERRY_ERR_LIMIT_EXCEEDED']);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-j/checkin', { token: a, body: '{"counter": 1,', headers: { 'content-type': 'application/json' } }))).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-j/checkin', { token: a, json: { ...checkinBody(1), channels: ['../x'] } }))).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
    const lying = { counter: 1, channels: ['stable'], inventory: { digest: inventoryDigest([sha256('a')]), layers: [sha256('b')] } };
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-j/checkin', { token: a, json: lying }))).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/BAD..id/checkin', { token: a, json: checkinBody(2) }))).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
  });
});

describe('releases', () => {
  it('refuses a statement no trusted key signed, rollback, expiry and an image the server lacks', async () => {
    const stranger = parsePrivateKey(generateKeyPair().privatePem);
    const post = (envelope: string) => call(t.url, 'POST', '/v1/releases', { token: publisher, json: { envelope } });
    expect(statusCode(await post(signRelease(images.v2, stranger, 'rel', 1)))).toEqual([403, 'FERRY_ERR_SIGNATURE_INVALID']);
    expect(statusCode(await post(signRelease(images.v2, t.releaseKey, 'rel', 1, { expires: Math.floor(Date.now() / 1000) - 1 })))).toEqual([422, 'FERRY_ERR_BUNDLE_EXPIRED']);
    const ghost = { ...images.v2, manifestDigest: sha256('no such manifest') };
    expect(statusCode(await post(signRelease(ghost, t.releaseKey, 'rel', 1)))).toEqual([409, 'FERRY_ERR_OBJECT_MISSING']);
    const ok = await post(signRelease(images.v2, t.releaseKey, 'rel', 7));
    expect([ok.status, ok.json.release, ok.json.config]).toEqual([201, 7, images.v2.configDigest]);
    expect(statusCode(await post(signRelease(images.v1, t.releaseKey, 'rel', 7)))).toEqual([409, 'FERRY_ERR_BUNDLE_ROLLBACK']);
    expect(statusCode(await post(signRelease(images.v1, t.releaseKey, 'rel', 6)))).toEqual([409, 'FERRY_ERR_BUNDLE_ROLLBACK']);
    expect(statusCode(await call(t.url, 'POST', '/v1/releases', { token: publisher, json: { envelope: Buffer.from('garbage').toString('base64') } }))).toEqual([400, 'FERRY_ERR_MSGPACK_INVALID']);
    const latest = await call(t.url, 'GET', '/v1/channels/rel', { token: publisher });
    expect([latest.json.release.release, latest.json.release.manifest]).toEqual([7, images.v2.manifestDigest]);
  });
});

describe('uploads', () => {
  it('a content whose bytes do not match its digest or size is refused and not stored', async () => {
    const body = Buffer.from('hello ferry\n');
    const wrong = sha256('something else');
    const put = (digest: string, data: Buffer, size: number) => call(t.url, 'PUT', `/v1/contents/${digest.slice(7)}`, { token: publisher, body: data, headers: { 'content-type': 'application/zstd', 'x-ferry-size': String(size) } });
    expect(statusCode(await put(wrong, zstdCompress(body), body.length))).toEqual([422, 'FERRY_ERR_DIGEST_MISMATCH']);
    expect(statusCode(await put(sha256(body), zstdCompress(body), body.length - 1))).toEqual([422, 'FERRY_ERR_SIZE_MISMATCH']);
    expect(statusCode(await put(sha256(body), Buffer.from('not zstd at all'), body.length))).toEqual([400, 'FERRY_ERR_ZSTD_CORRUPT']);
    const store = await Store.open(join(t.dir, 'store'));
    expect(await store.hasContent(wrong)).toBe(false);
    expect(await store.hasContent(sha256(body))).toBe(false);
    expect((await readdir(join(t.dir, 'store', 'contents', wrong.slice(7, 9)))).filter((f) => f.startsWith('.tmp'))).toEqual([]);
    const good = await put(sha256(body), zstdCompress(body), body.length);
    expect([good.status, await store.hasContent(sha256(body))]).toEqual([201, true]);
    expect((await put(sha256(body), zstdCompress(body), body.length)).status).toBe(200);
  });

  it('a blob must hash to its URL; a ref must name a complete image', async () => {
    const blob = Buffer.from('{"not":"this"}');
    expect(statusCode(await call(t.url, 'PUT', `/v1/blobs/${sha256('other').slice(7)}`, { token: publisher, body: blob, headers: { 'content-type': 'application/octet-stream' } }))).toEqual([422, 'FERRY_ERR_DIGEST_MISMATCH']);
    expect(statusCode(await call(t.url, 'PUT', '/v1/refs/app:ghost', { token: publisher, json: { manifest: sha256('none') } }))).toEqual([409, 'FERRY_ERR_OBJECT_MISSING']);
    const ok = await call(t.url, 'PUT', '/v1/refs/app:again', { token: publisher, json: { manifest: images.v1.manifestDigest } });
    expect([ok.status, ok.json.config]).toEqual([200, images.v1.configDigest]);
    expect(statusCode(await call(t.url, 'PUT', '/v1/refs/Bad%20Ref', { token: publisher, json: { manifest: images.v1.manifestDigest } }))).toEqual([400, 'FERRY_ERR_REF_INVALID']);
  });

  it('digests in URLs are 64 lowercase hex digits, checked before any file is touched', async () => {
    for (const bad of ['..%2F..%2Fetc%2Fpasswd', '...', 'ABCDEF', 'a'.repeat(63), `${'a'.repeat(64)}.tmp`]) {
      expect(statusCode(await call(t.url, 'GET', `/repo/chunks/${bad}`))).toEqual([400, 'FERRY_ERR_DIGEST_INVALID']);
      expect(statusCode(await call(t.url, 'PUT', `/v1/contents/${bad}`, { token: publisher, body: 'x', headers: { 'content-type': 'application/zstd', 'x-ferry-size': '1' } }))).toEqual([400, 'FERRY_ERR_DIGEST_INVALID']);
    }
    expect(statusCode(await call(t.url, 'GET', `/repo/chunks/${'a'.repeat(64)}`))).toEqual([404, 'FERRY_ERR_NOT_FOUND']);
  });
});

describe('connections', () => {
  it('a slow client that sends half a request is answered 408 and its socket closed', async () => {
    const sock = connect(new URL(t.url).port as unknown as number, '127.0.0.1');
    let received = '';
    sock.on('data', (d) => (received += d.toString()));
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    sock.write('POST /v1/agents/edge-a/checkin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"coun');
    await new Promise<void>((resolve) => sock.once('close', () => resolve()));
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)).error.code).toBe('FERRY_ERR_TIMEOUT');
  });

  it('while shutting down, the request in flight finishes and one pipelined behind it gets 503 with Retry-After', async () => {
    const closing = await startTestServer();
    const pubTok = await token(closing, 'publisher', 'ci');
    const body = zstdCompress(Buffer.from('last words\n'));
    const sock = connect(Number(new URL(closing.url).port), '127.0.0.1');
    let received = '';
    sock.on('data', (d) => (received += d.toString()));
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    const head = `PUT /v1/contents/${sha256('last words\n').slice(7)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${pubTok}\r\nContent-Type: application/zstd\r\nX-Ferry-Size: 11\r\nContent-Length: ${body.length}\r\n\r\n`;
    sock.write(head);
    sock.write(body.subarray(0, 3));
    await new Promise((r) => setTimeout(r, 200));
    const closed = closing.close();
    await new Promise((r) => setTimeout(r, 200));
    sock.write(Buffer.concat([body.subarray(3), Buffer.from('GET /v1/channels/x HTTP/1.1\r\nHost: x\r\n\r\n')]));
    await new Promise<void>((resolve) => sock.once('close', () => resolve()));
    await closed;
    const answers = received.split(/(?=HTTP\/1\.1 )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 201', 'HTTP/1.1 503']);
    expect(answers[1]).toMatch(/retry-after: \d+/i);
    expect(JSON.parse(answers[1]!.slice(answers[1]!.indexOf('\r\n\r\n') + 4)).error.code).toBe('FERRY_ERR_SERVER_BUSY');
  });

  it('the rate limit answers 429 with Retry-After', async () => {
    const limited = await startTestServer({ rateLimit: { max: 3, windowMs: 60_000 } });
    try {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push(await call(limited.url, 'GET', '/v1/channels/x', { token: limited.admin }));
      expect(statuses.slice(0, 3).map((a) => a.status)).toEqual([200, 200, 200]);
      // answers under the limit carry no x-ratelimit-* headers (bytes on a DIL link)
      expect([...statuses[0]!.headers.keys()].filter((h) => h.startsWith('x-ratelimit'))).toEqual([]);
      expect(statusCode(statuses[3]!)).toEqual([429, 'FERRY_ERR_RATE_LIMITED']);
      expect(Number(statuses[3]!.headers.get('retry-after'))).toBeGreaterThan(0);
      // the repository is not rate limited: chunks are static files
      expect((await call(limited.url, 'GET', `/repo/chunks/${'b'.repeat(64)}`)).status).toBe(404);
    } finally {
      await limited.close();
    }
  });

  it('publishing is not counted by the rate limit (a push sends one request per content), and still needs a publisher token', async () => {
    const limited = await startTestServer({ rateLimit: { max: 2, windowMs: 60_000 } });
    try {
      const publisher = await token(limited, 'publisher', 'ci');
      const query = { layers: [], contents: [`sha256:${'c'.repeat(64)}`] };
      for (let i = 0; i < 5; i++) expect((await call(limited.url, 'POST', '/v1/push/missing', { token: publisher, json: query })).status).toBe(200);
      expect(statusCode(await call(limited.url, 'POST', '/v1/push/missing', { json: query }))[0]).toBe(401);
    } finally {
      await limited.close();
    }
  });
});
