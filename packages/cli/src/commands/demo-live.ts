/**
 * `ferry demo` (`npm run demo`): ferry's main job, live on this machine. Two versions of a sample
 * image, a server on a free loopback port, v2 released, and an agent holding v1 behind an emulated
 * DIL link (`ferry linksim`: a slow rate, up and down on a schedule). Progress is shown live; the
 * agent is killed with SIGKILL once mid-transfer and restarted; the end compares the verified image
 * ID with the publisher's and the bytes and time on the link with what `docker pull` would need.
 * Everything lives in a temp directory, removed at the end (also on Ctrl-C).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { headerPath, Store, verifyHeader, type Digest, type Report } from '@ferry/core';
import type { LinkSim } from '@ferry/linksim';
import { stringOpt, type CommandSpec } from '../command.js';
import type { Invocation, OutStream } from '../context.js';
import { EXIT } from '../errors.js';
import { comparePull } from '../compare.js';
import { humanBytes, shortDigest, table } from '../format.js';
import { formatDuration, formatRate, parseDuration, parseRate, parseSize } from '../units.js';
import { startAgentChild, type AgentChild, type ProgressLine } from '../demo/agent-child.js';
import type { Fleet } from '../demo/fleet.js';
import { loadTrust } from '../trust.js';
import { tempRoot } from './demo.js';

interface LiveOptions {
  rate: number;
  upMs: number;
  downMs: number;
  imageBytes: number;
  killAt: number;
}

function liveOptions(inv: Invocation): LiveOptions {
  const opt = (name: string, dflt: string): string => stringOpt(inv, name) ?? dflt;
  const killAt = Number(opt('kill-at', '0.4'));
  return { rate: parseRate(opt('link', '64kbit'), '--link'), upMs: parseDuration(opt('up', '20s'), '--up'), downMs: parseDuration(opt('down', '10s'), '--down'), imageBytes: parseSize(opt('image-size', '8MiB'), '--image-size'), killAt: killAt > 0 && killAt < 1 ? killAt : 0.4 };
}

/** One line about the transfer, refreshed in place on a terminal. */
function progressText(p: ProgressLine, link: LinkSim): string {
  const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
  const eta = p.eta !== null && p.phase === 'fetching' ? `  ETA ${formatDuration(p.eta)}` : '';
  return `   ${p.phase.padEnd(8)} ${String(pct).padStart(3)}%  ${humanBytes(p.bytesDone)}/${humanBytes(p.bytesTotal)}  chunks ${p.chunksDone}/${p.chunksTotal}  ${humanBytes(p.rate)}/s${eta}  link ${link.stats().up ? 'UP  ' : 'DOWN'}`;
}

