// The link bench (issue 9 item 8): one bundle fetched and applied over an emulated DIL link
// (linksim: a rate and an up/down schedule) by the agent's fetcher and the applier in a child
// process, beside the best a registry-style pull does on the same link: `curl -C -` in a retry
// loop over the changed layer blobs (gzip). The bundle is published into the repository directory
// of a real `ferry serve` (startServer), which also serves the gzip blobs (its repository route
// serves any file under chunks/ with Range), so both sides talk to the same HTTP server.
import { execFileSync } from 'node:child_process';
import { copyFile, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCH_DIR, MB, MiB, cacheDir, freshDir, q, run, sha256File } from './lib/util.mjs';
import { check, printTable } from './lib/table.mjs';

const DEFAULTS = { rate: '1Mbit', up: 20, down: 10, latency: 0, size: 96, curlMax: 150 };

/** `1Mbit`, `256kbit`, `2M` (bits/s, decimal). */
function parseBits(text) {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:bit)?(?:\/s)?$/i.exec(String(text));
  if (!m) throw new Error(`--rate takes bits/s such as 1Mbit or 256kbit, got ${text}`);
  return Number(m[1]) * { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase()];
}

function hasCurl() {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The image pair: a dataset pair when asked for and present, else an imagegen pair (cached). */
async function pairLayout(flags) {
  if (typeof flags.pair === 'string') {
    const { readdir } = await import('node:fs/promises');
    const datasets = (await readdir(cacheDir())).filter((d) => d.startsWith('dataset-')).sort();
    for (const d of datasets.reverse()) {
      const dir = join(cacheDir(), d, 'pairs', flags.pair, 'layout');
      if (await stat(dir).catch(() => undefined)) return { dir, name: `dataset ${d}/${flags.pair}`, key: `${d}-${flags.pair}` };
    }
    throw new Error(`no dataset pair ${flags.pair} under ${cacheDir()} (npm run bench -- dataset builds them)`);
  }
  const size = Number(flags.size ?? DEFAULTS.size);
  const dir = join(cacheDir(), `link-imagegen-${size}`, 'layout');
  if (!(await stat(join(dir, 'index.json')).catch(() => undefined))) {
    const { writeImagePair } = await import('@ferry/imagegen');
    await rm(dir, { recursive: true, force: true });
    await writeImagePair(dir, { targetBytes: size * MiB, seed: 1, tags: ['v1', 'v2'] });
  }
  return { dir, name: `imagegen ${size} MiB pair (seed 1)`, key: `imagegen-${size}` };
}

/**
 * Prepared once per pair and cached under `<cache>/link/<key>/` (building a bundle of a dataset
 * pair takes minutes): the device store holding v1, the repository (`headers/`, `chunks/`) with the
 * bundle and the changed layers as gzip blobs, and meta.json. Each run copies them.
 */
async function prepared(layout, key) {
  const dir = join(cacheDir(), 'link', key);
  const meta = await readFile(join(dir, 'meta.json'), 'utf8').then(JSON.parse, () => undefined);
  if (meta && meta.expires > Date.now() / 1000 + 3600) return { dir, ...meta };
  await rm(dir, { recursive: true, force: true });
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'repo', 'chunks'), { recursive: true });
  console.log(`preparing the bundle and the device store in ${dir} (once)`);
  const m = await prepare(tmp, layout, join(tmp, 'repo'));
  await rm(join(tmp, 'publisher'), { recursive: true, force: true });
  await writeFile(join(tmp, 'meta.json'), JSON.stringify(m));
  await rename(tmp, dir);
  return { dir, ...m };
}

