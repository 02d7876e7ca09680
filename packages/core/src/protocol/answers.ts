/**
 * The protocol's messages checked without TypeBox: the checks compiled ahead of time from the
 * schemas (checks.ts) decide, and only a value that does not fit loads TypeBox (validate.ts) to
 * name its first bad field. The agent and the publishing commands read answers
 * with these; importing `@ferry/core` does not load TypeBox (measured: 67.6 -> 58.9 MB of RSS
 * after the import, which `ferry apply` and the agent no longer pay).
 */
import { ERROR_CODES, FerryError, type ErrorCode } from '../errors.js';
import { CHECKS } from './checks.js';
import { MESSAGES, type AsyncValidators, type MessageName } from './messages.js';
import type { ErrorBody } from './schemas.js';

/** Whether `value` has the shape of message `name` (no detail, no TypeBox). */
export function fitsMessage(name: MessageName, value: unknown): boolean {
  return CHECKS[name](value);
}

async function fit(name: MessageName, value: unknown): Promise<unknown> {
  if (CHECKS[name](value)) return value;
  const { misfit } = await import('./validate.js');
  throw misfit(name, value);
}

/** Validators of each message, named after what they check; a misfit is FERRY_ERR_PROTOCOL_INVALID naming the field. */
export const messages = Object.fromEntries((Object.keys(MESSAGES) as MessageName[]).map((name) => [name, (v: unknown) => fit(name, v)])) as unknown as AsyncValidators;

/** Parses JSON text (already read under a size cap); malformed: FERRY_ERR_PROTOCOL_INVALID. */
export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** The error body the server sends for a FerryError (docs/protocol.md section 1). */
export function errorBody(err: FerryError): ErrorBody {
  return { error: { code: err.code, message: err.message.slice(0, 2048) } };
}

/**
 * Turns a peer's error answer back into a FerryError with the peer's code, so callers branch on
 * the same codes locally and remotely. A body that is not an error body, or names a code this side
 * does not know, becomes FERRY_ERR_PROTOCOL_INVALID carrying the HTTP status.
 */
export function errorFromBody(body: unknown, status: number): FerryError {
  const parsed = CHECKS.errorBody(body) ? (body as ErrorBody) : undefined;
  if (!parsed || !(parsed.error.code in ERROR_CODES)) {
    return new FerryError('FERRY_ERR_PROTOCOL_INVALID', `the server answered HTTP ${status} without a ferry error body`, { details: { status } });
  }
  return new FerryError(parsed.error.code as ErrorCode, parsed.error.message, { details: { status } });
}
