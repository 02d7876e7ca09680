/** The TypeBox schema of each protocol message (messages.ts names them). */
import type { TSchema } from '@sinclair/typebox';
import type { MessageName } from './messages.js';
import * as O from './operator.js';
import * as S from './schemas.js';

/** Schema by message name: the source of the server's validators and of the generated checks. */
export const SCHEMAS: { readonly [K in MessageName]: TSchema } = {
  errorBody: S.ErrorBodySchema,
  report: S.ReportSchema,
  checkinRequest: S.CheckinRequestSchema,
  checkinAnswer: S.CheckinAnswerSchema,
  reportsRequest: S.ReportsRequestSchema,
  reportsAnswer: S.ReportsAnswerSchema,
  pushMissing: S.PushMissingSchema,
  refRequest: S.RefRequestSchema,
  releaseRequest: S.ReleaseRequestSchema,
  releaseInfo: S.ReleaseInfoSchema,
  createAgentRequest: S.CreateAgentRequestSchema,
  createAgentAnswer: S.CreateAgentAnswerSchema,
  createTokenRequest: S.CreateTokenRequestSchema,
  createTokenAnswer: S.CreateTokenAnswerSchema,
  agentsAnswer: O.AgentsAnswerSchema,
  agentDetailAnswer: O.AgentDetailAnswerSchema,
  channelsAnswer: O.ChannelsAnswerSchema,
  releasesAnswer: O.ReleasesAnswerSchema,
  bundlesAnswer: O.BundlesAnswerSchema,
};