/** Publisher and device stores, the bundle written into a repository, the changed layers as gzip blobs beside it. */
async function prepare(work, layout, repoDir) {
  const core = await import('@ferry/core');
  const { createBundle, writeBundleDir } = await import('@ferry/differ');
  const pub = await core.Store.open(join(work, 'publisher'), { create: true });
  const dev = await core.Store.open(join(work, 'device'), { create: true });
  for (const tag of ['v1', 'v2']) await core.importImage(pub, await core.openImage(layout, { ref: tag }), `app:${tag}`);
  await core.importImage(dev, await core.openImage(layout, { ref: 'v1' }), 'app:v1');
  const { privatePem, publicPem } = core.generateKeyPair();
  const key = core.parsePrivateKey(privatePem);
  const expires = Math.floor(Date.now() / 1000) + 30 * 86400;
  const b = await createBundle(pub, { from: ['app:v1'], to: 'app:v2', channel: 'stable', release: 1, expires, releaseKeys: [key], headerKeys: [key] });
  try {
    await writeBundleDir(repoDir, b.signed);
  } finally {
    await b.dispose();
  }
  const bundle = core.bundleId(b.signed.envelope);
  // docker pull: the v2 layers v1 lacks, as gzip blobs (exportOci writes them gzip-compressed)
  const v1 = new Set((await pub.resolve('app:v1')).layers.map((l) => l.diffId));
  const exported = join(work, 'export');
  await core.exportOci(pub, 'app:v2', exported, { compression: 'gzip' });
  const index = JSON.parse(await readFile(join(exported, 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(join(exported, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  const config = JSON.parse(await readFile(join(exported, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8'));
  const blobs = [];
  manifest.layers.forEach((l, i) => {
    if (!v1.has(config.rootfs.diff_ids[i])) blobs.push({ digest: l.digest, size: l.size });
  });
  for (const bl of blobs) await copyFile(join(exported, 'blobs', 'sha256', bl.digest.slice(7)), join(repoDir, 'chunks', bl.digest.slice(7)));
  await rm(exported, { recursive: true, force: true });
  const want = (await pub.resolve('app:v2')).manifestDigest;
  return { bundle, publicPem, expires, payloadSize: b.signed.payloadSize, headerSize: b.signed.envelope.length, blobs, want };
}

/** Fetches the blobs with `curl -C -` in a retry loop (1 s between tries), at most `maxSeconds`. */
async function curlPull(base, blobs, dir, maxSeconds) {
  await mkdir(dir, { recursive: true });
  const script = `
    deadline=$(( $(date +%s) + ${Math.round(maxSeconds)} ))
    tries=0
    for hex in ${blobs.map((b) => b.digest.slice(7)).join(' ')}; do
      until curl -sS -f -C - --speed-limit 1 --speed-time 30 -o ${q(dir)}/$hex ${q(base)}$hex 2>/dev/null; do
        tries=$((tries+1))
        echo $tries > ${q(dir)}/.tries
        [ $(date +%s) -ge $deadline ] && exit 3
        sleep 1
      done
    done
    `;
  const t0 = performance.now();
  let finished = true;
  try {
    await run('bash', ['-c', script]);
  } catch {
    finished = false;
  }
  const seconds = (performance.now() - t0) / 1000;
  let got = 0;
  let verified = finished;
  for (const b of blobs) {
    const st = await stat(join(dir, b.digest.slice(7))).catch(() => undefined);
    got += st?.size ?? 0;
    if (finished && (await sha256File(join(dir, b.digest.slice(7)))) !== b.digest) verified = false;
  }
  const tries = Number((await readFile(join(dir, '.tries'), 'utf8').catch(() => '0')).trim());
  return { seconds, finished, verified, bytes: got, tries };
}

/** a / b with four decimals (the targets are 1.03 and 1.1). */
function ratio(a, b) {
  return b > 0 ? (a / b).toFixed(4) : '-';
}

/** Runs the link bench; returns its figures. */
export async function runLink(flags = {}) {
  const rate = parseBits(flags['link-rate'] ?? DEFAULTS.rate);
  const up = Number(flags.up ?? DEFAULTS.up);
  const down = Number(flags.down ?? DEFAULTS.down);
  const latency = Number(flags.latency ?? DEFAULTS.latency);
  const curlMax = Number(flags['curl-max'] ?? DEFAULTS.curlMax);
  const { startServer } = await import('@ferry/server');
  const { startLinkSim } = await import('@ferry/linksim');
  const core = await import('@ferry/core');
  const layout = await pairLayout(flags);
  const work = await freshDir(`link-${process.pid}`); // per run: two runs at once must not share a server or a device store
  const releaseKey = core.generateKeyPair();
  const server = await startServer({ dataDir: join(work, 'server'), releaseKeys: [core.parsePublicKey(releaseKey.publicPem)], host: '127.0.0.1', port: 0, logger: false, rateLimit: false });
  const sims = [];
  try {
    console.log(`link bench: ${layout.name}; link ${rate / 1e6} Mbit/s each way, up ${up} s / down ${down} s (connections reset while down), latency ${latency} ms`);
    const p = await prepared(layout.dir, layout.key);
    await cp(join(p.dir, 'repo'), server.paths.repo, { recursive: true });
    await cp(join(p.dir, 'device'), join(work, 'device'), { recursive: true });
    const port = Number(new URL(server.url).port);
    const link = () => startLinkSim({ target: { host: '127.0.0.1', port }, rateDown: rate, rateUp: rate, latencyDownMs: latency, latencyUpMs: latency, schedule: down > 0 ? { kind: 'fixed', upMs: up * 1000, downMs: down * 1000 } : { kind: 'always' }, downMode: 'reset' });
    const uptime = down > 0 ? up / (up + down) : 1;
    const ideal = (bytes) => bytes / ((rate / 8) * uptime);

    // ferry: the agent's fetcher and the applier in a child process, through its own linksim
    const simF = await link();
    sims.push(simF);
    const params = { store: join(work, 'device'), cache: join(work, 'agent-cache'), repo: `http://127.0.0.1:${simF.port}/repo/`, bundle: p.bundle, publicPem: p.publicPem, fetcher: { maxRetryMs: 4000 } };
    const { stdout } = await run(process.execPath, [join(BENCH_DIR, 'lib', 'link-agent.mjs'), JSON.stringify(params)]);
    const line = stdout.toString().split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`the agent printed no result: ${stdout.toString().slice(-2000)}`);
    const agent = JSON.parse(line.slice(7));
    if (agent.manifestDigest !== p.want) throw new Error(`the agent committed ${agent.manifestDigest}, the publisher has ${p.want}`);
    const fw = simF.stats();
    const payload = p.payloadSize;
    const ferry = { payload, header: p.headerSize, wireDown: fw.bytesDown, wireUp: fw.bytesUp, seconds: agent.seconds, ideal: ideal(payload), maxRss: agent.maxRss, outages: fw.outages, resets: fw.resets + fw.refused, requests: agent.link.requests, discarded: agent.link.bytesDiscarded, planned: agent.payloadBytes };

    // registry-style: curl -C - over the changed layer blobs, through a fresh linksim
    let curl;
    const gz = p.blobs.reduce((n, b) => n + b.size, 0);
    if (!hasCurl()) console.log('curl column skipped: curl not found (apt-get install curl)');
    else {
      const simC = await link();
      sims.push(simC);
      const r = await curlPull(`http://127.0.0.1:${simC.port}/repo/chunks/`, p.blobs, join(work, 'curl'), curlMax);
      const cw = simC.stats();
      // a pull stopped at --curl-max: its time for the whole payload at the rate it had (marked "est.")
      const estimated = r.finished || r.bytes === 0 ? undefined : (r.seconds * gz) / r.bytes;
      curl = { payload: gz, blobs: p.blobs.length, wireDown: cw.bytesDown, wireUp: cw.bytesUp, seconds: r.seconds, estimated, ideal: ideal(gz), finished: r.finished, verified: r.verified, bytesGot: r.bytes, tries: r.tries, outages: cw.outages };
    }
    report(ferry, curl, curlMax);
    return { pair: layout.name, rate, up, down, latency, ferry, curl };
  } finally {
    for (const s of sims) await s.close();
    await server.close();
    await rm(work, { recursive: true, force: true });
  }
}

function report(f, c, curlMax) {
  const mb = (n) => (n / MB).toFixed(3);
  const rows = [
    ['payload (MB)', mb(f.payload), c ? mb(c.payload) : 'skipped', ''],
    ['bytes on the wire, down (MB)', mb(f.wireDown), c ? mb(c.wireDown) : '', ''],
    ['bytes on the wire, up (MB)', mb(f.wireUp), c ? mb(c.wireUp) : '', ''],
    ['wire / payload', ratio(f.wireDown, f.payload), c ? ratio(c.wireDown, c.finished ? c.payload : c.bytesGot) : '', `ferry <= 1.03: ${check(f.wireDown / f.payload <= 1.03)}`],
    ['completion time (s)', f.seconds.toFixed(1), c ? (c.finished ? c.seconds.toFixed(1) : `~${c.estimated?.toFixed(0) ?? '?'} est. (stopped at ${c.seconds.toFixed(0)} s, ${mb(c.bytesGot)} MB got)`) : '', ''],
    ['ideal: payload / (rate x uptime) (s)', f.ideal.toFixed(1), c ? c.ideal.toFixed(1) : '', ''],
    ['time / ideal', ratio(f.seconds, f.ideal), c ? ratio(c.estimated ?? c.seconds, c.ideal) : '', `ferry <= 1.1: ${check(f.seconds / f.ideal <= 1.1)}`],
    ['agent peak RSS (MB)', mb(f.maxRss), '', `< 128 MiB: ${check(f.maxRss < 128 * MiB)}`],
    ['outages / connections reset', `${f.outages} / ${f.resets}`, c ? `${c.outages} / ${c.tries} retries` : '', ''],
  ];
  printTable('link: a bundle over an emulated DIL link, beside a registry-style pull', ['', 'ferry (fetcher + applier)', 'curl -C - (changed layers, gzip)', 'target'], rows, ['wire bytes: what linksim delivered, HTTP headers and refetched bytes included (TCP/IP headers not)']);
  if (c) console.log(`ferry sends ${(c.payload / f.payload).toFixed(1)}x fewer payload bytes; time ferry ${f.seconds.toFixed(1)} s vs curl ${(c.estimated ?? c.seconds).toFixed(1)} s${c.finished ? (c.verified ? ' (blobs verified)' : ' (BLOB DIGEST MISMATCH)') : ' (curl stopped at --curl-max; its time estimated at the rate it had)'}`);
}
