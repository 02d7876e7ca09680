/** Runs the built `ferry` as a child process, the way a user does. */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { MAIN } from './build.js';

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
  child.stderr.on('data', (c: Buffer) => err.push(c));
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
