/**
 * Validators for the protocol's JSON shapes. The server checks every request with them, the agent
 * and the publishing commands every answer (DESIGN.md section 8: everything a peer sends is
 * untrusted). A value that does not fit is FERRY_ERR_PROTOCOL_INVALID naming the first bad field.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ERROR_CODES, FerryError, type ErrorCode } from '../errors.js';
import * as S from './schemas.js';
import * as O from './operator.js';

const compiled = new Map<TSchema, TypeCheck<TSchema>>();

function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

/** Checks `value` against `schema`; returns it typed or throws FERRY_ERR_PROTOCOL_INVALID. */
export function checkShape<T extends TSchema>(schema: T, value: unknown, what: string): Static<T> {
  const c = checker(schema);
  if (c.Check(value)) return value;
  const first = c.Errors(value).First();
  const where = first?.path ? ` at ${first.path}` : '';
  throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${what} does not have the protocol's shape${where}: ${first?.message ?? 'invalid'}`);
}

/** Parses JSON text (already read under a size cap); malformed: FERRY_ERR_PROTOCOL_INVALID. */
export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Validators of each message, named after what they check. */
export const protocol = {
  checkinRequest: (v: unknown): S.CheckinRequest => checkShape(S.CheckinRequestSchema, v, 'check-in request'),
  checkinAnswer: (v: unknown): S.CheckinAnswer => checkShape(S.CheckinAnswerSchema, v, 'check-in answer'),
  reportsRequest: (v: unknown): S.ReportsRequest => checkShape(S.ReportsRequestSchema, v, 'reports request'),
  reportsAnswer: (v: unknown): S.ReportsAnswer => checkShape(S.ReportsAnswerSchema, v, 'reports answer'),
  pushMissing: (v: unknown): S.PushMissing => checkShape(S.PushMissingSchema, v, 'push query'),
  refRequest: (v: unknown): S.RefRequest => checkShape(S.RefRequestSchema, v, 'ref request'),
  releaseRequest: (v: unknown): S.ReleaseRequest => checkShape(S.ReleaseRequestSchema, v, 'release request'),
  releaseInfo: (v: unknown): S.ReleaseInfo => checkShape(S.ReleaseInfoSchema, v, 'release answer'),
  createAgentRequest: (v: unknown): S.CreateAgentRequest => checkShape(S.CreateAgentRequestSchema, v, 'agent request'),
  createAgentAnswer: (v: unknown): S.CreateAgentAnswer => checkShape(S.CreateAgentAnswerSchema, v, 'agent answer'),
  createTokenRequest: (v: unknown): S.CreateTokenRequest => checkShape(S.CreateTokenRequestSchema, v, 'token request'),
  createTokenAnswer: (v: unknown): S.CreateTokenAnswer => checkShape(S.CreateTokenAnswerSchema, v, 'token answer'),
  agentsAnswer: (v: unknown): O.AgentsAnswer => checkShape(O.AgentsAnswerSchema, v, 'agents answer'),
  agentDetailAnswer: (v: unknown): O.AgentDetailAnswer => checkShape(O.AgentDetailAnswerSchema, v, 'agent answer'),
  channelsAnswer: (v: unknown): O.ChannelsAnswer => checkShape(O.ChannelsAnswerSchema, v, 'channels answer'),
  releasesAnswer: (v: unknown): O.ReleasesAnswer => checkShape(O.ReleasesAnswerSchema, v, 'releases answer'),
  bundlesAnswer: (v: unknown): O.BundlesAnswer => checkShape(O.BundlesAnswerSchema, v, 'bundles answer'),
};

/** The error body the server sends for a FerryError (docs/protocol.md section 1). */
export function errorBody(err: FerryError): S.ErrorBody {
  return { error: { code: err.code, message: err.message.slice(0, 2048) } };
}

/**
 * Turns a peer's error answer back into a FerryError with the peer's code, so callers branch on
 * the same codes locally and remotely. A body that is not an error body, or names a code this side
 * does not know, becomes FERRY_ERR_PROTOCOL_INVALID carrying the HTTP status.
 */
export function errorFromBody(body: unknown, status: number): FerryError {
  const parsed = checker(S.ErrorBodySchema).Check(body) ? (body as S.ErrorBody) : undefined;
  if (!parsed || !(parsed.error.code in ERROR_CODES)) {
    return new FerryError('FERRY_ERR_PROTOCOL_INVALID', `the server answered HTTP ${status} without a ferry error body`, { details: { status } });
  }
  return new FerryError(parsed.error.code as ErrorCode, parsed.error.message, { details: { status } });
}
