/**
 * `ferry agent`: the edge agent daemon (packages/agent; docs/agent.md). Runs until SIGINT/SIGTERM
 * (progress is durable: verified chunks, partial chunks and rebuilt layers survive), or with
 * --once until every channel runs its latest release.
 */
import { spawn } from 'node:child_process';
import { FerryError, type Report } from '@ferry/core';
import type { FetchProgress } from '@ferry/agent';
import { agentOptions } from '../agent-config.js';
import type { CommandSpec } from '../command.js';
import type { Invocation, OutStream } from '../context.js';
import { EXIT } from '../errors.js';
import { humanBytes, shortDigest } from '../format.js';
import { formatDuration } from '../units.js';

/** One line about a report: state, bytes, chunks, rate, ETA, error. */
export function reportLine(r: Report): string {
  const parts = [r.state.padEnd(9)];
  if (r.channel) parts.push(`${r.channel}${r.release != null ? ` #${r.release}` : ''}`);
  if (r.bytesTotal > 0) {
    parts.push(`${humanBytes(r.bytesDone)}/${humanBytes(r.bytesTotal)} (${Math.floor((100 * r.bytesDone) / r.bytesTotal)}%)`, `chunks ${r.chunksDone}/${r.chunksTotal}`, `${humanBytes(r.rate)}/s`);
    if (r.eta !== null && r.state === 'fetching') parts.push(`ETA ${formatDuration(r.eta)}`);
  }
  if (r.error) parts.push(`last error ${r.error.code}`);
  return parts.join('  ');
}

/** Prints reports: JSON lines (--json), one line refreshed in place (a terminal), or a line each. */
function printer(out: OutStream, json: boolean): (r: Report) => void {
  if (json) return (r) => out.write(JSON.stringify({ report: r }) + '\n');
  if (out.isTTY) return (r) => out.write(`\r\x1b[2K${reportLine(r).slice(0, (out.columns ?? 100) - 1)}${r.state === 'committed' || r.state === 'failed' ? '\n' : ''}`);
  return (r) => out.write(reportLine(r) + '\n');
}

/** Runs the on-commit command with `{ref}` replaced (single-quoted for the shell). */
function hook(template: string): (ref: string, signal: AbortSignal) => Promise<void> {
  return (ref, signal) =>
    new Promise((resolve, reject) => {
      const cmd = template.replaceAll('{ref}', `'${ref.replaceAll("'", "'\\''")}'`);
      const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'], signal });
      child.on('error', (err) => reject(new FerryError('FERRY_ERR_AGENT_HOOK', `on-commit command could not run: ${err.message}`, { cause: err })));
      child.on('close', (code, sig) => (code === 0 ? resolve() : reject(new FerryError('FERRY_ERR_AGENT_HOOK', `on-commit command exited with ${code ?? sig}: ${cmd}`))));
    });
}

/** Progress lines: JSON lines (--json), or the report line refreshed in place on a terminal. */
function progressPrinter(out: OutStream, json: boolean): ((phase: 'fetching' | 'applying', p: FetchProgress) => void) | undefined {
  if (json) return (phase, p) => out.write(JSON.stringify({ progress: { phase, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, chunksDone: p.chunksDone, chunksTotal: p.chunksTotal, rate: p.rate, eta: p.eta, error: p.error, link: p.link } }) + '\n');
  if (!out.isTTY) return undefined;
  return (phase, p) => out.write(`\r\x1b[2K${reportLine({ counter: 1, at: '', state: phase, ...p, link: undefined }).slice(0, (out.columns ?? 100) - 1)}`);
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const { options, onCommit } = await agentOptions(inv);
  const { Agent } = await import('@ferry/agent');
  const agent = await Agent.open({ ...options, version: ctx.version, onReport: printer(global.json ? ctx.stdout : ctx.stderr, global.json), onProgress: progressPrinter(global.json ? ctx.stdout : ctx.stderr, global.json), onCommit: onCommit ? hook(onCommit) : undefined });
  try {
    if (inv.values.once === true) {
      const results = await agent.runOnce({ signal: ctx.signal });
      const summary = results.map((r) => ({ ref: r.ref, channel: r.channel, release: r.release, manifest: r.manifestDigest, config: r.configDigest }));
      if (global.json) ctx.stdout.write(JSON.stringify({ committed: summary }) + "\n");
      else ctx.stdout.write(summary.length === 0 ? 'up to date\n' : summary.map((s) => `installed ${s.ref} (${s.channel} #${s.release}), image ID ${shortDigest(s.config)}\n`).join(''));
    } else await agent.run({ signal: ctx.signal });
  } finally {
    await agent.close();
  }
  return EXIT.ok;
}

/** The agent command. */
export const agentCommand: CommandSpec = {
  name: 'agent',
  summary: 'Run the edge agent: check in with the server, fetch and verify the bundles of new releases over slow, intermittent links, rebuild and commit the images into the store.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    config: { type: 'string', arg: 'FILE', description: 'JSON config: servers, id, token or tokenFile, channels, trust, store, stateDir, cacheDir, sources, bandwidth, concurrency, checkinInterval, onCommit, keepCache (paths relative to the file; options below win)' },
    server: { type: 'string', multiple: true, arg: 'URL', description: 'server (or relay) URL, tried in order (repeatable; default $FERRY_SERVER)' },
    id: { type: 'string', arg: 'ID', description: 'this agent\'s id (ferry agents add ID)' },
    token: { type: 'string', arg: 'TOKEN', description: 'the agent token (default $FERRY_TOKEN); prefer --token-file' },
    'token-file': { type: 'string', arg: 'FILE', description: 'file holding the agent token' },
    channel: { type: 'string', multiple: true, arg: 'NAME', description: 'channel to follow, in order of preference (repeatable); an urgent release goes first' },
    trust: { type: 'string', multiple: true, arg: 'FILE', description: 'trusted keys: the release key and the server\'s bundle key (.pub each), or a JSON trust file (repeatable)' },
    state: { type: 'string', arg: 'DIR', description: 'agent state: lock, request counter, buffered reports (default STORE/agent)' },
    cache: { type: 'string', arg: 'DIR', description: 'chunk cache, in the repository layout chunks/<hex> (default STATE/cache)' },
    'keep-cache': { type: 'boolean', description: 'keep every chunk after a commit (a cache copied onward to other devices); by default a commit removes the chunks no pending transfer needs' },
    source: { type: 'string', multiple: true, arg: 'URL|DIR', description: 'extra chunk source tried before the server\'s repository: a relay URL or a directory such as a USB stick (repeatable)' },
    bandwidth: { type: 'string', arg: 'RATE', description: 'bandwidth cap for chunk transfers (256kbit, 2Mbit/s, 50kB/s); leaves room for the link\'s other traffic' },
    concurrency: { type: 'string', arg: 'N', description: 'chunks in flight at once (default 3; more fills long-latency links)' },
    'checkin-interval': { type: 'string', arg: 'SECONDS', description: 'seconds between check-ins when the server does not say (default 60)' },
    'on-commit': { type: 'string', arg: 'CMD', description: 'shell command run after each commit, {ref} replaced by the installed ref; its failure is reported, not fatal' },
    once: { type: 'boolean', description: 'sync until every channel runs its latest release, then exit (transient failures are retried)' },
  },
  notes: [
    'Progress goes to stderr (one line refreshed in place on a terminal); with --json each report is a',
    'JSON line {"report": ...} on stdout. Reports made while the server is unreachable are kept in STATE',
    'and sent at the next contact. One agent per store: a second one exits with FERRY_ERR_AGENT_RUNNING.',
    'SIGINT/SIGTERM stop it cleanly; verified chunks, partial chunks and rebuilt layers are kept.',
    'examples:',
    '  ferry agent --server https://ferry.example:8443 --id edge-17 --token-file /etc/ferry/token \\',
    '      --channel stable --trust /etc/ferry/release.pub --trust /etc/ferry/bundle.pub --store /var/lib/ferry \\',
    '      --bandwidth 256kbit --on-commit \'ferry export {ref} --format docker-archive | docker load\'',
    '  ferry agent --config /etc/ferry/agent.json --once',
  ],
  run,
};
