/**
 * The protocol's messages by name: what each is called in an error, and its TypeScript type. The
 * TypeBox schemas (table.ts) and the compiled checks generated from them (checks.ts) are keyed by
 * these names.
 */
import type * as O from './operator.js';
import type * as S from './schemas.js';

/** Each message's name in errors ("check-in answer does not have the protocol's shape"). */
export const MESSAGES = {
  errorBody: 'error answer',
  report: 'report',
  checkinRequest: 'check-in request',
  checkinAnswer: 'check-in answer',
  reportsRequest: 'reports request',
  reportsAnswer: 'reports answer',
  pushMissing: 'push query',
  refRequest: 'ref request',
  releaseRequest: 'release request',
  releaseInfo: 'release answer',
  createAgentRequest: 'agent request',
  createAgentAnswer: 'agent answer',
  createTokenRequest: 'token request',
  createTokenAnswer: 'token answer',
  agentsAnswer: 'agents answer',
  agentDetailAnswer: 'agent answer',
  channelsAnswer: 'channels answer',
  releasesAnswer: 'releases answer',
  bundlesAnswer: 'bundles answer',
} as const;

/** A message's name. */
export type MessageName = keyof typeof MESSAGES;

/** Each message's type. */
export interface MessageTypes {
  errorBody: S.ErrorBody;
  report: S.Report;
  checkinRequest: S.CheckinRequest;
  checkinAnswer: S.CheckinAnswer;
  reportsRequest: S.ReportsRequest;
  reportsAnswer: S.ReportsAnswer;
  pushMissing: S.PushMissing;
  refRequest: S.RefRequest;
  releaseRequest: S.ReleaseRequest;
  releaseInfo: S.ReleaseInfo;
  createAgentRequest: S.CreateAgentRequest;
  createAgentAnswer: S.CreateAgentAnswer;
  createTokenRequest: S.CreateTokenRequest;
  createTokenAnswer: S.CreateTokenAnswer;
  agentsAnswer: O.AgentsAnswer;
  agentDetailAnswer: O.AgentDetailAnswer;
  channelsAnswer: O.ChannelsAnswer;
  releasesAnswer: O.ReleasesAnswer;
  bundlesAnswer: O.BundlesAnswer;
}

/** A validator per message: returns the value typed, or throws FERRY_ERR_PROTOCOL_INVALID. */
export type Validators = { readonly [K in MessageName]: (value: unknown) => MessageTypes[K] };
/** The same, for callers that may wait (the error's detail is loaded only when a value does not fit). */
export type AsyncValidators = { readonly [K in MessageName]: (value: unknown) => Promise<MessageTypes[K]> };
