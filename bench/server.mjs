// Server bench (issue 8 item 9): 1,000 simulated agents checking in and fetching chunks, against
// one `ferry serve` on SQLite and two on one PostgreSQL, with nginx serving the same repository
// directory in the same run. Prints requests/s, p50/p99 latency, server RSS and chunk MB/s, with
// the targets MET/MISSED (never asserted). Every server runs in its own process (serve-child.mjs).
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { findTool, startPostgres } from '@ferry/test-support';
import { cpuOf, prepareData, rssOf, setupFleet, startServerChild, writeChunks, nginxFor } from './lib/fleet.mjs';
import { checkinLoad, chunkLoad } from './lib/load.mjs';
import { openCheckinLoad } from './lib/open-load.mjs';
import { scrape, serverSide } from './lib/server-metrics.mjs';
import { check, printTable } from './lib/table.mjs';
import { cleanWork, freshDir } from './lib/util.mjs';

const CHUNK_SIZE = 64 * 1024;

/** Server options of the bench: the rate limit stays on (its cost is measured) but is raised above the bench's traffic. */
const serverOptions = (data, releasePub, extra = {}) => ({ dataDir: data, releasePub, rateLimit: { max: 1e9, windowMs: 60_000 }, build: { level: 3, workers: 1, pollMs: 200 }, buildRetryAfter: 1, ...extra });

const ms = (v) => (v === undefined ? '-' : `${v.toFixed(v < 10 ? 1 : 0)} ms`);
/** A run's figures, or none when no answer arrived within the run (latencies of nothing are not 0). */
const answered = (r) => (r && r.requests > 0 ? r : undefined);
const mb = (v) => `${(v / 1e6).toFixed(1)} MB`;
const mbs = (v) => `${(v / 1e6).toFixed(1)} MB/s`;

/**
 * Runs one load; adds the servers' RSS and their CPU time per request (user + system, all server
 * processes): unlike latencies, it does not depend on how much of the shared machine they got.
 * Also the load generator's own CPU per request (this process: autocannon runs in it), which it
 * takes from the same cores. With `admin` (ferry servers), the servers' own view from /metrics
 * (lib/server-metrics.mjs): the check-ins' p99 inside the server and the event loop's p99 delay,
 * the worst of the servers.
 */
async function measure(label, servers, fn, admin) {
  const cpu = async () => (await Promise.all(servers.map((s) => cpuOf(s.pid)))).reduce((a, b) => a + b, 0);
  const scrapes = admin ? await Promise.all(servers.map((s) => scrape(s.url, admin))) : [];
  const before = await cpu();
  const own = process.cpuUsage();
  const r = await fn();
  const { user, system } = process.cpuUsage(own);
  const cpuMs = ((await cpu()) - before) * 1000;
  const rss = await Promise.all(servers.map((s) => rssOf(s.pid)));
  const per = (v) => (r.requests > 0 ? v / r.requests : undefined);
  const inside = admin ? await Promise.all(servers.map(async (s, i) => serverSide(scrapes[i], await scrape(s.url, admin)))) : [];
  const worst = (k) => (inside.some((x) => x[k] !== undefined) ? Math.max(...inside.map((x) => x[k] ?? 0)) : undefined);
  return { label, ...r, serverP99: worst('serverP99'), lagP99: worst('lagP99'), cpuMsPerRequest: per(cpuMs), loadCpuMsPerRequest: per((user + system) / 1000), rss: rss.map((x) => x.rss), peakRss: rss.map((x) => x.peak) };
}

/** Check-ins (closed loop, then open loop at `rate`) and chunk fetches against `servers`; nginx beside them. */
async function runSuite(name, servers, fleet, o) {
  const urls = servers.map((s) => s.url);
  const rows = [];
  const common = { layers: fleet.layers, bundle: fleet.bundle, duration: o.duration };
  // warm up: every connection opened, every token cached, statements prepared
  await checkinLoad(urls, fleet.agents, { ...common, duration: 2 });
  // one agent at a time: the service time of a check-in without queueing
  rows.push(await measure(`${name}: check-in, 1 connection`, servers, () => checkinLoad(urls, fleet.agents.slice(0, urls.length), common), o.admin));
  rows.push(await measure(`${name}: check-in, closed loop`, servers, () => checkinLoad(urls, fleet.agents, common), o.admin));
  rows.push(await measure(`${name}: check-in, ${o.rate}/s offered (autocannon: 1 s bursts)`, servers, () => checkinLoad(urls, fleet.agents, { ...common, rate: o.rate }), o.admin));
  rows.push(await measure(`${name}: check-in, ${o.rate}/s offered, evenly spread`, servers, () => openCheckinLoad(urls, fleet.agents, { ...common, rate: o.rate }), o.admin));
  if (o.chunkRuns) rows.push(await measure(`${name}: chunks`, servers, () => chunkLoad(urls, o.chunks, { connections: fleet.agents.length, duration: o.duration })));
  return rows;
}

