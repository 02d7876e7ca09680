/**
 * One error family with stable codes (STYLE.md "Errors"). Callers branch on `code`, never on the
 * message. Every code is listed in {@link ERROR_CODES} and in docs/errors.md; a test keeps the two
 * in step.
 */

/** Every stable error code, with a one-line meaning and whether retrying can help. */
export const ERROR_CODES = {
  FERRY_ERR_USAGE: { retryable: false, text: 'the command line or options are wrong' },
  FERRY_ERR_INTERNAL: { retryable: false, text: 'an unexpected internal failure (a bug)' },
  FERRY_ERR_ABORTED: { retryable: true, text: 'the operation was aborted by its signal' },
  FERRY_ERR_IO: { retryable: true, text: 'a file system operation failed (disk full, permission, ...)' },
  FERRY_ERR_DIGEST_INVALID: { retryable: false, text: 'a string is not a valid sha256 digest' },
  FERRY_ERR_DIGEST_MISMATCH: { retryable: false, text: 'bytes do not hash to the digest that names them' },
  FERRY_ERR_SIZE_MISMATCH: { retryable: false, text: 'bytes are not the size that was declared' },
  FERRY_ERR_LIMIT_EXCEEDED: { retryable: false, text: 'input exceeds a decoder limit (length, size, count)' },
  FERRY_ERR_ZSTD_CORRUPT: { retryable: false, text: 'a zstd stream is corrupt or truncated' },
  FERRY_ERR_MSGPACK_INVALID: { retryable: false, text: 'a msgpack document is malformed, has the wrong shape, or is nested deeper or holds more values than its format allows' },
  FERRY_ERR_TAR_BAD_HEADER: { retryable: false, text: 'a tar header block has a bad checksum or field' },
  FERRY_ERR_TAR_TRUNCATED: { retryable: false, text: 'a tar stream ended in the middle of an entry' },
  FERRY_ERR_SKELETON_INVALID: { retryable: false, text: 'a layer skeleton is malformed' },
  FERRY_ERR_IMAGE_NOT_FOUND: { retryable: false, text: 'the path holds no OCI layout or docker archive' },
  FERRY_ERR_IMAGE_BAD_JSON: { retryable: false, text: 'an image index, manifest or config is not valid JSON of the right shape' },
  FERRY_ERR_IMAGE_MISSING_BLOB: { retryable: false, text: 'a blob the image references is not present' },
  FERRY_ERR_IMAGE_MEDIA_TYPE: { retryable: false, text: 'a manifest or layer has an unsupported media type' },
  FERRY_ERR_IMAGE_PLATFORM: { retryable: false, text: 'no manifest in the index matches the requested platform' },
  FERRY_ERR_IMAGE_AMBIGUOUS: { retryable: false, text: 'the source holds several images; name one' },
  FERRY_ERR_IMAGE_LAYER_CORRUPT: { retryable: false, text: 'a layer blob cannot be decompressed (truncated gzip/zstd)' },
  FERRY_ERR_STORE_INVALID: { retryable: false, text: 'the directory is not a ferry store (or does not exist), or its version is unknown' },
  FERRY_ERR_STORE_LOCKED: { retryable: true, text: 'another process holds the store lock' },
  FERRY_ERR_AGENT_RUNNING: { retryable: false, text: 'another ferry agent already runs on this store' },
  FERRY_ERR_AGENT_HOOK: { retryable: false, text: "the agent's on-commit command failed (the image is installed; the failure is reported)" },
  FERRY_ERR_REF_INVALID: { retryable: false, text: 'an image reference is not of the form name:tag' },
  FERRY_ERR_REF_NOT_FOUND: { retryable: false, text: 'no image with that reference is in the store' },
  FERRY_ERR_OBJECT_MISSING: { retryable: false, text: 'an object the store needs is missing' },
  FERRY_ERR_OBJECT_CORRUPT: { retryable: false, text: 'a stored object does not match its digest' },
  FERRY_ERR_KEY_INVALID: { retryable: false, text: 'a key file is not an Ed25519 key in PEM form' },
  FERRY_ERR_TRUST_INVALID: { retryable: false, text: 'a trust policy is malformed (no keys, threshold below 1 or above the key count)' },
  FERRY_ERR_SIGNATURE_INVALID: { retryable: false, text: 'a signature does not verify, or too few trusted keys signed (threshold not met)' },
  FERRY_ERR_BUNDLE_INVALID: { retryable: false, text: 'a bundle header, container or payload is malformed' },
  FERRY_ERR_BUNDLE_TRUNCATED: { retryable: false, text: 'a bundle file ends before the bytes its header declares' },
  FERRY_ERR_BUNDLE_EXPIRED: { retryable: false, text: 'the bundle header has expired' },
  FERRY_ERR_BUNDLE_ROLLBACK: { retryable: false, text: 'the bundle release number is not higher than the one installed for its channel' },
  FERRY_ERR_BUNDLE_CHANNEL: { retryable: false, text: 'the bundle is for another channel than the one asked for' },
  FERRY_ERR_BUNDLE_VERSION: { retryable: false, text: 'the bundle format version is not supported' },
  FERRY_ERR_BASELINE_MISSING: { retryable: false, text: 'the store lacks a baseline layer or content the bundle needs' },
  FERRY_ERR_DISK_FULL: { retryable: true, text: 'the disk has less free space than the operation needs' },
  FERRY_ERR_CHUNK_INVALID: { retryable: true, text: 'a chunk does not match the sha256 or size the header lists' },
  FERRY_ERR_CHUNK_MISSING: { retryable: true, text: 'a chunk the payload needs is not available' },
  FERRY_ERR_FETCH_HTTP: { retryable: true, text: 'a source answered with an HTTP status the fetcher cannot use (5xx, 408 and 429 are retried; other 4xx are not)' },
  FERRY_ERR_FETCH_RANGE: { retryable: true, text: 'a ranged answer does not match the range asked for (Content-Range, 416); the chunk restarts' },
  FERRY_ERR_FETCH_STALLED: { retryable: true, text: 'no byte arrived for the stall timeout, or too few in the low-speed window (a slow link)' },
  FERRY_ERR_PROTOCOL_INVALID: { retryable: false, text: "a request or answer does not have the protocol's shape (malformed JSON, wrong field, over a cap)" },
  FERRY_ERR_PROTOCOL_REPLAY: { retryable: false, text: 'a request or report counter is not higher than the last one the server accepted from that agent' },
  FERRY_ERR_AUTH_REQUIRED: { retryable: false, text: 'the request has no token, or one the server does not know' },
  FERRY_ERR_AUTH_FORBIDDEN: { retryable: false, text: "the token's role or agent does not allow this request" },
  FERRY_ERR_NOT_FOUND: { retryable: false, text: 'the server has no such resource (route, agent, token, header or chunk)' },
  FERRY_ERR_ALREADY_EXISTS: { retryable: false, text: 'the agent id or token name is already taken' },
  FERRY_ERR_RANGE_INVALID: { retryable: false, text: 'an HTTP Range cannot be satisfied (past the end of the file)' },
  FERRY_ERR_RATE_LIMITED: { retryable: true, text: 'too many requests; retry after the delay the server gives' },
  FERRY_ERR_TIMEOUT: { retryable: true, text: 'a request or answer did not arrive in time' },
  FERRY_ERR_SERVER_BUSY: { retryable: true, text: 'the server cannot take the request now (shutting down, queue full)' },
  FERRY_ERR_NETWORK: { retryable: true, text: 'a server or source could not be reached, or the connection failed, was reset or closed before the answer was complete' },
  FERRY_ERR_UPSTREAM_UNAVAILABLE: { retryable: true, text: 'a relay cannot reach its upstream server now and has no valid answer of its own' },
} as const satisfies Record<string, { retryable: boolean; text: string }>;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options for {@link FerryError}. */
export interface FerryErrorOptions {
  /** The lower-level error this one wraps. */
  cause?: unknown;
  /** Overrides the code's default retryability. */
  retryable?: boolean;
  /** Structured facts for callers and logs (paths, digests, sizes). */
  details?: Record<string, unknown>;
}

