/**
 * External tools the skeleton corpus is generated with. A missing tool is a test failure with an
 * install hint, never a silent skip: CI installs them all.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Where each tool is looked for first, and how to install it when it is missing. */
const TOOLS = {
  tar: { paths: ['/usr/bin/tar'], install: 'apt-get install -y tar (GNU tar >= 1.30)' },
  setfattr: { paths: ['/usr/bin/setfattr'], install: 'apt-get install -y attr' },
  mkfifo: { paths: ['/usr/bin/mkfifo'], install: 'apt-get install -y coreutils' },
  mknod: { paths: ['/usr/bin/mknod'], install: 'apt-get install -y coreutils' },
  python3: { paths: ['/root/.pyenv/shims/python3', '/usr/bin/python3'], install: 'apt-get install -y python3' },
  umoci: { paths: ['/usr/bin/umoci'], install: 'apt-get install -y umoci' },
} satisfies Record<string, { paths: string[]; install: string }>;

/** A tool the corpus needs. */
export type ToolName = keyof typeof TOOLS;

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of a corpus tool; throws an Error naming the tool and how to install it. */
export function requireTool(name: ToolName): string {
  const spec = TOOLS[name];
  const fromPath = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, name));
  const found = [...spec.paths, ...fromPath].find(executable);
  if (found === undefined) {
    throw new Error(`skeleton corpus: required tool "${name}" is not installed (looked in ${spec.paths.join(', ')} and PATH). Install it: ${spec.install}`);
  }
  return found;
}

/** Result of a tool run. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a tool in the C locale (so GNU tar writes names as raw bytes). Exit codes listed in `allow`
 * are returned; any other exit is an Error carrying the tool's stderr.
 */
export async function run(tool: string, args: string[], options: { cwd?: string; allow?: number[] } = {}): Promise<RunResult> {
  const allow = options.allow ?? [0];
  try {
    const { stdout, stderr } = await execFileP(tool, args, { cwd: options.cwd, env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    const code = typeof e.code === 'number' ? e.code : -1;
    if (allow.includes(code)) return { code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    throw new Error(`${tool} ${args.join(' ')} exited with ${String(e.code)}: ${e.stderr ?? String(err)}`);
  }
}
