/** Figures of a computed bundle, for reports (`ferry bundle --json`, the bench). */

/** Body kinds of docs/format.md section 5. */
export type BodyKind = 'same' | 'copy' | 'back' | 'digest' | 'literal' | 'patch' | 'bsdiff' | 'group' | 'member' | 'segmented';

/** Bytes and counts by op kind. */
export interface EmitStats {
  entries: number;
  runEntries: number;
  headerBytes: { base: number; patched: number; literal: number };
  /** Files and their body bytes by how they travel (`group`: heads, `member`: the other members). */
  bodies: Record<BodyKind, { files: number; bytes: number }>;
  /** Raw data carried: literal bodies, patch-from frames, bsdiff deltas and group frames (before payload compression). */
  literalBytes: number;
  patchBytes: number;
  bsdiffBytes: number;
  groupBytes: number;
  /** Segmented patches' frames. */
  segmentedBytes: number;
  /** One line per group: unit, first member, members, reference set files and bytes, member bytes, frame bytes, sketch coverage. */
  groups: { unit: string; head: string; files: number; setFiles: number; setBytes: number; bytes: number; frame: number; covered: number }[];
  /** The largest carried files: path, kind and carried bytes (a group's frame is shared out by member size). */
  top: { path: string; kind: 'literal' | 'patch' | 'bsdiff' | 'group' | 'segmented'; size: number; carried: number }[];
}

/** Fresh zero stats. */
export function newStats(): EmitStats {
  const z = () => ({ files: 0, bytes: 0 });
  return {
    entries: 0,
    runEntries: 0,
    headerBytes: { base: 0, patched: 0, literal: 0 },
    bodies: { same: z(), copy: z(), back: z(), digest: z(), literal: z(), patch: z(), bsdiff: z(), group: z(), member: z(), segmented: z() },
    literalBytes: 0,
    patchBytes: 0,
    bsdiffBytes: 0,
    groupBytes: 0,
    segmentedBytes: 0,
    groups: [],
    top: [],
  };
}
