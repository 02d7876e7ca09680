/**
 * Exit codes, and the one place FerryError codes map to them (STYLE.md "Errors"). An expected
 * failure prints one line `ferry: error FERRY_ERR_X: message`; only internal errors (bugs) show a
 * stack, and only with FERRY_DEBUG=1.
 */
import { FerryError, toFerryError, type ErrorCode } from '@ferry/core';
import type { CliContext } from './context.js';

/** The exit codes of `ferry`. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  integrity: 4,
  io: 5,
  locked: 6,
  network: 7,
} as const;

/** An exit code. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit code table as `ferry --help` shows it. */
export const EXIT_HELP: [ExitCode, string][] = [
  [EXIT.ok, 'success'],
  [EXIT.failure, 'failure (internal error, aborted, unsupported format)'],
  [EXIT.usage, 'usage: bad command line, option, image reference, key or trust file'],
  [EXIT.notFound, 'not found: image ref, source image, platform, store, baseline'],
  [EXIT.integrity, 'integrity: digest mismatch, corrupt or missing object, failed verification, fsck found problems'],
  [EXIT.io, 'I/O: the file system failed (permission, disk full, broken pipe)'],
  [EXIT.locked, 'locked: another ferry process is writing to the store'],
  [EXIT.network, 'network: a server or source was unreachable, refused the request (token, rate limit, busy, replayed counter), stalled or answered wrongly'],
];

/**
 * Every error code's exit code. A code missing here exits 1; a test checks that every code in
 * core's ERROR_CODES has its entry (a type check would break every build while codes are added).
 */
export const EXIT_BY_CODE: Partial<Record<ErrorCode, ExitCode>> = {
  FERRY_ERR_USAGE: EXIT.usage,
  FERRY_ERR_REF_INVALID: EXIT.usage,
  FERRY_ERR_IMAGE_AMBIGUOUS: EXIT.usage,
  FERRY_ERR_KEY_INVALID: EXIT.usage,
  FERRY_ERR_TRUST_INVALID: EXIT.usage,
  FERRY_ERR_INTERNAL: EXIT.failure,
  FERRY_ERR_ABORTED: EXIT.failure,
  FERRY_ERR_IMAGE_MEDIA_TYPE: EXIT.failure,
  FERRY_ERR_BUNDLE_VERSION: EXIT.failure,
  FERRY_ERR_REF_NOT_FOUND: EXIT.notFound,
  FERRY_ERR_IMAGE_NOT_FOUND: EXIT.notFound,
  FERRY_ERR_IMAGE_PLATFORM: EXIT.notFound,
  FERRY_ERR_STORE_INVALID: EXIT.notFound,
  FERRY_ERR_BASELINE_MISSING: EXIT.notFound,
  FERRY_ERR_CHUNK_MISSING: EXIT.notFound,
  FERRY_ERR_DIGEST_INVALID: EXIT.integrity,
  FERRY_ERR_DIGEST_MISMATCH: EXIT.integrity,
  FERRY_ERR_SIZE_MISMATCH: EXIT.integrity,
  FERRY_ERR_LIMIT_EXCEEDED: EXIT.integrity,
  FERRY_ERR_ZSTD_CORRUPT: EXIT.integrity,
  FERRY_ERR_MSGPACK_INVALID: EXIT.integrity,
  FERRY_ERR_TAR_BAD_HEADER: EXIT.integrity,
  FERRY_ERR_TAR_TRUNCATED: EXIT.integrity,
  FERRY_ERR_SKELETON_INVALID: EXIT.integrity,
  FERRY_ERR_IMAGE_BAD_JSON: EXIT.integrity,
  FERRY_ERR_IMAGE_MISSING_BLOB: EXIT.integrity,
  FERRY_ERR_IMAGE_LAYER_CORRUPT: EXIT.integrity,
  FERRY_ERR_OBJECT_MISSING: EXIT.integrity,
  FERRY_ERR_OBJECT_CORRUPT: EXIT.integrity,
  FERRY_ERR_SIGNATURE_INVALID: EXIT.integrity,
  FERRY_ERR_BUNDLE_INVALID: EXIT.integrity,
  FERRY_ERR_BUNDLE_TRUNCATED: EXIT.integrity,
  FERRY_ERR_BUNDLE_EXPIRED: EXIT.integrity,
  FERRY_ERR_BUNDLE_ROLLBACK: EXIT.integrity,
  FERRY_ERR_BUNDLE_CHANNEL: EXIT.integrity,
  FERRY_ERR_CHUNK_INVALID: EXIT.integrity,
  FERRY_ERR_IO: EXIT.io,
  FERRY_ERR_DISK_FULL: EXIT.io,
  FERRY_ERR_STORE_LOCKED: EXIT.locked,
  FERRY_ERR_AGENT_RUNNING: EXIT.locked,
  FERRY_ERR_AGENT_HOOK: EXIT.failure,
  FERRY_ERR_FETCH_HTTP: EXIT.network,
  FERRY_ERR_FETCH_RANGE: EXIT.network,
  FERRY_ERR_FETCH_STALLED: EXIT.network,
  FERRY_ERR_PROTOCOL_INVALID: EXIT.integrity,
  FERRY_ERR_NOT_FOUND: EXIT.notFound,
  FERRY_ERR_ALREADY_EXISTS: EXIT.usage,
  FERRY_ERR_RANGE_INVALID: EXIT.network,
  FERRY_ERR_PROTOCOL_REPLAY: EXIT.network,
  FERRY_ERR_AUTH_REQUIRED: EXIT.network,
  FERRY_ERR_AUTH_FORBIDDEN: EXIT.network,
  FERRY_ERR_RATE_LIMITED: EXIT.network,
  FERRY_ERR_TIMEOUT: EXIT.network,
  FERRY_ERR_SERVER_BUSY: EXIT.network,
  FERRY_ERR_NETWORK: EXIT.network,
  FERRY_ERR_UPSTREAM_UNAVAILABLE: EXIT.network,
};

