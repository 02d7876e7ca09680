/**
 * bin/ferry, the installed `ferry` command: it finds the compiled CLI through the symlinks npm
 * makes, starts node in RUNTIME_ENV's environment (glibc reads it at process start, so only a
 * launcher can set it), keeps a value the user set, and says what to do when the CLI is not built.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from '@ferry/test-support';
import { RUNTIME_ENV } from '../src/memory.js';

const run = promisify(execFile);
const BIN = join(ROOT, 'packages/cli/bin/ferry');

/** NODE_OPTIONS that make the started node print RUNTIME_ENV's variables as it sees them, then go on. */
const PRINT_ENV = `--import=data:text/javascript;base64,${Buffer.from(`console.log('ENV ' + JSON.stringify(Object.fromEntries(${JSON.stringify(Object.keys(RUNTIME_ENV))}.map((k) => [k, process.env[k]]))));`).toString('base64')}`;

function envSeen(stdout: string): Record<string, string | undefined> {
  const line = stdout.split('\n').find((l) => l.startsWith('ENV '));
  expect(line, stdout).toBeDefined();
  return JSON.parse(line!.slice(4)) as Record<string, string | undefined>;
}

/** The environment of this test without RUNTIME_ENV's variables (vitest may run under them). */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of Object.keys(RUNTIME_ENV)) if (!(k in extra)) delete env[k];
  return env;
}

let work: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-launcher-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('bin/ferry', () => {
  it('runs the CLI through a symlink, as node_modules/.bin/ferry is, with RUNTIME_ENV set', async () => {
    const link = join(work, 'ferry');
    await symlink(BIN, link);
    const r = await run(link, ['--version'], { env: cleanEnv({ NODE_OPTIONS: PRINT_ENV }) });
    expect(r.stdout).toMatch(/^ferry \d+\.\d+\.\d+$/m);
    expect(envSeen(r.stdout)).toEqual(RUNTIME_ENV);
  });

  it('keeps a value the user set', async () => {
    const r = await run(BIN, ['--version'], { env: cleanEnv({ NODE_OPTIONS: PRINT_ENV, MALLOC_MMAP_THRESHOLD_: '65536' }) });
    expect(envSeen(r.stdout).MALLOC_MMAP_THRESHOLD_).toBe('65536');
  });

  it('passes its arguments and exit status through', async () => {
    const r = await run(BIN, ['no-such-command'], { env: cleanEnv() }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(r?.code).toBe(2);
    expect(r?.stderr).toMatch(/no-such-command/);
  });

  it('says how to build when dist/main.js is missing', async () => {
    const pkg = join(work, 'unbuilt');
    await mkdir(join(pkg, 'bin'), { recursive: true });
    await copyFile(BIN, join(pkg, 'bin/ferry'));
    const r = await run(join(pkg, 'bin/ferry'), ['--help'], { env: cleanEnv() }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(r?.code).toBe(1);
    expect(r?.stderr).toContain(`ferry: the CLI is not built yet (${join(pkg, 'dist/main.js')} is missing): run \`npm run build\``);
  });
});