class Screen {
  private lastLine = 0;
  constructor(private readonly out: OutStream, private readonly quiet: boolean) {}
  say(line: string): void {
    if (this.quiet) return;
    if (this.out.isTTY) this.out.write('\r\x1b[2K');
    this.out.write(line + '\n');
  }
  live(line: string): void {
    if (this.quiet) return;
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${line.slice(0, (this.out.columns ?? 120) - 1)}`);
    else if (performance.now() - this.lastLine > 5000) {
      this.lastLine = performance.now();
      this.out.write(line + '\n');
    }
  }
}

interface Transfer {
  killedAt?: number | undefined;
  bundle?: Digest | undefined;
  seconds: number;
  committed: Report | undefined;
}

/** Runs the agent to its commit, killing it once with SIGKILL at `killAt` of the payload. */
async function runAgent(args: string[], o: LiveOptions, link: LinkSim, screen: Screen, signal?: AbortSignal): Promise<Transfer> {
  const t: Transfer = { seconds: 0, committed: undefined };
  const t0 = performance.now();
  let child: AgentChild | undefined;
  const stop = (): void => child?.kill('SIGKILL');
  signal?.addEventListener('abort', stop, { once: true });
  try {
    for (let round = 0; round < 2 && !t.committed; round++) {
      child = startAgentChild(args, undefined, {
        onProgress: (p) => {
          screen.live(progressText(p, link));
          if (round === 0 && p.phase === 'fetching' && p.bytesTotal > 0 && p.bytesDone >= o.killAt * p.bytesTotal && t.killedAt === undefined) {
            t.killedAt = p.bytesDone;
            child!.kill('SIGKILL');
          }
        },
        onReport: (r) => {
          if (r.bundle) t.bundle = r.bundle;
          if (r.state === 'committed' && !r.error) t.committed = r;
        },
      });
      const end = await child.exited;
      signal?.throwIfAborted();
      if (end.signal === 'SIGKILL') {
        screen.say(`   kill -9 of the agent (pid ${child.pid}) at ${humanBytes(t.killedAt ?? 0)}: like a power cut; restarting it`);
        continue;
      }
      if (end.code !== 0) throw new Error(`the agent exited with ${end.code}: ${end.stderr.trim()}`);
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    child?.kill('SIGKILL');
  }
  t.seconds = (performance.now() - t0) / 1000;
  return t;
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const o = liveOptions(inv);
  const screen = new Screen(ctx.stdout, global.json);
  const t0 = performance.now();
  const linkText = `${formatRate(o.rate)}, up ${formatDuration(o.upMs / 1000)} / down ${formatDuration(o.downMs / 1000)}`;
  screen.say(`ferry demo: an edge device holding edgeapp v1 gets v2 over a DIL link (${linkText})`);
  screen.say('');
  screen.say('1. Build v1 and v2 of a sample image, start a server, push both, release v2 on channel "stable"');
  const [{ startFleet }, { startLinkSim }] = await Promise.all([import('../demo/fleet.js'), import('@ferry/linksim')]);
  let fleet: Fleet | undefined;
  let link: LinkSim | undefined;
  try {
    fleet = await startFleet({ targetBytes: o.imageBytes, tmp: await tempRoot(false), signal: ctx.signal });
    await fleet.release('app:v2', 'stable');
    const device = await fleet.addAgent('edge-1');
    screen.say(`   server ${fleet.url}, work directory ${fleet.work} (${formatDuration((performance.now() - t0) / 1000)})`);
    const port = Number(new URL(fleet.url).port);
    link = await startLinkSim({ target: { host: '127.0.0.1', port }, rateDown: o.rate, rateUp: o.rate, schedule: { kind: 'fixed', upMs: o.upMs, downMs: o.downMs } });
    screen.say(`2. Start the agent (holding v1) behind ferry linksim on 127.0.0.1:${link.port}; kill -9 it at ${Math.round(o.killAt * 100)}% and restart it`);
    const args = ['--server', `http://127.0.0.1:${link.port}`, '--id', 'edge-1', '--token', device.token, '--channel', 'stable', '--store', device.store, ...fleet.trust.flatMap((f) => ['--trust', f])];
    const t = await runAgent(args, o, link, screen, ctx.signal);
    const wire = link.stats();
    return await outcome(inv, screen, { fleet, device: device.store, t, wire: wire.bytesDown + wire.bytesUp, o, linkText, total: (performance.now() - t0) / 1000 });
  } finally {
    await link?.close();
    await fleet?.close();
  }
}

interface Outcome {
  fleet: Fleet;
  device: string;
  t: Transfer;
  wire: number;
  o: LiveOptions;
  linkText: string;
  total: number;
}

