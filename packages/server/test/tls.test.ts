/** TLS: given a certificate and key, the server speaks HTTPS (a self-signed pair made by openssl). */
import { get } from 'node:https';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTool, toolsOrSkip } from '@ferry/test-support';
import { startTestServer } from './helpers.js';

const tools = toolsOrSkip('openssl');

describe.skipIf(!tools)('TLS', () => {
  it('serves the API and the repository over HTTPS with the given certificate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-tls-'));
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    await runTool('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const t = await startTestServer({ tls: { cert: await readFile(cert), key: await readFile(key) } });
    try {
      expect(t.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const ca = await readFile(cert);
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        get(`${t.url}/v1/channels/stable`, { ca, headers: { authorization: `Bearer ${t.admin}` } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        }).on('error', reject);
      });
      expect([answer.status, JSON.parse(answer.body)]).toEqual([200, { name: 'stable', release: null }]);
      // a client that does not trust the certificate is refused by TLS itself
      await expect(new Promise((resolve, reject) => get(`${t.url}/repo/chunks/${'a'.repeat(64)}`, resolve).on('error', reject))).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    } finally {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
