/**
 * The protocol's JSON shapes (docs/protocol.md sections 3-6) as TypeBox schemas: one definition
 * gives the TypeScript types and the validators (validate.ts) that the server applies to every
 * request and the agent to every answer. Every string, list and number is capped; extra fields are
 * tolerated (a newer peer may add some) and never read.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { Digest } from '../util/digest.js';
import { AGENT_ID_RE, AGENT_STATES, ASSIGNMENT_STATES, CHANNEL_RE, PROTOCOL_LIMITS as L, TOKEN_NAME_RE } from './constants.js';

const source = (re: RegExp): string => re.source;

/** `sha256:<64 hex>`. */
export const DigestSchema = Type.Unsafe<Digest>(Type.String({ pattern: '^sha256:[0-9a-f]{64}$', maxLength: 71 }));
const Uint = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Counter = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
const Channel = Type.String({ pattern: source(CHANNEL_RE), maxLength: 128 });
const Text = Type.String({ maxLength: L.text });
const Ref = Type.String({ minLength: 3, maxLength: 400 });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** An error as the protocol carries it. */
export const ErrorInfoSchema = Type.Object({ code: Type.String({ maxLength: 64 }), message: Text });
/** `{"error": {...}}`: every non-2xx JSON answer. */
export const ErrorBodySchema = Type.Object({ error: ErrorInfoSchema });

/** Link statistics an agent reports. */
export const LinkStatsSchema = Type.Object({
  bytesReceived: Uint,
  requests: Uint,
  failures: Uint,
  stalls: Uint,
  resets: Uint,
  /** Seconds, when measured. */
  rtt: Nullable(Type.Number({ minimum: 0, maximum: 86_400 })),
});

/** A transfer's progress, as a report carries it and an operator view shows it. */
export const PROGRESS_FIELDS = {
  bytesDone: Uint,
  bytesTotal: Uint,
  chunksDone: Uint,
  chunksTotal: Uint,
  rate: Type.Number({ minimum: 0, maximum: 1e12 }),
  eta: Nullable(Type.Number({ minimum: 0, maximum: 1e9 })),
  error: Nullable(ErrorInfoSchema),
};

/** One progress report (docs/protocol.md section 3.2). */
export const ReportSchema = Type.Object({
  counter: Counter,
  at: Type.String({ maxLength: 40 }),
  state: Type.Union(AGENT_STATES.map((s) => Type.Literal(s))),
  channel: Type.Optional(Nullable(Channel)),
  release: Type.Optional(Nullable(Uint)),
  bundle: Type.Optional(Nullable(DigestSchema)),
  ...PROGRESS_FIELDS,
  link: Type.Optional(LinkStatsSchema),
});

/** `POST /v1/agents/<id>/checkin` body. */
export const CheckinRequestSchema = Type.Object({
  counter: Counter,
  channels: Type.Array(Channel, { minItems: 1, maxItems: L.channels }),
  installed: Type.Optional(Type.Record(Type.String({ pattern: source(CHANNEL_RE) }), Type.Object({ release: Uint, manifest: DigestSchema }), { maxProperties: L.channels })),
  inventory: Type.Object({ digest: DigestSchema, layers: Type.Optional(Type.Array(DigestSchema, { maxItems: L.inventoryLayers })) }),
  reports: Type.Optional(Type.Array(ReportSchema, { maxItems: L.reports })),
  agent: Type.Optional(Type.Object({ version: Type.Optional(Type.String({ maxLength: 64 })) })),
});

/** A bundle as an assignment names it. */
export const AssignedBundleSchema = Type.Object({
  id: DigestSchema,
  payloadSize: Uint,
  chunkSize: Type.Integer({ minimum: 1, maximum: 64 * 1024 * 1024 }),
  chunks: Uint,
  /** Number of baseline layers the bundle needs. */
  baseline: Uint,
});

/** What the server wants an agent to run on one channel. */
export const AssignmentSchema = Type.Object({
  channel: Channel,
  state: Type.Union(ASSIGNMENT_STATES.map((s) => Type.Literal(s))),
  release: Type.Optional(Uint),
  ref: Type.Optional(Ref),
  urgent: Type.Optional(Type.Boolean()),
  bundle: Type.Optional(AssignedBundleSchema),
  repository: Type.Optional(Type.String({ maxLength: 2048 })),
  error: Type.Optional(ErrorInfoSchema),
});

