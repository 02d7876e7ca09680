/**
 * The built `ferry` command for tests: ensureBuilt() builds the CLI (tsc -b, which builds core
 * first) when dist/main.js is older than any source (test files run in parallel processes, so the
 * build runs under a lock directory), and ferry() runs it as a child process, the way a user does.
 */
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The monorepo root (this file is packages/test-support/{src,dist}/cli.*). */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
/** The built CLI entry. */
export const MAIN = join(ROOT, 'packages/cli/dist/main.js');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function newestIfAny(dir: string): number {
  try {
    return newest(dir);
  } catch {
    return 0;
  }
}

function upToDate(): boolean {
  try {
    const built = statSync(MAIN).mtimeMs;
    // every package's sources: the CLI links them all (core, differ, server, agent, linksim...)
    const sources = readdirSync(join(ROOT, 'packages')).map((p) => join(ROOT, 'packages', p, 'src'));
    return sources.every((d) => newestIfAny(d) <= built);
  } catch {
    return false;
  }
}

async function withLock(fn: () => void): Promise<void> {
  const lock = join(ROOT, 'packages/cli/.build-lock');
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // another test process builds; a lock older than 5 minutes is stale
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 300_000) rmSync(lock, { recursive: true, force: true });
      if (i > 1200) throw new Error('timed out waiting for the CLI build lock');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Makes sure packages/cli/dist is built from the current sources. */
export async function ensureBuilt(): Promise<void> {
  if (upToDate()) return;
  await withLock(() => {
    if (upToDate()) return;
    // tsc -b only rewrites outputs whose inputs changed: touch main.js so the check above settles
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/cli'], { cwd: ROOT, stdio: 'inherit' });
    const now = new Date();
    utimesSync(MAIN, now, now);
  });
}

/** What a run printed and returned. */
export interface FerryRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for ferry(). */
export interface RunOptions {
  /** Passed as --store (omit to test the default). */
  store?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Redirect stdout to this file (as `> FILE` does); `stdout` is then empty. */
  stdoutFile?: string;
}

/** Runs `ferry ARGS`; never throws on a non-zero exit. */
export function ferry(args: string[], opts: RunOptions = {}): Promise<FerryRun> {
  const fd = opts.stdoutFile === undefined ? undefined : openSync(opts.stdoutFile, 'w');
  const argv = [MAIN, ...(opts.store ? ['--store', opts.store] : []), ...args];
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env };
  const child = spawn(process.execPath, argv, { cwd: opts.cwd, env, stdio: ['ignore', fd ?? 'pipe', 'pipe'] });
  if (fd !== undefined) closeSync(fd);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => out.push(c));
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** Runs `ferry ARGS --json` and parses stdout. */
export async function ferryJson<T = Record<string, unknown>>(args: string[], opts: RunOptions = {}): Promise<{ run: FerryRun; json: T }> {
  const run = await ferry([...args, '--json'], opts);
  try {
    return { run, json: JSON.parse(run.stdout) as T };
  } catch {
    throw new Error(`ferry ${args.join(' ')} --json printed no JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
}

/** Runs `ferry ARGS --json` and returns its JSON; throws with the output when it exits non-zero. */
export async function ferryJsonOk<T = any>(args: string[], opts: RunOptions = {}): Promise<T> {
  const { run, json } = await ferryJson<T>(args, opts);
  if (run.code !== 0) throw new Error(`ferry ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return json;
}
