/**
 * The operator API's answers (docs/protocol.md section 5) as TypeBox schemas: the server builds
 * them, `ferry status` and the dashboard read them (the CLI checks every answer against them).
 * Times are unix seconds; sizes bytes; rates bytes per second.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AGENTS_PAGE_MAX, AGENT_ID_RE, CHANNEL_RE, PROTOCOL_LIMITS as L } from './constants.js';
import { DigestSchema, LinkStatsSchema, PROGRESS_FIELDS, ReleaseInfoSchema, ReportSchema } from './schemas.js';

const Uint = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Channel = Type.String({ pattern: CHANNEL_RE.source, maxLength: 128 });
const AgentId = Type.String({ pattern: AGENT_ID_RE.source, maxLength: 63 });
const Nullable = <T extends import('@sinclair/typebox').TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** What an operator sees of one agent: its last report and check-in, and whether it is stale. */
export const AgentSummarySchema = Type.Object({
  id: AgentId,
  /** The last report's state; `unknown` when it checked in but never reported, `new` when never seen. */
  state: Type.String({ maxLength: 32 }),
  channel: Nullable(Channel),
  release: Nullable(Uint),
  bundle: Nullable(DigestSchema),
  ...PROGRESS_FIELDS,
  link: Nullable(LinkStatsSchema),
  /** Last accepted request (check-in or report). */
  lastSeen: Nullable(Uint),
  /** When the agent made its last report (its own clock, as it sent it). */
  reportedAt: Nullable(Type.String({ maxLength: 40 })),
  /** Seconds between check-ins it was last told (the server's default before its first). */
  interval: Uint,
  /** When it becomes stale: lastSeen + 3 intervals. */
  staleAt: Nullable(Uint),
  stale: Type.Boolean(),
  channels: Type.Array(Channel, { maxItems: L.channels }),
  installed: Type.Record(Type.String({ pattern: CHANNEL_RE.source }), Type.Object({ release: Uint, manifest: DigestSchema }), { maxProperties: L.channels }),
  version: Nullable(Type.String({ maxLength: 64 })),
});

/** `GET /v1/agents`: a page of agents by id; `next` is the `after` of the next page, null at the end. */
export const AgentsAnswerSchema = Type.Object({
  now: Uint,
  agents: Type.Array(AgentSummarySchema, { maxItems: AGENTS_PAGE_MAX }),
  next: Nullable(AgentId),
});

/** `GET /v1/agents/<id>`: one agent with its inventory and recent reports (newest first). */
export const AgentDetailAnswerSchema = Type.Object({
  now: Uint,
  agent: AgentSummarySchema,
  created: Uint,
  inventory: Nullable(Type.Object({ digest: DigestSchema, layers: Nullable(Uint) })),
  reports: Type.Array(ReportSchema, { maxItems: 100 }),
});

/** One channel: its target (latest release) and its agents. */
export const ChannelSummarySchema = Type.Object({
  name: Channel,
  release: Nullable(ReleaseInfoSchema),
  /** Agents whose last check-in named the channel. */
  agents: Uint,
  /** Of those, how many have its latest release installed. */
  current: Uint,
});

/** `GET /v1/channels`. */
export const ChannelsAnswerSchema = Type.Object({ now: Uint, channels: Type.Array(ChannelSummarySchema, { maxItems: 10_000 }) });

/** `GET /v1/releases`: newest first. */
export const ReleasesAnswerSchema = Type.Object({ releases: Type.Array(ReleaseInfoSchema, { maxItems: 100_000 }) });

/** What a bundle costs on the link and what docker pull would send instead. */
export const TransferFiguresSchema = Type.Object({
  /** Header and payload bytes. */
  transfer: Uint,
  /** Compressed layer bytes docker pull would send (as the pushed image's source declared them). */
  pull: Uint,
  /** pull - transfer (negative when the bundle is larger). */
  saved: Type.Integer(),
});

/** One bundle job or built bundle. */
export const BundleSummarySchema = Type.Object({
  key: Type.String({ maxLength: 64 }),
  id: Nullable(DigestSchema),
  channel: Channel,
  release: Uint,
  ref: Nullable(Type.String({ maxLength: 400 })),
  state: Type.String({ maxLength: 16 }),
  /** Baseline layers. */
  baseline: Uint,
  payloadSize: Nullable(Uint),
  headerSize: Nullable(Uint),
  chunks: Nullable(Uint),
  chunkSize: Nullable(Uint),
  created: Uint,
  built: Nullable(Uint),
  builds: Uint,
  error: Nullable(Type.String({ maxLength: L.text })),
  /** Agents whose last report names it. */
  agents: Uint,
  /** Against docker pull, for one device; null when not built or the pull size is unknown. */
  vsPull: Nullable(TransferFiguresSchema),
});

/** `GET /v1/bundles`: newest first, and the totals against docker pull. */
export const BundlesAnswerSchema = Type.Object({
  bundles: Type.Array(BundleSummarySchema, { maxItems: 100_000 }),
  totals: Type.Object({
    /** Every built bundle with a known pull size, once. */
    bundles: Type.Intersect([TransferFiguresSchema, Type.Object({ count: Uint })]),
    /** Every agent's current bundle (its last report): what the fleet's transfers cost and save. */
    fleet: Type.Intersect([TransferFiguresSchema, Type.Object({ agents: Uint })]),
  }),
});

export type AgentSummary = Static<typeof AgentSummarySchema>;
export type AgentsAnswer = Static<typeof AgentsAnswerSchema>;
export type AgentDetailAnswer = Static<typeof AgentDetailAnswerSchema>;
export type ChannelSummary = Static<typeof ChannelSummarySchema>;
export type ChannelsAnswer = Static<typeof ChannelsAnswerSchema>;
export type ReleasesAnswer = Static<typeof ReleasesAnswerSchema>;
export type TransferFigures = Static<typeof TransferFiguresSchema>;
export type BundleSummary = Static<typeof BundleSummarySchema>;
export type BundlesAnswer = Static<typeof BundlesAnswerSchema>;
