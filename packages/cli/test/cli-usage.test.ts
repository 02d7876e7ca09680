/** Help, version, and bad input: exit 2 or 3 with one `ferry: error FERRY_ERR_...` line. */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { ERROR_CODES, FerryError, Store } from '@ferry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_BY_CODE, reportError } from '../src/errors.js';
import type { CliContext } from '../src/context.js';
import { ensureBuilt, ferry, MAIN, toolsOrSkip } from '@ferry/test-support';

/** script(1) gives a child a pseudo-terminal. */
const script = toolsOrSkip('script')?.script;

let work: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-usage-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function expectError(r: { code: number; stderr: string }, exit: number, code: string): void {
  expect(r.code, r.stderr).toBe(exit);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^ferry: error ${code}: \\S`));
}

describe('help and version', () => {
  it('ferry --help lists every command and the exit codes', async () => {
    const r = await ferry(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['import', 'images', 'export', 'inspect', 'rm', 'fsck', 'gc', 'keygen', 'bundle', 'bundle inspect', 'apply', 'linksim', 'serve', 'push', 'release', 'agents add', 'tokens add', 'status', 'agent', 'demo', 'demo offline']) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\s`, 'm'));
    for (const code of [0, 1, 2, 3, 4, 5, 6, 7]) expect(r.stdout).toMatch(new RegExp(`^  ${code}  \\S`, 'm'));
    expect(r.stdout).toContain('FERRY_DEBUG');
    // each command's line is a whole clause: no parenthesis left open by the cut
    for (const line of r.stdout.split('\n').filter((l) => /^  [a-z]/.test(l))) expect((line.match(/\(/g) ?? []).length, line).toBe((line.match(/\)/g) ?? []).length);
    expect(r.stdout).toMatch(/^  agents add\s+Register an agent on a server and print its token \(bound to that agent id; shown once\)$/m);
  });

  const options: Record<string, string[]> = {
    import: ['--ref', '--platform', '--source-ref'],
    images: [],
    export: ['--format', '--out', '--compression'],
    inspect: ['--top'],
    rm: [],
    fsck: [],
    gc: ['--dry-run'],
    keygen: ['--out', '--force'],
    bundle: ['--from', '--to', '--key', '--bundle-key', '--out', '--channel', '--release', '--expires', '--install-as', '--chunk-size', '--max-patch-ref', '--level', 'bundle inspect'],
    'bundle inspect': ['--link', '--trust', '--bundle', '--top', 'signature'],
    apply: ['--trust', '--channel', '--ref', '--bundle', 'threshold'],
    demo: ['--link', '--up', '--down', '--image-size', '--kill-at', 'demo offline'],
    'demo offline': ['--dir', '--keep'],
    agent: ['--config', '--server', '--id', '--token', '--token-file', '--channel', '--trust', '--state', '--cache', '--source', '--bandwidth', '--concurrency', '--on-commit', '--once', 'FERRY_ERR_AGENT_RUNNING'],
  };
  for (const [cmd, opts] of Object.entries(options)) {
    it(`ferry ${cmd} --help mentions its options`, async () => {
      for (const flag of ['--help', '-h']) {
        const r = await ferry([...cmd.split(' '), flag]);
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^usage: ferry ${cmd}`));
        for (const o of [...opts, '--store', '--json', '--help']) expect(r.stdout).toContain(o);
      }
    });
  }

  it('ferry --version prints the version', async () => {
    const r = await ferry(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: 'ferry 0.1.0\n' });
  });
});

describe('bad input', () => {
  it('an unknown command, an unknown option, no command: exit 2', async () => {
    expectError(await ferry(['frobnicate']), 2, 'FERRY_ERR_USAGE');
    expectError(await ferry(['images', '--bogus']), 2, 'FERRY_ERR_USAGE');
    expectError(await ferry(['--bogus']), 2, 'FERRY_ERR_USAGE');
    expectError(await ferry([]), 2, 'FERRY_ERR_USAGE');
    expectError(await ferry(['images', 'extra']), 2, 'FERRY_ERR_USAGE');
    expectError(await ferry(['export']), 2, 'FERRY_ERR_USAGE');
    expectError(await ferry(['inspect', 'app:v1', '--top', 'many']), 2, 'FERRY_ERR_USAGE');
    expectError(await ferry(['import', 'x', '--platform', 'linux']), 2, 'FERRY_ERR_USAGE');
  });

  it('a bad ref: exit 2, before anything is created', async () => {
    const store = join(work, 'never');
    expectError(await ferry(['import', work, '--ref', 'Not A Ref'], { store }), 2, 'FERRY_ERR_REF_INVALID');
    expectError(await ferry(['export', 'notag', '--format', 'oci', '--out', join(work, 'o')], { store }), 2, 'FERRY_ERR_REF_INVALID');
    await expect(stat(store)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a missing source, store or ref: exit 3', async () => {
    const store = join(work, 'store');
    expectError(await ferry(['import', join(work, 'missing-dir'), '--ref', 'app:v1'], { store }), 3, 'FERRY_ERR_IMAGE_NOT_FOUND');
    const none = await ferry(['images'], { store: join(work, 'no-store') });
    expectError(none, 3, 'FERRY_ERR_STORE_INVALID');
    // where a newcomer's first command fails, the one line says where a store comes from
    expect(none.stderr).toContain(`there is no ferry store at ${join(work, 'no-store')} (no such directory); the store is --store DIR, else $FERRY_STORE`);
    await mkdir(join(work, 'not-a-store'), { recursive: true });
    const other = await ferry(['images'], { store: join(work, 'not-a-store') });
    expectError(other, 3, 'FERRY_ERR_STORE_INVALID');
    expect(other.stderr).toContain('is not a ferry store (no ferry-store.json)');
    expectError(await ferry(['import', work, '--ref', 'app:v1'], { store }), 3, 'FERRY_ERR_IMAGE_NOT_FOUND');
    const empty = join(work, 'empty-store');
    await Store.open(empty, { create: true });
    const out = join(work, 'nothing.tar');
    expectError(await ferry(['export', 'app:nope', '--format', 'docker-archive', '--out', out], { store: empty }), 3, 'FERRY_ERR_REF_NOT_FOUND');
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expectError(await ferry(['inspect', 'app:nope'], { store: empty }), 3, 'FERRY_ERR_REF_NOT_FOUND');
    expectError(await ferry(['rm', 'app:nope'], { store: empty }), 3, 'FERRY_ERR_REF_NOT_FOUND');
  });

  it('--json failures also print the error as JSON on stdout', async () => {
    const r = await ferry(['images', '--json'], { store: join(work, 'no-store') });
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'FERRY_ERR_STORE_INVALID', exitCode: 3 } });
  });

  it.skipIf(!script)('refuses to write a docker archive to a terminal', async () => {
    // script(1) gives the child a pseudo-terminal as stdout
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} export app:v1 --format docker-archive --store ${JSON.stringify(join(work, 'tty'))}`;
    const r = await promisify(execFile)(script!, ['-qec', cmd, '/dev/null']).then(
      (o) => ({ code: 0, out: o.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
    expect(r.code).toBe(2);
    expect(r.out).toContain('ferry: error FERRY_ERR_USAGE: refusing to write a docker archive to a terminal');
  });
});

describe('exit codes', () => {
  it('every error code has its exit code in the one table', () => {
    const missing = Object.keys(ERROR_CODES).filter((c) => !(c in EXIT_BY_CODE));
    expect(missing).toEqual([]);
  });

  function fakeCtx(debug: boolean): { ctx: CliContext; err: () => string } {
    let text = '';
    const sink = new Writable({ write: (c: Buffer, _e, cb) => ((text += c.toString()), cb()) });
    return { ctx: { stdout: sink, stderr: sink, cwd: '/', debug, version: 'test' }, err: () => text };
  }

  it('prints a stack only for internal errors, and only with FERRY_DEBUG=1', () => {
    const plain = fakeCtx(true);
    expect(reportError(plain.ctx, new FerryError('FERRY_ERR_REF_NOT_FOUND', 'no image x:y'), false)).toBe(3);
    expect(plain.err()).toBe('ferry: error FERRY_ERR_REF_NOT_FOUND: no image x:y\n');
    const quiet = fakeCtx(false);
    expect(reportError(quiet.ctx, new TypeError('boom'), false)).toBe(1);
    expect(quiet.err()).toMatch(/^ferry: error FERRY_ERR_INTERNAL: boom\nferry: this is a bug; set FERRY_DEBUG=1/);
    const debug = fakeCtx(true);
    reportError(debug.ctx, new TypeError('boom'), false);
    expect(debug.err()).toMatch(/TypeError: boom\n\s+at /);
  });
});
