// The link bench (issue 9 item 8): one release installed over an emulated DIL link (linksim: a
// rate and an up/down schedule) by the real agent, `ferry agent --once` in a child process checking
// in with a real server (the CLI's fleet: the pair pushed, v2 released, the bundle built), beside
// the best a registry-style pull does on the same link: `curl -C -` in a retry loop over the
// changed layer blobs (gzip), which the same server's repository route serves from chunks/.
// Where the agent's time goes is printed from a timeline of the link (lib/link-timeline.mjs).
// A short transfer's time moves by tenths of a second from run to run (the server, linksim and the
// sampler share the two cores with the agent): it runs several times (--runs) on fresh copies of
// the fleet, and the verdict takes the median run's time and the worst run's wire bytes and RSS.
import { execFileSync } from 'node:child_process';
import { copyFile, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { MB, MiB, cacheDir, freshDir, q, run, sha256File } from './lib/util.mjs';
import { check, printTable } from './lib/table.mjs';
import { analyse, printBreakdown, sampleLink } from './lib/link-timeline.mjs';
import { printWireBreakdown, startWireCapture } from './lib/wire-capture.mjs';

/** Preload that prints the process's peak RSS at exit (the agent child's figure). */
const REPORT_RSS = createRequire(import.meta.url).resolve('@ferry/test-support/report-rss');

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
 * Bumped when what the cached fleet holds changes with the code (h4: bundles carry the compressed
 * header of docs/format.md section 4.1), so a fleet prepared by an older ferry is rebuilt.
 */
const FLEET_FORMAT = 'h4';

/**
 * Prepared once per pair and cached under `<cache>/link/fleet-<key>-<format>/` (building a bundle of a
 * dataset pair takes minutes): a fleet (the CLI's startFleet: keys, a server data dir with the pair
 * pushed and v2 released on `stable`, the bundle for v1's layers built) with agent `edge`
 * registered and its device store holding v1, and the changed layers as gzip blobs in the server's
 * repository. The bundle is built by a throwaway agent `prep` syncing once without the link. Each
 * run copies the directory and reopens the fleet.
 */
async function prepared(layout, key) {
  const dir = join(cacheDir(), 'link', `fleet-${key}-${FLEET_FORMAT}`);
  const meta = await readFile(join(dir, 'meta.json'), 'utf8').then(JSON.parse, () => undefined);
  if (meta && meta.expires > Date.now() / 1000 + 3600) return { dir, ...meta };
  await rm(dir, { recursive: true, force: true });
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(cacheDir(), 'link'), { recursive: true });
  console.log(`preparing the fleet (server, release, bundle, device store) in ${dir} (once)`);
  const { startFleet } = await import('@ferry/cli/fleet');
  const fleet = await startFleet({ layout, dir: tmp });
  let m;
  try {
    await fleet.release('app:v2', 'stable');
    const edge = await fleet.addAgent('edge');
    const prep = await fleet.addAgent('prep');
    const r = await runAgent(agentArgs(fleet.url, 'prep', prep.token, fleet.trust, prep.store), {});
    if (r.code !== 0) throw new Error(`the prep agent failed (exit ${r.code}): ${r.stderr}`);
    await rm(prep.store, { recursive: true, force: true });
    const blobs = await gzipBlobs(join(tmp, 'publisher'), fleet.server.paths.repo);
    m = { token: edge.token, payloadSize: r.payload, want: fleet.configs['app:v2'], blobs, expires: Math.floor(Date.now() / 1000) + 80 * 86400 };
  } finally {
    await fleet.close();
  }
  await writeFile(join(tmp, 'meta.json'), JSON.stringify(m));
  await rename(tmp, dir);
  return { dir, ...m };
}

