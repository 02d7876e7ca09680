/**
 * Constants and small helpers of the network protocol (docs/protocol.md) that the server, the
 * agent, the relay and the publishing commands share: size caps, name grammars, token roles, the
 * inventory digest and the repository paths.
 */
import { FerryError } from '../errors.js';
import { sha256, type Digest } from '../util/digest.js';

/** Agent states a report may name (DESIGN.md section 6). */
export const AGENT_STATES = ['idle', 'checking-in', 'fetching', 'applying', 'committed', 'failed'] as const;
export type AgentState = (typeof AGENT_STATES)[number];

/** Assignment states (docs/protocol.md section 3.1). */
export const ASSIGNMENT_STATES = ['current', 'ready', 'building', 'none'] as const;
export type AssignmentState = (typeof ASSIGNMENT_STATES)[number];

/** Agents in one page of `GET /v1/agents` at most (the default page size too). */
export const AGENTS_PAGE_MAX = 1000;

/** Caps every side applies before or while it reads (docs/protocol.md sections 1, 3, 4). */
export const PROTOCOL_LIMITS = {
  /** Largest JSON request body (check-in, reports, releases, admin). */
  jsonBody: 1024 * 1024,
  /** Largest `POST /v1/push/missing` body (two lists of up to 65,536 digests). */
  pushMissingBody: 10 * 1024 * 1024,
  /** Largest JSON answer an agent or a publishing command reads. */
  jsonAnswer: 16 * 1024 * 1024,
  /** Channels one agent may follow. */
  channels: 64,
  /** Layers in one inventory. */
  inventoryLayers: 16_384,
  /** Buffered reports in one request. */
  reports: 256,
  /** Layers of one image (a ref request's declared source layers). */
  imageLayers: 4096,
  /** Digests in each list of a push query. */
  pushList: 65_536,
  /** A release envelope (base64 text). */
  releaseEnvelope: 64 * 1024,
  /** Error and free-text strings. */
  text: 2048,
  /** Largest skeleton upload. */
  skeletonBody: 256 * 1024 * 1024,
  /** Largest manifest or config upload. */
  blobBody: 4 * 1024 * 1024,
  /** Largest uncompressed content a push may send (the store keeps bigger bodies, but not over HTTP). */
  contentSize: 8 * 1024 * 1024 * 1024,
} as const;

/** Agent ids (docs/protocol.md section 6). */
export const AGENT_ID_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Channel names: they become file names on devices (urlencoded), so keep them plain. */
export const CHANNEL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Token names (publisher and operator tokens). */
export const TOKEN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** A digest as it appears in a URL: 64 lowercase hex digits, no prefix. */
export const HEX_DIGEST_RE = /^[0-9a-f]{64}$/;

/** Token roles and their readable prefixes (docs/protocol.md section 1). */
export const TOKEN_PREFIX = { agent: 'fya_', publisher: 'fyp_', operator: 'fyo_', admin: 'fyx_' } as const;
/** A token's role. */
export type TokenRole = keyof typeof TOKEN_PREFIX;

/** The role a token's prefix names, or undefined. */
export function tokenRole(token: string): TokenRole | undefined {
  for (const [role, prefix] of Object.entries(TOKEN_PREFIX) as [TokenRole, string][]) if (token.startsWith(prefix)) return role;
  return undefined;
}

/** The digest in a URL path segment, or FERRY_ERR_DIGEST_INVALID (checked before any file is named). */
export function digestFromHex(hex: string): Digest {
  if (!HEX_DIGEST_RE.test(hex)) throw new FerryError('FERRY_ERR_DIGEST_INVALID', `${JSON.stringify(hex.slice(0, 80))} is not 64 lowercase hex digits`);
  return `sha256:${hex}`;
}

/**
 * The inventory digest (docs/protocol.md section 3.1): sha256 of the sorted, deduplicated diff_ids
 * joined by `\n`. An agent that sent an inventory once may then send only this digest.
 */
export function inventoryDigest(layers: readonly Digest[]): Digest {
  return sha256([...new Set(layers)].sort().join('\n'));
}

/** Where a bundle header lives under a repository base URL or directory. */
export function headerPath(id: Digest): string {
  return `headers/${id.slice(7)}`;
}

/** Where a chunk lives under a repository base URL or directory. */
export function chunkPath(digest: Digest): string {
  return `chunks/${digest.slice(7)}`;
}
