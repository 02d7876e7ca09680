// The server bench's fixtures: a data directory seeded with a generated v1/v2 image pair, server
// processes (bench/lib/serve-child.mjs), a release, a fleet of registered agents whose bundle is
// built, chunk files in the repository, and nginx serving the same directory.
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Store, encodeRelease, generateKeyPair, importImage, inventoryDigest, openImage, parsePlatform, parsePrivateKey, signEnvelope } from '@ferry/core';
import { writeImagePair } from '@ferry/imagegen';
import { startNginx } from '@ferry/test-support';
import { BENCH_DIR } from './util.mjs';

const PLATFORM = 'linux/amd64';

/** Generates a v1/v2 pair, imports both into the server store under DATA, writes the release key. */
export async function prepareData(dir, { targetBytes = 4 * 1024 * 1024 } = {}) {
  const layout = join(dir, 'oci');
  await writeImagePair(layout, { targetBytes, tags: ['v1', 'v2'], platform: PLATFORM });
  const data = join(dir, 'data');
  const store = await Store.open(join(data, 'store'), { create: true });
  for (const tag of ['v1', 'v2']) await importImage(store, await openImage(layout, { ref: tag, platform: parsePlatform(PLATFORM) }), `app:${tag}`);
  const pair = generateKeyPair();
  const releasePub = join(dir, 'release.pub');
  await writeFile(releasePub, pair.publicPem);
  return { data, releasePub, key: parsePrivateKey(pair.privatePem), images: { v1: await store.resolve('app:v1'), v2: await store.resolve('app:v2') } };
}

/** Peak and current RSS of a process, in bytes (from /proc). */
export async function rssOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** CPU seconds (user + system) a process used so far, from /proc (clock ticks of 1/100 s). */
export async function cpuOf(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Starts `ferry serve` in a child process. `prof` (a directory) runs it under `node --cpu-prof`.
 * Returns { url, pid, stop() }.
 */
export async function startServerChild(options, { prof, name = 'server' } = {}) {
  const script = join(BENCH_DIR, 'lib', 'serve-child.mjs');
  const nodeArgs = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [];
  const child = spawn(process.execPath, [...nodeArgs, script, JSON.stringify({ logger: false, host: '127.0.0.1', port: 0, ...options })], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const { url } = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]));
    });
    child.once('exit', (code) => reject(new Error(`${name} exited ${code} before listening`)));
  });
  return {
    url,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One JSON request. */
export async function api(url, method, path, token, json) {
  const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(json ? { 'content-type': 'application/json' } : {}) }, body: json ? JSON.stringify(json) : undefined });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

async function eachLimited(items, limit, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

/** The check-in body of an agent holding `layers` (inventory digest only once the server knows it). */
export function checkinBody(agent, layers, withLayers) {
  const inventory = { digest: inventoryDigest(layers), ...(withLayers ? { layers } : {}) };
  return { counter: ++agent.counter, channels: ['stable'], inventory, agent: { version: 'bench' } };
}

/** A progress report as an agent's daemon sends with each check-in. */
export function report(agent, bundle) {
  const done = (agent.counter * 65536) % 1_000_000;
  return { counter: ++agent.counter, at: new Date().toISOString(), state: 'fetching', channel: 'stable', release: 1, bundle, bytesDone: done, bytesTotal: 1_000_000, chunksDone: Math.floor(done / 65536), chunksTotal: 16, rate: 4000, eta: 60, error: null, link: { bytesReceived: done, requests: agent.counter, failures: 0, stalls: 0, resets: 0, rtt: 0.6 } };
}

/**
 * Publishes release 1 of `stable` (app:v2), registers `n` agents holding v1 (spread over `urls`),
 * checks each in once with its inventory and waits until their bundle is built. Returns the agents
 * ({ id, token, counter }) and the bundle id.
 */
export async function setupFleet(urls, admin, n, { images, key }) {
  const url = urls[0];
  const publisher = (await api(url, 'POST', '/v1/tokens', admin, { role: 'publisher', name: 'bench' })).token;
  const now = Math.floor(Date.now() / 1000);
  const statement = { channel: 'stable', release: 1, ref: 'app:v2', manifest: images.v2.manifestDigest, config: images.v2.configDigest, expires: now + 86_400, created: now };
  const envelope = Buffer.from(signEnvelope('release', encodeRelease(statement), [key])).toString('base64');
  await api(url, 'POST', '/v1/releases', publisher, { envelope });
  const layers = images.v1.layers.map((l) => l.diffId);
  const agents = Array.from({ length: n }, (_, i) => ({ id: `edge-${String(i).padStart(4, '0')}`, token: '', counter: 0 }));
  await eachLimited(agents, 16, async (a) => {
    const at = urls[agents.indexOf(a) % urls.length];
    a.token = (await api(at, 'POST', '/v1/agents', admin, { id: a.id })).token;
    await api(at, 'POST', `/v1/agents/${a.id}/checkin`, a.token, checkinBody(a, layers, true));
  });
  for (let i = 0; i < 1200; i++) {
    const a = agents[0];
    const answer = await api(url, 'POST', `/v1/agents/${a.id}/checkin`, a.token, checkinBody(a, layers, false));
    const s = answer.assignments[0];
    if (s.state === 'ready') return { agents, layers, bundle: s.bundle.id };
    if (s.state === 'none') throw new Error(`the bundle could not be built: ${s.error?.message}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('the bundle was not built within 5 minutes');
}

/** Writes `count` random chunks of `size` bytes into REPO/chunks; returns their hex names. */
export async function writeChunks(repoDir, count, size) {
  await mkdir(join(repoDir, 'chunks'), { recursive: true });
  const names = [];
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(size);
    const hex = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(repoDir, 'chunks', hex), bytes);
    names.push(hex);
  }
  return names;
}

/** nginx (one process, sendfile, no access log) serving REPO under /repo/, as docs/protocol.md section 2 allows. */
export function nginxFor(repoDir) {
  return startNginx({ root: repoDir, location: '/repo/', workerConnections: 4096, accessLog: false });
}
