/**
 * Modules loaded when first used, not when the CLI starts: every command loads the whole command
 * table (cli.ts), and a device's commands (`ferry agent`, `ferry apply`) start faster without
 * them (cli-progress and its string-width, strip-ansi and ansi-regex: ~25 ms of a ~0.3 s start
 * on Node 20, measured).
 */
import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';

const require = createRequire(import.meta.url);

/** cli-progress (CommonJS, so it loads synchronously where a bar is first drawn). */
export function loadCliProgress(): typeof cliProgress {
  return require('cli-progress') as typeof cliProgress;
}
