// Runs the benches and writes bench/results/latest.json (gitignored).
// Usage: node bench/run.mjs [store] [dataset] [bundle] [server] [link] [--sizes=512,1024] [--pairs=a,b] [--quick]
//        [--rebuild-dataset] [--no-ref-cache]
//        server: [--agents=1000] [--duration=10] [--rate=1000] [--no-postgres] [--no-chunks]
//        link: [--link-rate=1Mbit --up=20 --down=10 --latency=0 --size=96 --pair=NAME --runs=N --curl-max=150 --agent-heap=MB --agent-args=--concurrency,6 --capture]
// With no bench named, runs store and bundle (bundle builds the dataset first if it is missing).
import { execFileSync } from 'node:child_process';
import { hostname, cpus, totalmem, loadavg } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, cacheDir, readJson, writeJson } from './lib/util.mjs';

const args = process.argv.slice(2);
const flags = Object.fromEntries(args.filter((a) => a.startsWith('--')).map((a) => {
  const [k, v] = a.slice(2).split('=');
  return [k, v ?? true];
}));
const names = args.filter((a) => !a.startsWith('--'));
const known = ['store', 'dataset', 'bundle', 'server', 'link'];
for (const n of names) if (!known.includes(n)) {
  console.error(`unknown bench ${n}; choose from ${known.join(', ')}`);
  process.exit(2);
}
const selected = names.length > 0 ? names : ['store', 'bundle'];
if (flags.help) {
  // pair names: bench/dataset/pairs.mjs (an unknown name is refused with the list)
  console.log('node bench/run.mjs [store] [dataset] [bundle] [server] [link] [--sizes=512,1024] [--pairs=NAME,...] [--quick] [--rebuild-dataset] [--no-ref-cache] [server: --agents=1000 --duration=10 --rate=1000 --no-postgres --no-chunks] [link: --link-rate=1Mbit --up=20 --down=10 --latency=MS --size=MIB | --pair=NAME --runs=N --curl-max=S --agent-heap=MB --agent-args=A,B --capture]');
  process.exit(0);
}

/** The commit benchmarked, and whether packages/ had uncommitted changes (figures then describe the working tree). */
function gitState() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: BENCH_DIR, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', '../packages'], { cwd: BENCH_DIR, encoding: 'utf8' }).split('\n').filter(Boolean).length;
    return { head, dirtyFilesInPackages: dirty };
  } catch {
    return undefined;
  }
}

const started = new Date();
const t0 = performance.now();
const resultsPath = join(BENCH_DIR, 'results', 'latest.json');
const previous = (await readJson(resultsPath)) ?? {};
const out = {
  ...previous,
  run: { started: started.toISOString(), benches: selected, flags, host: hostname(), cpus: cpus().length, memory: totalmem(), loadAvgAtStart: loadavg(), node: process.version, cache: cacheDir(), git: gitState() },
};
const timings = {};

if (selected.includes('store')) {
  const { runStore } = await import('./store.mjs');
  const sizes = typeof flags.sizes === 'string' ? flags.sizes.split(',').map(Number) : flags.quick ? [64, 128] : [512, 1024];
  const s = performance.now();
  out.store = await runStore({ sizes });
  timings.store = (performance.now() - s) / 1000;
}
if (selected.includes('dataset') || selected.includes('bundle')) {
  const { buildDataset, printDataset } = await import('./dataset.mjs');
  const s = performance.now();
  out.dataset = await buildDataset({ rebuild: Boolean(flags['rebuild-dataset']), log: true });
  printDataset(out.dataset);
  timings.dataset = (performance.now() - s) / 1000;
}
if (selected.includes('bundle')) {
  const { runBundle } = await import('./bundle.mjs');
  const pairs = typeof flags.pairs === 'string' ? flags.pairs.split(',') : undefined;
  const s = performance.now();
  out.bundle = await runBundle(out.dataset, { pairs, refCache: !flags['no-ref-cache'] });
  timings.bundle = (performance.now() - s) / 1000;
}
if (selected.includes('server')) {
  const { runServer } = await import('./server.mjs');
  const num = (name) => (typeof flags[name] === 'string' ? Number(flags[name]) : undefined);
  const s = performance.now();
  out.server = await runServer({ agents: num('agents'), duration: num('duration'), rate: num('rate'), postgres: !flags['no-postgres'], chunks: !flags['no-chunks'], prof: process.env.FERRY_BENCH_CPU_PROF || undefined });
  timings.server = (performance.now() - s) / 1000;
}
if (selected.includes('link')) {
  const { runLink } = await import('./link.mjs');
  const s = performance.now();
  out.link = await runLink(flags);
  timings.link = (performance.now() - s) / 1000;
}
out.run.seconds = (performance.now() - t0) / 1000;
out.run.benchSeconds = timings;
out.run.loadAvgAtEnd = loadavg();
await writeJson(resultsPath, out);
if (out.run.git) console.log(`\nbenchmarked ${out.run.git.head}${out.run.git.dirtyFilesInPackages ? ` + ${out.run.git.dirtyFilesInPackages} uncommitted file(s) in packages/` : ''}`);
console.log(`wrote ${resultsPath} (${out.run.seconds.toFixed(0)} s: ${Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')})`);