/** docker pull's share: the v2 layers v1 lacks, exported gzip-compressed into the repository's chunks/. */
async function gzipBlobs(pubStore, repoDir) {
  const core = await import('@ferry/core');
  const pub = await core.Store.open(pubStore);
  const v1 = new Set((await pub.resolve('app:v1')).layers.map((l) => l.diffId));
  const exported = join(repoDir, '..', 'gzip-export');
  await core.exportOci(pub, 'app:v2', exported, { compression: 'gzip' });
  const index = JSON.parse(await readFile(join(exported, 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(join(exported, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  const config = JSON.parse(await readFile(join(exported, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8'));
  const blobs = manifest.layers.filter((l, i) => !v1.has(config.rootfs.diff_ids[i])).map((l) => ({ digest: l.digest, size: l.size }));
  for (const bl of blobs) await copyFile(join(exported, 'blobs', 'sha256', bl.digest.slice(7)), join(repoDir, 'chunks', bl.digest.slice(7)));
  await rm(exported, { recursive: true, force: true });
  return blobs;
}

/** `ferry agent` arguments for one agent of the fleet (`--once --json` are added by startAgentChild). */
function agentArgs(server, id, token, trust, store, extra = []) {
  return ['--server', server, '--id', id, '--token', token, '--channel', 'stable', ...trust.flatMap((t) => ['--trust', t]), '--store', store, ...extra];
}

/**
 * Runs `ferry agent --once --json` (the built CLI) in a child process with the RSS preload; its
 * events are timed from the spawn (seconds). Resolves with the exit, the events, peak RSS and the
 * payload size the committed report gave.
 */
async function runAgent(args, { t0 = performance.now(), onEvent, heapMb }) {
  const { startAgentChild } = await import('@ferry/cli/agent-child');
  const events = [];
  const at = () => (performance.now() - t0) / 1000;
  const push = (e) => {
    events.push(e);
    onEvent?.(e);
  };
  const child = startAgentChild(args, undefined, {
    onProgress: (p) => push({ t: at(), kind: 'progress', phase: p.phase, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, link: p.link }),
    onReport: (r) => push({ t: at(), kind: 'report', state: r.state, bytesDone: r.bytesDone, bytesTotal: r.bytesTotal, error: r.error, link: r.link }),
  }, { nodeArgs: ['--import', REPORT_RSS, ...(heapMb ? [`--max-old-space-size=${heapMb}`] : [])] });
  const exit = await child.exited;
  const rss = /ferry-test-maxrss-kb (\d+)/.exec(exit.stderr);
  const detail = /ferry-test-rss-peak (.*)/.exec(exit.stderr);
  if (detail) console.log(`agent memory at its RSS peak (MiB; FERRY_RSS_DETAIL=1): ${detail[1]}`);
  const committed = events.find((e) => e.kind === 'report' && e.state === 'committed');
  return { code: exit.code, stderr: exit.stderr, seconds: at(), events, maxRss: rss ? Number(rss[1]) * 1024 : undefined, payload: committed?.bytesTotal, link: committed?.link };
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

/**
 * How many times the agent runs: `--runs=N`, else 5 when the ideal is under 10 s (a run's time
 * then moves by a few tenths of a second with what else the two cores do) and 1 otherwise.
 */
function runCount(flags, idealSeconds) {
  if (flags.runs !== undefined) {
    const n = Number(flags.runs);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--runs takes a count of at least 1, got ${flags.runs}`);
    return n;
  }
  return idealSeconds < 10 ? 5 : 1;
}

/** The run whose time / ideal is the median (the lower middle one of an even count). */
function medianRun(runs) {
  const sorted = [...runs].sort((a, b) => a.seconds / a.ideal - b.seconds / b.ideal);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Runs the link bench; returns its figures. */
export async function runLink(flags = {}) {
  const rate = parseBits(flags['link-rate'] ?? DEFAULTS.rate);
  const up = Number(flags.up ?? DEFAULTS.up);
  const down = Number(flags.down ?? DEFAULTS.down);
  const latency = Number(flags.latency ?? DEFAULTS.latency);
  const curlMax = Number(flags['curl-max'] ?? DEFAULTS.curlMax);
  const extra = typeof flags['agent-args'] === 'string' ? flags['agent-args'].split(',') : []; // e.g. --agent-args=--concurrency,6
  const heapMb = flags['agent-heap'] === undefined ? undefined : Number(flags['agent-heap']); // the agent's V8 heap cap (MB)
  const { startFleet } = await import('@ferry/cli/fleet');
  const { startLinkSim } = await import('@ferry/linksim');
  const layout = await pairLayout(flags);
  const work = await freshDir(`link-${process.pid}`); // per run: two runs at once must not share a server or a device store
  const uptime = down > 0 ? up / (up + down) : 1;
  const ideal = (bytes) => bytes / ((rate / 8) * uptime);

  /** A fresh copy of the prepared fleet, started, with a linksim in front of its server (or of the capture proxy). */
  async function withFleet(p, name, capturing, use) {
    const dir = join(work, name);
    await cp(p.dir, dir, { recursive: true });
    const fleet = await startFleet({ dir });
    let capture;
    let sim;
    try {
      // --capture: a proxy between linksim and the server keeps every byte, split per HTTP message
      capture = capturing ? await startWireCapture({ host: '127.0.0.1', port: Number(new URL(fleet.url).port) }) : undefined;
      const port = capture?.port ?? Number(new URL(fleet.url).port);
      sim = await startLinkSim({ target: { host: '127.0.0.1', port }, rateDown: rate, rateUp: rate, latencyDownMs: latency, latencyUpMs: latency, schedule: down > 0 ? { kind: 'fixed', upMs: up * 1000, downMs: down * 1000 } : { kind: 'always' }, downMode: 'reset' });
      return await use({ fleet, dir, sim, capture });
    } finally {
      await sim?.close();
      await capture?.close();
      await fleet.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** `ferry agent --once` in a child process, checking in with a fresh fleet's server through its own linksim. */
  function ferryRun(p, i, capturing) {
    return withFleet(p, `fleet-${i}`, capturing, async ({ fleet, dir, sim, capture }) => {
      const t0 = performance.now();
      const sampler = sampleLink(sim, t0);
      let agent;
      try {
        agent = await runAgent(agentArgs(`http://127.0.0.1:${sim.port}`, 'edge', p.token, fleet.trust, join(dir, 'device-edge'), extra), { t0, heapMb });
      } finally {
        sampler.stop();
      }
      if (agent.code !== 0) throw new Error(`ferry agent exited ${agent.code}: ${agent.stderr.slice(-2000)}`);
      const store = await (await import('@ferry/core')).Store.open(join(dir, 'device-edge'));
      const got = (await store.resolve('app:v2')).configDigest;
      if (got !== p.want) throw new Error(`the agent committed image ${got}, the publisher has ${p.want}`);
      const breakdown = analyse(sampler.samples, agent.events, rate, agent.seconds);
      const fw = sim.stats();
      const payload = agent.payload;
      const seconds = breakdown?.committed ?? agent.seconds;
      return { payload, wireDown: fw.bytesDown, wireUp: fw.bytesUp, seconds, exitSeconds: agent.seconds, ideal: ideal(payload), maxRss: agent.maxRss, outages: fw.outages, resets: fw.resets + fw.refused, link: agent.link, breakdown, messages: capture?.messages() };
    });
  }

  try {
    console.log(`link bench: ${layout.name}; link ${rate / 1e6} Mbit/s each way, up ${up} s / down ${down} s (connections reset while down), latency ${latency} ms`);
    const p = await prepared(layout.dir, layout.key);
    const n = runCount(flags, ideal(p.payloadSize));
    const runs = [];
    for (let i = 0; i < n; i++) {
      const r = await ferryRun(p, i, flags.capture && i === 0);
      runs.push(r);
      if (n > 1) console.log(`agent run ${i + 1} of ${n}: ${r.seconds.toFixed(2)} s, time / ideal ${ratio(r.seconds, r.ideal)}, wire / payload ${ratio(r.wireDown, r.payload)}, peak RSS ${(r.maxRss / MB).toFixed(1)} MB`);
    }
    // the verdict: the median run's time, the worst run's wire bytes and memory
    const mid = medianRun(runs);
    const wire = runs.reduce((m, r) => (r.wireDown / r.payload > m.wireDown / m.payload ? r : m));
    const rss = runs.map((r) => r.maxRss).filter((x) => x !== undefined);
    const { messages, ...median } = mid;
    const ferry = { ...median, wireDown: wire.wireDown, wireUp: wire.wireUp, maxRss: rss.length ? Math.max(...rss) : undefined, runs: runs.map((r) => ({ seconds: r.seconds, ideal: r.ideal, wireDown: r.wireDown, maxRss: r.maxRss })) };

    // registry-style: curl -C - over the changed layer blobs, through a fresh linksim
    let curl;
    const gz = p.blobs.reduce((sum, b) => sum + b.size, 0);
    if (!hasCurl()) console.log('curl column skipped: curl not found (apt-get install curl)');
    else if (curlMax > 0) {
      curl = await withFleet(p, 'fleet-curl', false, async ({ sim }) => {
        const r = await curlPull(`http://127.0.0.1:${sim.port}/repo/chunks/`, p.blobs, join(work, 'curl'), curlMax);
        const cw = sim.stats();
        // a pull stopped at --curl-max: its time for the whole payload at the rate it had (marked "est.")
        const estimated = r.finished || r.bytes === 0 ? undefined : (r.seconds * gz) / r.bytes;
        return { payload: gz, blobs: p.blobs.length, wireDown: cw.bytesDown, wireUp: cw.bytesUp, seconds: r.seconds, estimated, ideal: ideal(gz), finished: r.finished, verified: r.verified, bytesGot: r.bytes, tries: r.tries, outages: cw.outages };
      });
    }
    report(ferry, curl, curlMax);
    if (ferry.breakdown) {
      if (n > 1) console.log(`(the median run of ${n})`);
      printBreakdown(ferry.breakdown, rate);
    }
    if (runs[0].messages) printWireBreakdown(runs[0].messages, runs[0].payload);
    return { pair: layout.name, rate, up, down, latency, agentArgs: extra, agentHeapMb: heapMb, ferry, curl };
  } finally {
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
    ['completion time: agent start to commit (s)', f.seconds.toFixed(1), c ? (c.finished ? c.seconds.toFixed(1) : `~${c.estimated?.toFixed(0) ?? '?'} est. (stopped at ${c.seconds.toFixed(0)} s, ${mb(c.bytesGot)} MB got)`) : '', ''],
    ['ideal: payload / (rate x uptime) (s)', f.ideal.toFixed(1), c ? c.ideal.toFixed(1) : '', ''],
    ['time / ideal', ratio(f.seconds, f.ideal), c ? ratio(c.estimated ?? c.seconds, c.ideal) : '', `ferry <= 1.1: ${check(f.seconds / f.ideal <= 1.1)}`],
    ['agent peak RSS (MB)', mb(f.maxRss), '', `< 128 MiB: ${check(f.maxRss < 128 * MiB)}`],
    ['outages / connections reset', `${f.outages} / ${f.resets}`, c ? `${c.outages} / ${c.tries} retries` : '', ''],
  ];
  printTable('link: a bundle over an emulated DIL link, beside a registry-style pull', ['', 'ferry agent --once', 'curl -C - (changed layers, gzip)', 'target'], rows, ['wire bytes: what linksim delivered, HTTP headers and refetched bytes included (TCP/IP headers not)']);
  if (c) console.log(`ferry sends ${(c.payload / f.payload).toFixed(1)}x fewer payload bytes; time ferry ${f.seconds.toFixed(1)} s vs curl ${(c.estimated ?? c.seconds).toFixed(1)} s${c.finished ? (c.verified ? ' (blobs verified)' : ' (BLOB DIGEST MISMATCH)') : ' (curl stopped at --curl-max; its time estimated at the rate it had)'}`);
}
