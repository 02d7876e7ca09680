/** Runs the built `ferry` command as a child process (built first from the sources under test). */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The built CLI entry. */
export const MAIN = join(ROOT, 'packages/cli/dist/main.js');

/** Builds the CLI and everything under it (tsc -b: a no-op when dist is fresh). */
export function buildCli(): void {
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/cli'], { cwd: ROOT, stdio: 'pipe' });
}

/** Starts `ferry ARGS` (stdout and stderr collected). */
export function spawnFerry(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Runs `ferry ARGS --json`; fails the test with the output when it exits non-zero. */
export async function ferryJson<T = any>(args: string[]): Promise<T> {
  const r = await spawnFerry([...args, '--json']).done;
  if (r.code !== 0) throw new Error(`ferry ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