/** Prints (or writes as JSON) the verified image ID and the comparison with docker pull. */
async function outcome(inv: Invocation, screen: Screen, x: Outcome): Promise<number> {
  const store = await Store.open(x.device);
  const got = (await store.resolve('app:v2')).configDigest;
  const want = x.fleet.configs['app:v2']!;
  // from the server's repository: the agent's cache no longer holds it once the commit pruned it
  const header = verifyHeader(await readFile(join(x.fleet.server.paths.repo, headerPath(x.t.bundle!))), { trust: await loadTrust(x.fleet.trust) });
  // what docker pull sends: the compressed sizes the pushed image declared (the server's bundles
  // carry no gzip sizes of their own: the differ no longer gzips every layer to print them)
  const declared = (await x.fleet.server.state.images.sourceLayers([header.release.manifest])).get(header.release.manifest);
  const layers = header.layers.map((l) => ({ ...l, gzipSize: l.gzipSize || (declared?.get(l.diffId)?.size ?? 0) }));
  const cmp = comparePull(header.payloadSize, layers);
  const uptime = x.o.upMs / (x.o.upMs + x.o.downMs);
  const ideal = (bytes: number): number => (bytes * 8) / x.o.rate / uptime;
  const perUp = (x.o.rate / 8) * (x.o.upMs / 1000);
  const biggest = Math.max(...layers.filter((l) => l.mode === 'rebuild').map((l) => l.gzipSize));
  const result = { imageId: got, expected: want, match: got === want, payloadBytes: header.payloadSize, wireBytes: x.wire, seconds: x.t.seconds, killedAtBytes: x.t.killedAt ?? null, dockerPull: { bytes: cmp.changedLayers.bytes, layers: cmp.changedLayers.layers, idealSeconds: ideal(cmp.changedLayers.bytes), biggestLayer: biggest }, totalSeconds: x.total };
  if (inv.global.json) inv.ctx.stdout.write(JSON.stringify(result) + '\n');
  screen.say('');
  screen.say(`3. Verify: device image ID ${shortDigest(got)}, publisher's v2 ${shortDigest(want)}: ${got === want ? 'they match, bit for bit' : 'THEY DIFFER'}`);
  screen.say('');
  screen.say(`Result on the link (${x.linkText}):`);
  const rows = [
    ['', 'BYTES', 'TIME ON THIS LINK'],
    ['ferry (measured: payload; all traffic incl. HTTP, check-ins, reports)', `${humanBytes(header.payloadSize)}; ${humanBytes(x.wire)}`, `${formatDuration(x.t.seconds)} measured, with a kill -9`],
    [`docker pull (changed layers, gzip: ${cmp.changedLayers.layers})`, humanBytes(cmp.changedLayers.bytes), `at least ${formatDuration(ideal(cmp.changedLayers.bytes))}${biggest > perUp ? ` (its largest layer, ${humanBytes(biggest)}, is more than one ${formatDuration(x.o.upMs / 1000)} up period carries: ${humanBytes(perUp)})` : ''}`],
  ];
  for (const l of table(rows, ['left', 'right', 'left'], '  ')) screen.say(l);
  screen.say('');
  screen.say(`demo took ${formatDuration(x.total)}; everything it made is removed`);
  return got === want ? EXIT.ok : EXIT.integrity;
}

/** The live demo command. */
export const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'Watch ferry update an edge device over an emulated DIL link: a server, a release, an agent behind ferry linksim killed with kill -9 mid-transfer; ends with the verified image ID and the bytes and time beside docker pull.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    link: { type: 'string', arg: 'RATE', description: 'link rate each way (default 64kbit)' },
    up: { type: 'string', arg: 'DURATION', description: 'the link is up this long (default 20s) ...' },
    down: { type: 'string', arg: 'DURATION', description: '... then down this long (default 10s), repeated' },
    'image-size': { type: 'string', arg: 'SIZE', description: 'uncompressed size of the sample image (default 8MiB)' },
    'kill-at': { type: 'string', arg: 'FRACTION', description: 'kill -9 the agent when this fraction of the payload is in (default 0.4)' },
  },
  notes: ['Needs only Node and npm: no Docker, no network beyond loopback. The offline walk-through (bundle', 'as a file, no server) is ferry demo offline. Exits 4 if the image IDs differ.'],
  run,
};