export async function runServer({ agents = 1000, duration = 10, rate = 1000, postgres = true, chunks: chunkRuns = true, prof } = {}) {
  const work = await freshDir('server');
  const prepared = await prepareData(work);
  const chunks = await writeChunks(join(prepared.data, 'repo'), 512, CHUNK_SIZE);
  const o = { duration, rate, chunks, chunkRuns };
  const results = { agents, duration, rate, chunkSize: CHUNK_SIZE, rows: [] };
  try {
    const sqlite = await startServerChild(serverOptions(prepared.data, prepared.releasePub), { prof, name: 'sqlite' });
    try {
      const admin = (await readFile(join(prepared.data, 'admin.token'), 'utf8')).trim();
      const fleet = await setupFleet([sqlite.url], admin, agents, prepared);
      results.rows.push(...(await runSuite('SQLite, 1 server', [sqlite], fleet, { ...o, admin })));
    } finally {
      await sqlite.stop();
    }
    if (chunkRuns && findTool('nginx')) {
      const nginx = await nginxFor(join(prepared.data, 'repo'));
      try {
        results.rows.push(await measure('nginx (1 process, sendfile): chunks', [nginx], () => chunkLoad([nginx.url], chunks, { connections: agents, duration })));
      } finally {
        await nginx.stop();
      }
    }
    if (postgres && findTool('initdb')) results.rows.push(...(await runPostgres(work, o, agents, prof)));
  } finally {
    await cleanWork('server');
  }
  print(results);
  return results;
}

async function runPostgres(work, o, agents, prof) {
  const db = await startPostgres();
  const prepared = await prepareData(join(work, 'pg'));
  await writeChunks(join(prepared.data, 'repo'), 0, CHUNK_SIZE);
  const servers = [];
  try {
    for (const id of ['pg-a', 'pg-b']) servers.push(await startServerChild(serverOptions(prepared.data, prepared.releasePub, { databaseUrl: db.url, instanceId: id }), { prof, name: id }));
    const admin = (await readFile(join(prepared.data, 'admin.token'), 'utf8')).trim();
    const fleet = await setupFleet(servers.map((s) => s.url), admin, agents, prepared);
    return await runSuite('PostgreSQL, 2 servers', servers, fleet, { ...o, admin, chunks: await writeChunks(join(prepared.data, 'repo'), 512, CHUNK_SIZE) });
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await db.stop();
  }
}

function print(results) {
  printTable(
    `server bench: ${results.agents} simulated agents (connections), ${results.duration} s per run, chunks of ${results.chunkSize / 1024} KiB`,
    ['run', 'req/s', 'p50', 'p99', 'server p99', 'loop lag p99', 'sent late p99', 'MB/s', 'server CPU/req', 'load gen CPU/req', 'non-2xx', 'errors (timeouts)', 'server RSS (peak)'],
    results.rows.map((r) => [r.label, r.rps.toFixed(0), ms(answered(r)?.p50), ms(answered(r)?.p99), r.serverP99 === undefined ? '-' : `<= ${ms(r.serverP99)}`, ms(r.lagP99), ms(r.sentLateP99), mbs(r.bytesPerSecond), r.cpuMsPerRequest === undefined ? '-' : `${r.cpuMsPerRequest.toFixed(2)} ms`, r.loadCpuMsPerRequest === undefined ? '-' : `${r.loadCpuMsPerRequest.toFixed(2)} ms`, String(r.non2xx), `${r.errors} (${r.timeouts})`, r.rss.map((x, i) => `${mb(x)} (${mb(r.peakRss[i])})`).join(' + ')]),
    [`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} cores (autocannon shares them): compare rows of one run and CPU per request, not latencies across machines`],
  );
  const row = (re) => answered(results.rows.find((r) => re.test(r.label)));
  const nginx = row(/^nginx/);
  const ferry = row(/^SQLite.*chunks/);
  const open = row(/^SQLite.*offered, evenly/);
  const targets = [
    ['chunk serving >= 0.5x nginx', ferry && nginx ? `${(ferry.bytesPerSecond / nginx.bytesPerSecond).toFixed(2)}x` : '-', check(ferry && nginx ? ferry.bytesPerSecond >= 0.5 * nginx.bytesPerSecond : undefined)],
    [`check-in p99 < 50 ms at ${results.agents} agents (SQLite, ${results.rate}/s offered)`, open ? ms(open.p99) : '-', check(open ? open.p99 < 50 : undefined)],
  ];
  printTable('targets', ['target', 'measured', ''], targets);
}