/** The check-in answer. */
export const CheckinAnswerSchema = Type.Object({
  now: Uint,
  retryAfter: Type.Integer({ minimum: 0, maximum: 86_400 }),
  needInventory: Type.Boolean(),
  assignments: Type.Array(AssignmentSchema, { maxItems: L.channels }),
});

/** `POST /v1/agents/<id>/reports` body. */
export const ReportsRequestSchema = Type.Object({ counter: Counter, reports: Type.Array(ReportSchema, { minItems: 1, maxItems: L.reports }) });
/** Its answer. */
export const ReportsAnswerSchema = Type.Object({ accepted: Uint, dropped: Uint });

/** `POST /v1/push/missing` body and answer: the layers (diff_ids) and contents the server lacks. */
export const PushMissingSchema = Type.Object({
  layers: Type.Array(DigestSchema, { maxItems: L.pushList }),
  contents: Type.Array(DigestSchema, { maxItems: L.pushList }),
});

/** A layer as the pushed image's source manifest declared it (compressed blob). */
export const SourceLayerSchema = Type.Object({ diffId: DigestSchema, mediaType: Type.String({ maxLength: 200 }), size: Uint });

/**
 * `PUT /v1/refs/<name:tag>` body. `source.layers`: the compressed sizes the image's source declared
 * (what docker pull of it sends; the operator's views compare bundles with them).
 */
export const RefRequestSchema = Type.Object({
  manifest: DigestSchema,
  source: Type.Optional(Type.Object({ layers: Type.Array(SourceLayerSchema, { maxItems: L.imageLayers }) })),
});

/** `POST /v1/releases` body. */
export const ReleaseRequestSchema = Type.Object({
  envelope: Type.String({ maxLength: L.releaseEnvelope, pattern: '^[A-Za-z0-9+/=_-]*$' }),
  urgent: Type.Optional(Type.Boolean()),
});

/** A release as the server keeps and shows it. */
export const ReleaseInfoSchema = Type.Object({
  channel: Channel,
  release: Uint,
  ref: Ref,
  manifest: DigestSchema,
  config: DigestSchema,
  expires: Uint,
  created: Uint,
  urgent: Type.Boolean(),
});

/** `POST /v1/agents` body (admin) and its answer. */
export const CreateAgentRequestSchema = Type.Object({ id: Type.String({ pattern: source(AGENT_ID_RE), maxLength: 63 }) });
export const CreateAgentAnswerSchema = Type.Object({ id: Type.String({ maxLength: 63 }), token: Type.String({ maxLength: 128 }) });

/** `POST /v1/tokens` body (admin) and its answer. */
export const CreateTokenRequestSchema = Type.Object({
  role: Type.Union([Type.Literal('publisher'), Type.Literal('operator')]),
  name: Type.String({ pattern: source(TOKEN_NAME_RE), maxLength: 63 }),
});
export const CreateTokenAnswerSchema = Type.Object({ name: Type.String({ maxLength: 63 }), role: Type.String({ maxLength: 16 }), token: Type.String({ maxLength: 128 }) });

export type ErrorInfo = Static<typeof ErrorInfoSchema>;
export type ErrorBody = Static<typeof ErrorBodySchema>;
export type LinkStats = Static<typeof LinkStatsSchema>;
export type Report = Static<typeof ReportSchema>;
export type CheckinRequest = Static<typeof CheckinRequestSchema>;
export type AssignedBundle = Static<typeof AssignedBundleSchema>;
export type Assignment = Static<typeof AssignmentSchema>;
export type CheckinAnswer = Static<typeof CheckinAnswerSchema>;
export type ReportsRequest = Static<typeof ReportsRequestSchema>;
export type ReportsAnswer = Static<typeof ReportsAnswerSchema>;
export type PushMissing = Static<typeof PushMissingSchema>;
export type RefRequest = Static<typeof RefRequestSchema>;
export type SourceLayerInfo = Static<typeof SourceLayerSchema>;
export type ReleaseRequest = Static<typeof ReleaseRequestSchema>;
export type ReleaseInfo = Static<typeof ReleaseInfoSchema>;
export type CreateAgentRequest = Static<typeof CreateAgentRequestSchema>;
export type CreateAgentAnswer = Static<typeof CreateAgentAnswerSchema>;
export type CreateTokenRequest = Static<typeof CreateTokenRequestSchema>;
export type CreateTokenAnswer = Static<typeof CreateTokenAnswerSchema>;
