/**
 * What a command runs with. main.ts builds it from the process (argv, env, stdio); tests and
 * embedders build their own, so nothing below main.ts touches `process`.
 */
import type { Writable } from 'node:stream';

/** An output stream, with the TTY facts the CLI needs. */
export type OutStream = Writable & { isTTY?: boolean; columns?: number };

/** The process facts a command may use. */
export interface CliContext {
  stdout: OutStream;
  stderr: OutStream;
  /** Working directory relative paths resolve against. */
  cwd: string;
  /** `$FERRY_STORE`, the default for --store. */
  storeFromEnv?: string | undefined;
  /** `$FERRY_SERVER`, the default for --server. */
  serverFromEnv?: string | undefined;
  /** `$FERRY_TOKEN`, the default for --token. */
  tokenFromEnv?: string | undefined;
  /** `$FERRY_DEBUG=1`: print stack traces of internal errors. */
  debug: boolean;
  /** The ferry version, for --version. */
  version: string;
  /** Aborted on SIGINT/SIGTERM. */
  signal?: AbortSignal | undefined;
}

/** Options every command accepts. */
export interface GlobalOptions {
  /** Absolute store directory. */
  store: string;
  /** --store or $FERRY_STORE was given (commands for which a store is optional use it only then). */
  storeGiven: boolean;
  json: boolean;
  /** Set by a command that streams data to stdout: results and errors then go to stderr. */
  stdoutTaken?: boolean;
}

/** One parsed command line. */
export interface Invocation {
  ctx: CliContext;
  /** The command's name (`bundle inspect`), for messages. */
  command: string;
  global: GlobalOptions;
  /** Command options by long name (strings, booleans). */
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** Writes a machine-readable result to stdout. */
export function writeJson(ctx: CliContext, value: unknown): void {
  ctx.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Writes lines of human output to stdout. */
export function writeLines(ctx: CliContext, lines: string[]): void {
  if (lines.length > 0) ctx.stdout.write(lines.join('\n') + '\n');
}

/**
 * Waits for the signal (SIGINT/SIGTERM in the CLI), or `ms` when given: how a long-running command
 * (serve, relay, linksim) waits before its graceful shutdown. Resolves at once with neither.
 */
export function until(signal: AbortSignal | undefined, ms?: number): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || (!signal && ms === undefined)) return resolve();
    const timer = ms === undefined ? undefined : setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
