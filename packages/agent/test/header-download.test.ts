/**
 * downloadHeader (shared by the agent and the relay) against a real repository server on port 0:
 * the bytes come back only when they are what the id names; every other answer has one code.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADER_MAX_BYTES, digestHex, isFerryError, sha256, type Digest } from '@ferry/core';
import { scratchDir, startRepoServer, type RepoServer } from '@ferry/test-support';
import { createHttpTransport, downloadHeader } from '../src/index.js';

let work: { dir: string; remove(): Promise<void> };
let server: RepoServer;
const transport = createHttpTransport();
const good = randomBytes(5000);
const goodId = sha256(good);
const liedId = sha256(randomBytes(8));
const hugeId = sha256(randomBytes(9));

beforeAll(async () => {
  work = await scratchDir('header-download');
  await mkdir(join(work.dir, 'headers'), { recursive: true });
  await mkdir(join(work.dir, 'chunks'), { recursive: true });
  await writeFile(join(work.dir, 'headers', digestHex(goodId)), good);
  await writeFile(join(work.dir, 'headers', digestHex(liedId)), randomBytes(5000));
  await writeFile(join(work.dir, 'headers', digestHex(hugeId)), Buffer.alloc(HEADER_MAX_BYTES + 1));
  server = await startRepoServer(work.dir);
});
afterAll(async () => {
  transport.close();
  await server.close();
  await work.remove();
});

const url = (id: Digest): URL => new URL(`http://127.0.0.1:${server.port}/repo/headers/${digestHex(id)}`);
async function code(id: Digest, at = url(id), signal?: AbortSignal): Promise<string> {
  const err = await downloadHeader(transport, at, id, { signal }).then(() => 'resolved', (e: unknown) => e);
  return isFerryError(err) ? err.code : String(err);
}

describe('downloadHeader', () => {
  it('returns the header when its bytes are what its id names', async () => {
    expect((await downloadHeader(transport, url(goodId), goodId)).equals(good)).toBe(true);
  });

  it('refuses other bytes, an oversized header, a missing one, a dead server and an abort, each with one code', async () => {
    expect(await code(liedId)).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(await code(hugeId)).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(await code(goodId, new URL(`http://127.0.0.1:${server.port}/repo/nothing-here`))).toBe('FERRY_ERR_NOT_FOUND');
    expect(await code(goodId, new URL('http://127.0.0.1:9/repo/headers/x'))).toBe('FERRY_ERR_NETWORK');
    expect(await code(goodId, url(goodId), AbortSignal.abort())).toBe('FERRY_ERR_ABORTED');
  });
});