/** The one error class of ferry. `code` is stable; `message` is for people. */
export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
    this.details = options.details;
  }
}

/** True when `err` is a FerryError, optionally with the given code. */
export function isFerryError(err: unknown, code?: ErrorCode): err is FerryError {
  return err instanceof FerryError && (code === undefined || err.code === code);
}

/**
 * Turns any thrown value into a FerryError: FerryErrors pass through, abort errors become
 * FERRY_ERR_ABORTED, Node system errors (ENOSPC, EACCES, ...) become FERRY_ERR_IO, the rest
 * FERRY_ERR_INTERNAL.
 */
export function toFerryError(err: unknown, context = ''): FerryError {
  if (err instanceof FerryError) return err;
  const prefix = context ? `${context}: ` : '';
  if (err instanceof Error && err.name === 'AbortError') {
    return new FerryError('FERRY_ERR_ABORTED', `${prefix}aborted`, { cause: err });
  }
  const sys = err as NodeJS.ErrnoException;
  if (sys && typeof sys.code === 'string' && typeof sys.syscall === 'string') {
    const retryable = sys.code !== 'EACCES' && sys.code !== 'EPERM' && sys.code !== 'ENOENT';
    return new FerryError('FERRY_ERR_IO', `${prefix}${sys.message}`, { cause: err, retryable, details: { errno: sys.code, path: sys.path } });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new FerryError('FERRY_ERR_INTERNAL', `${prefix}${message}`, { cause: err });
}
