/**
 * External tools from Debian packages that tests drive (skopeo, nginx, chromium, postgresql...).
 * On a machine without a tool, the tests that need it are skipped with one visible line naming the
 * tool and its apt package; with FERRY_REQUIRE_TOOLS=1 (set by .ci/run) a missing tool is an error
 * instead, so CI never skips silently (STYLE.md "Tests").
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Every tool the tests use: the apt package that provides it and where to look besides PATH. */
export const TOOLS = {
  skopeo: { pkg: 'skopeo', paths: [] },
  umoci: { pkg: 'umoci', paths: [] },
  setfattr: { pkg: 'attr', paths: [] },
  zstd: { pkg: 'zstd', paths: [] },
  xdelta3: { pkg: 'xdelta3', paths: [] },
  bsdiff: { pkg: 'bsdiff', paths: [] },
  tar: { pkg: 'tar', paths: ['/usr/bin/tar'] },
  gzip: { pkg: 'gzip', paths: [] },
  python3: { pkg: 'python3', paths: ['/usr/bin/python3'] },
  curl: { pkg: 'curl', paths: [] },
  openssl: { pkg: 'openssl', paths: [] },
  setpriv: { pkg: 'util-linux', paths: ['/usr/bin/setpriv'] },
  mkfifo: { pkg: 'coreutils', paths: [] },
  mknod: { pkg: 'coreutils', paths: [] },
  script: { pkg: 'bsdutils', paths: [] },
  mount: { pkg: 'mount', paths: [] },
  umount: { pkg: 'mount', paths: [] },
  fallocate: { pkg: 'util-linux', paths: [] },
  nginx: { pkg: 'nginx-light', paths: ['/usr/sbin/nginx'] },
  chromium: { pkg: 'chromium', paths: ['/usr/bin/chromium'] },
  initdb: { pkg: 'postgresql', paths: ['/usr/lib/postgresql/17/bin/initdb', '/usr/lib/postgresql/16/bin/initdb', '/usr/lib/postgresql/15/bin/initdb'] },
  pg_ctl: { pkg: 'postgresql', paths: ['/usr/lib/postgresql/17/bin/pg_ctl', '/usr/lib/postgresql/16/bin/pg_ctl', '/usr/lib/postgresql/15/bin/pg_ctl'] },
  postgres: { pkg: 'postgresql', paths: ['/usr/lib/postgresql/17/bin/postgres', '/usr/lib/postgresql/16/bin/postgres', '/usr/lib/postgresql/15/bin/postgres'] },
} as const satisfies Record<string, { pkg: string; paths: readonly string[] }>;

/** A tool tests may need. */
export type ToolName = keyof typeof TOOLS;

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of a tool, or undefined when it is not installed. */
export function findTool(name: ToolName): string | undefined {
  const fromPath = (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, name));
  return [...fromPath, ...TOOLS[name].paths].find(executable);
}

/** True when CI demands every tool (FERRY_REQUIRE_TOOLS=1): a missing one is then an error. */
export function toolsRequired(): boolean {
  return process.env.FERRY_REQUIRE_TOOLS === '1';
}

const announced = new Set<ToolName>();

/**
 * The tools' paths when all are installed; otherwise prints one line naming the missing tools and
 * their apt packages (each tool once per test process) and returns undefined, so the caller skips
 * (`describe.skipIf(!tools)`). Under FERRY_REQUIRE_TOOLS=1 a missing tool throws instead.
 */
export function toolsOrSkip<T extends ToolName>(...names: T[]): Record<T, string> | undefined {
  const found = {} as Record<T, string>;
  const missing: T[] = [];
  for (const n of names) {
    const p = findTool(n);
    if (p === undefined) missing.push(n);
    else found[n] = p;
  }
  if (missing.length === 0) return found;
  if (toolsRequired()) {
    const pkgs = [...new Set(missing.map((n) => TOOLS[n].pkg))];
    throw new Error(`${missing.join(', ')} not installed (apt-get install ${pkgs.join(' ')}); FERRY_REQUIRE_TOOLS=1 forbids skipping the tests that need them`);
  }
  // one line per skip, naming each tool not announced yet in this process and its package
  const fresh = missing.filter((n) => !announced.has(n));
  for (const n of fresh) announced.add(n);
  if (fresh.length > 0) {
    const pkgs = [...new Set(fresh.map((n) => TOOLS[n].pkg))];
    process.stderr.write(`skipped: tests that need ${fresh.join(', ')} (not installed: apt-get install ${pkgs.join(' ')})\n`);
  }
  return undefined;
}

/** Path of a tool that must be there (for code paths already guarded by toolsOrSkip). */
export function requireTool(name: ToolName): string {
  const p = findTool(name);
  if (p === undefined) throw new Error(`${name} is not installed: apt-get install ${TOOLS[name].pkg}`);
  return p;
}

/** Result of a tool run. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a tool in the C locale. Exit codes listed in `allow` are returned; any other exit is an
 * Error carrying the tool's stderr.
 */
export async function runTool(name: ToolName, args: string[], options: { cwd?: string; allow?: number[] } = {}): Promise<RunResult> {
  const allow = options.allow ?? [0];
  const bin = requireTool(name);
  try {
    const { stdout, stderr } = await execFileP(bin, args, { cwd: options.cwd, env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    const code = typeof e.code === 'number' ? e.code : -1;
    if (allow.includes(code)) return { code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    throw new Error(`${name} ${args.join(' ')} exited with ${String(e.code)}: ${e.stderr ?? String(err)}`);
  }
}

/** Runs a tool and returns stdout as raw bytes (for digests of what it prints). */
export async function runToolBytes(name: ToolName, args: string[]): Promise<Buffer> {
  const bin = requireTool(name);
  try {
    const { stdout } = await execFileP(bin, args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: Buffer };
    throw new Error(`${name} ${args.join(' ')} exited with ${String(e.code)}: ${e.stderr?.toString() ?? String(err)}`);
  }
}