/** The exit code for an error code (unknown codes: 1). */
export function exitCodeFor(code: string): ExitCode {
  return (EXIT_BY_CODE as Record<string, ExitCode | undefined>)[code] ?? EXIT.failure;
}

/** A usage error (exit 2). */
export function usage(message: string): FerryError {
  return new FerryError('FERRY_ERR_USAGE', message);
}

/**
 * Reports a failure: one line on stderr (plus, with --json, `{ error }` on stdout) and returns
 * the exit code. Internal errors get their stack with FERRY_DEBUG=1, or a hint without it.
 */
export function reportError(ctx: CliContext, err: unknown, json: boolean): ExitCode {
  const fe = toFerryError(err);
  const exitCode = exitCodeFor(fe.code);
  let message = fe.message.replace(/\s*\n\s*/g, ' ');
  // a newcomer's first command is often `ferry images` where no store is yet
  if (fe.code === 'FERRY_ERR_STORE_INVALID' && fe.details?.missing === true) message += '; the store is --store DIR, else $FERRY_STORE, else ./ferry-store, and ferry import creates one';
  ctx.stderr.write(`ferry: error ${fe.code}: ${message}\n`);
  if (fe.code === 'FERRY_ERR_INTERNAL') {
    const original = err instanceof FerryError && err.cause !== undefined ? err.cause : err;
    if (ctx.debug) ctx.stderr.write(`${original instanceof Error ? original.stack : String(original)}\n`);
    else ctx.stderr.write('ferry: this is a bug; set FERRY_DEBUG=1 to see the stack trace\n');
  }
  if (json) ctx.stdout.write(JSON.stringify({ error: { code: fe.code, message, exitCode, details: fe.details } }, null, 2) + '\n');
  return exitCode;
}
