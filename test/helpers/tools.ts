/**
 * External clients the end-to-end tests drive. A missing tool fails the test with the apt package
 * that provides it, never a silent skip: CI installs them.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Tools and the Debian packages that provide them. */
const PACKAGES = { skopeo: 'skopeo', umoci: 'umoci' } as const;

/** A tool the e2e tests use. */
export type Tool = keyof typeof PACKAGES;

/** Absolute path of `tool` on PATH; throws naming the apt package when it is missing. */
export function requireTool(tool: Tool): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  throw new Error(`${tool} is not installed: apt-get install -y ${PACKAGES[tool]}`);
}

/** Runs a tool; a non-zero exit is an Error with its stderr. */
export async function runTool(tool: Tool, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const bin = requireTool(tool);
  try {
    return await execFileP(bin, args, { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } });
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string };
    throw new Error(`${tool} ${args.join(' ')} exited with ${String(e.code)}: ${e.stderr ?? String(err)}`);
  }
}

/** Runs a tool and returns stdout as raw bytes (for digests of what it prints). */
export async function runToolBytes(tool: Tool, args: string[]): Promise<Buffer> {
  const bin = requireTool(tool);
  try {
    const { stdout } = await execFileP(bin, args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: Buffer };
    throw new Error(`${tool} ${args.join(' ')} exited with ${String(e.code)}: ${e.stderr?.toString() ?? String(err)}`);
  }
}
