// Shared helpers for the benches: cache and work directories, running measured child processes
// and external commands, hashing and sizes. Plain ESM, no build step.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { runtimeEnv } from '@ferry/cli/memory';

/** Directory of the bench scripts. */
export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

/** Where datasets and scratch stores live: FERRY_BENCH_CACHE or ~/.cache/ferry-bench (never the repo). */
export function cacheDir() {
  return process.env.FERRY_BENCH_CACHE ?? join(homedir(), '.cache', 'ferry-bench');
}

/** A fresh, empty scratch directory under the cache (removed first if it exists). */
export async function freshDir(...parts) {
  const dir = join(cacheDir(), 'work', ...parts);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Removes the scratch area (stores, exports) left by a bench. */
export async function cleanWork(...parts) {
  await rm(join(cacheDir(), 'work', ...parts), { recursive: true, force: true });
}

export const MiB = 1024 * 1024;
export const MB = 1e6;

/** Size of a file in bytes. */
export async function fileSize(path) {
  return (await stat(path)).size;
}

/** sha256 of a file, as `sha256:<hex>`. */
export async function sha256File(path) {
  const h = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: MiB }), h);
  return `sha256:${h.digest('hex')}`;
}

/** Reads JSON, or returns undefined when the file does not exist. */
export async function readJson(path) {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function writeJson(path, value) {
  await mkdir(dirname(path), { recursive: true });
  // per process: several bench runs may write one refs.json
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

/**
 * Runs a command and waits for it. `stdout`/`stdin` may be file paths ('/dev/null' included);
 * otherwise stdout is collected and returned. Throws with stderr on a non-zero exit. `env` adds to
 * the inherited environment; `dropEnv(name)` returning true leaves an inherited variable out.
 */
export function run(cmd, args, { stdout, stdin, cwd, env, dropEnv, quiet = false } = {}) {
  return new Promise((resolve, reject) => {
    const fds = [];
    const io = ['ignore', 'pipe', 'pipe'];
    if (stdin) io[0] = fds[fds.push(openSync(stdin, 'r')) - 1];
    if (stdout) io[1] = fds[fds.push(openSync(stdout, 'w')) - 1];
    const inherited = dropEnv ? Object.fromEntries(Object.entries(process.env).filter(([k]) => !dropEnv(k))) : process.env;
    const child = spawn(cmd, args, { stdio: io, cwd, env: env ? { ...inherited, ...env } : inherited });
    const out = [];
    const err = [];
    child.stdout?.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', (e) => {
      for (const fd of fds) closeSync(fd);
      reject(e);
    });
    child.on('close', (code, signal) => {
      for (const fd of fds) closeSync(fd);
      const stderr = Buffer.concat(err).toString();
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}: ${stderr.slice(-2000)}`));
      if (!quiet && stderr.trim() && process.env.FERRY_BENCH_VERBOSE) process.stderr.write(stderr);
      resolve({ stdout: Buffer.concat(out), stderr });
    });
  });
}

/**
 * Runs an external command under /usr/bin/time and returns wall seconds and peak RSS (bytes),
 * plus what run() returns. Use for the reference tools (tar, gzip, zstd, xdelta3, bsdiff).
 */
export async function timed(cmd, args, opts = {}) {
  const fmtFile = join(cacheDir(), 'work', `.time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  await mkdir(dirname(fmtFile), { recursive: true });
  const t0 = performance.now();
  const r = await run('/usr/bin/time', ['-f', '%e %M', '-o', fmtFile, cmd, ...args], opts);
  const wall = (performance.now() - t0) / 1000;
  const [, kb] = (await readFile(fmtFile, 'utf8')).trim().split(/\s+/).slice(-2);
  await rm(fmtFile, { force: true });
  return { ...r, seconds: wall, maxRss: Number(kb) * 1024 };
}

/** Runs a shell pipeline under /usr/bin/time (peak RSS is that of the largest process in it). */
export function timedShell(script, opts = {}) {
  return timed('bash', ['-o', 'pipefail', '-c', script], opts);
}

/**
 * Runs one measured operation in a fresh node process (bench/lib/child.mjs), in the environment
 * bin/ferry starts the `ferry` command in: the child times the operation itself (module loading
 * excluded) and reports its own peak RSS (VmHWM).
 */
export async function inChild(op, params) {
  const script = join(BENCH_DIR, 'lib', 'child.mjs');
  // FERRY_BENCH_CPU_PROF=DIR writes a V8 CPU profile of every measured child into DIR
  // (summarise one with `node bench/lib/profile-top.mjs FILE`); it slows the children down.
  const prof = process.env.FERRY_BENCH_CPU_PROF;
  const nodeArgs = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${op}-${Date.now()}.cpuprofile`] : [];
  const { stdout } = await run(process.execPath, [...nodeArgs, script, op, JSON.stringify(params)], { env: runtimeEnv() });
  const line = stdout.toString().split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`child ${op} printed no result: ${stdout.toString().slice(-2000)}`);
  return JSON.parse(line.slice(7));
}

/** Writes a stream of chunks to a file. */
export async function writeStreamTo(path, source) {
  await pipeline(source, createWriteStream(path));
}

/** Size of the gzip output of a file at a level (gzip CLI, counted not stored). */
export async function gzipSize(path, level = 6) {
  const { stdout } = await run('bash', ['-o', 'pipefail', '-c', `gzip -${level} -n -c "$1" | wc -c`, 'gz', path]);
  return Number(stdout.toString().trim());
}

/** Shell-quotes one argument. */
export function q(s) {
  return `'${String(s).replaceAll("'", "'\\''")}'`;
}
