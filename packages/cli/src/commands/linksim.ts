/** `ferry linksim`: a userspace TCP proxy that emulates a DIL link (packages/linksim). */
import type { LinkSchedule, LinkSimOptions, LinkStats } from '@ferry/linksim';
import { requiredOpt, stringOpt, type CommandSpec } from '../command.js';
import { until, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { formatDuration, formatRate, parseDuration, parseHostPort, parseRate, parseWhole } from '../units.js';

/** A duration option in ms, or undefined. */
function durationOpt(inv: Invocation, name: string): number | undefined {
  const v = stringOpt(inv, name);
  return v === undefined ? undefined : parseDuration(v, `--${name}`);
}

function rateOpt(inv: Invocation, name: string): number | undefined {
  const v = stringOpt(inv, name) ?? stringOpt(inv, 'rate');
  return v === undefined ? undefined : parseRate(v, `--${name}`);
}

function schedule(inv: Invocation): LinkSchedule {
  const [up, down, meanUp, meanDown] = ['up', 'down', 'mean-up', 'mean-down'].map((n) => durationOpt(inv, n));
  if (up !== undefined || down !== undefined) {
    if (up === undefined || down === undefined || meanUp !== undefined || meanDown !== undefined) throw usage('a fixed schedule takes both --up and --down (and not --mean-up/--mean-down)');
    return { kind: 'fixed', upMs: up, downMs: down };
  }
  if (meanUp !== undefined || meanDown !== undefined) {
    if (meanUp === undefined || meanDown === undefined) throw usage('a random schedule takes both --mean-up and --mean-down');
    return { kind: 'random', meanUpMs: meanUp, meanDownMs: meanDown };
  }
  return { kind: 'always' };
}

/** The emulator's options from the command line. */
export function linkSimOptions(inv: Invocation): LinkSimOptions {
  const mode = stringOpt(inv, 'down-mode') ?? 'reset';
  if (mode !== 'reset' && mode !== 'stall') throw usage(`--down-mode takes reset or stall, got ${JSON.stringify(mode)}`);
  const corrupt = stringOpt(inv, 'corrupt');
  const corruptRate = corrupt === undefined ? 0 : Number(corrupt);
  if (!(corruptRate >= 0 && corruptRate <= 1)) throw usage(`--corrupt takes a probability per byte from 0 to 1 (such as 1e-6), got ${JSON.stringify(corrupt)}`);
  const latency = durationOpt(inv, 'latency');
  const seed = stringOpt(inv, 'seed');
  return {
    listen: parseHostPort(requiredOpt(inv, 'listen', 'HOST:PORT'), '--listen', true),
    target: parseHostPort(requiredOpt(inv, 'target', 'HOST:PORT'), '--target'),
    rateUp: rateOpt(inv, 'rate-up'),
    rateDown: rateOpt(inv, 'rate-down'),
    latencyUpMs: durationOpt(inv, 'latency-up') ?? latency ?? 0,
    latencyDownMs: durationOpt(inv, 'latency-down') ?? latency ?? 0,
    schedule: schedule(inv),
    downMode: mode,
    resetEveryMs: durationOpt(inv, 'reset-every'),
    stallEveryMs: durationOpt(inv, 'stall-every'),
    stallMs: durationOpt(inv, 'stall-for') ?? 5000,
    corruptRate,
    seed: seed === undefined ? 1 : parseWhole(seed, '--seed', 0, 2 ** 32 - 1),
  };
}

function describeLink(o: LinkSimOptions): string {
  const rate = (r: number | undefined): string => (r === undefined ? 'unlimited' : formatRate(r));
  const s = o.schedule!;
  const sched = s.kind === 'always' ? 'always up' : s.kind === 'fixed' ? `up ${formatDuration(s.upMs / 1000)}, down ${formatDuration(s.downMs / 1000)}` : `random: mean up ${formatDuration(s.meanUpMs / 1000)}, mean down ${formatDuration(s.meanDownMs / 1000)}`;
  return `down ${rate(o.rateDown)}, up ${rate(o.rateUp)}, latency ${o.latencyDownMs} ms / ${o.latencyUpMs} ms; ${sched} (${o.downMode} while down)`;
}

function statsLine(s: LinkStats): string {
  return `link ${s.up ? 'up' : 'DOWN'}: ${s.bytesDown} B down, ${s.bytesUp} B up; ${s.connections} connections (${s.open} open), ${s.resets} reset, ${s.refused} refused; ${s.outages} outages, ${s.stalls} stalls, ${s.corruptedBytes} corrupted bytes`;
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const options = linkSimOptions(inv);
  const statsEvery = durationOpt(inv, 'stats-every') ?? 10_000;
  const duration = durationOpt(inv, 'duration');
  const out = (event: string, data: Record<string, unknown>, line: string): void => {
    ctx.stdout.write(global.json ? `${JSON.stringify({ event, ...data })}\n` : `${line}\n`);
  };
  const { startLinkSim } = await import('@ferry/linksim');
  const sim = await startLinkSim(options);
  const target = `${options.target.host}:${options.target.port}`;
  out('listening', { host: sim.host, port: sim.port, target }, `linksim listening on ${sim.host}:${sim.port} -> ${target}: ${describeLink(options)}`);
  const ticker = setInterval(() => out('stats', { stats: sim.stats() }, statsLine(sim.stats())), statsEvery);
  try {
    await until(ctx.signal, duration);
  } finally {
    clearInterval(ticker);
    await sim.close();
  }
  out('closed', { stats: sim.stats() }, `closed; ${statsLine(sim.stats())}`);
  return EXIT.ok;
}

/** The linksim command. */
export const linksimCommand: CommandSpec = {
  name: 'linksim',
  summary: 'Emulate a DIL link: a TCP proxy with a rate, latency, outages, resets, stalls and corruption, to rehearse a deployment.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    listen: { type: 'string', arg: 'HOST:PORT', description: 'where clients connect (port 0 picks a free one and prints it; required)' },
    target: { type: 'string', arg: 'HOST:PORT', description: 'where connections are forwarded (required)' },
    rate: { type: 'string', arg: 'RATE', description: 'link rate each way: 9600bit, 64kbit, 2Mbit/s, 100kB/s (default unlimited)' },
    'rate-down': { type: 'string', arg: 'RATE', description: 'rate from the target to clients (overrides --rate)' },
    'rate-up': { type: 'string', arg: 'RATE', description: 'rate from clients to the target (overrides --rate)' },
    latency: { type: 'string', arg: 'TIME', description: 'one-way delay each way: 300ms, 0.6s (default 0)' },
    'latency-down': { type: 'string', arg: 'TIME', description: 'one-way delay from the target to clients' },
    'latency-up': { type: 'string', arg: 'TIME', description: 'one-way delay from clients to the target' },
    up: { type: 'string', arg: 'TIME', description: 'fixed schedule: up this long (with --down), then down, repeated' },
    down: { type: 'string', arg: 'TIME', description: 'fixed schedule: down this long' },
    'mean-up': { type: 'string', arg: 'TIME', description: 'random schedule: up periods of this mean (exponential, seeded)' },
    'mean-down': { type: 'string', arg: 'TIME', description: 'random schedule: down periods of this mean' },
    'down-mode': { type: 'string', arg: 'MODE', description: 'reset: connections are reset when the link goes down and refused while down (default); stall: bytes are held, silently, until it is up' },
    'reset-every': { type: 'string', arg: 'TIME', description: 'reset a connection moving bytes about this often (mean, seeded)' },
    'stall-every': { type: 'string', arg: 'TIME', description: 'a silent stall of the whole link about this often (mean, seeded)' },
    'stall-for': { type: 'string', arg: 'TIME', description: 'how long a silent stall holds bytes (default 5s)' },
    corrupt: { type: 'string', arg: 'P', description: 'flip one bit in a byte with this probability per byte (1e-6; default 0)' },
    seed: { type: 'string', arg: 'N', description: 'seed of every random choice, to replay a run (default 1)' },
    'stats-every': { type: 'string', arg: 'TIME', description: 'print link statistics this often (default 10s)' },
    duration: { type: 'string', arg: 'TIME', description: 'stop after this long (default: run until Ctrl-C or SIGTERM)' },
  },
  notes: [
    'Bytes cross the link in packets of at most 1500 bytes, each paying its serialisation delay',
    '(size x 8 / rate) and then the latency; connections share the rate. A sender is slowed by TCP',
    'flow control once 64 KiB of its bytes wait in the link, as behind a real bottleneck.',
    'With --json it prints one JSON object a line: listening, stats, closed.',
    'example: a 256 kbit/s radio, 600 ms one way, up 20 s then down 10 s, in front of a ferry server:',
    '  ferry linksim --listen 127.0.0.1:9000 --target 127.0.0.1:8080 --rate 256kbit --latency 600ms --up 20s --down 10s',
  ],
  run,
};
