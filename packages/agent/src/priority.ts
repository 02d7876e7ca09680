/**
 * Which assignment an agent works on (issue 9 item 3): a ready release marked urgent first, then
 * the channels in the order the agent follows them. A transfer in flight is preempted only by an
 * urgent release of another bundle; the preempted transfer keeps its verified chunks and rebuilt
 * layers and resumes when the urgent one is done (the next check-in offers it again).
 */
import type { Assignment, Digest } from '@ferry/core';

/** A ready assignment (it names a bundle and a repository). */
export type ReadyAssignment = Assignment & { state: 'ready'; bundle: NonNullable<Assignment['bundle']>; repository: string };

/** True when the assignment can be fetched now. */
export function isReady(a: Assignment): a is ReadyAssignment {
  return a.state === 'ready' && a.bundle !== undefined && a.repository !== undefined;
}

/**
 * The assignment to work on: urgent ones first, then by the agent's channel order; bundles that
 * are left alone for now (`skip`: recently found bad) are passed over.
 */
export function pickAssignment(assignments: readonly Assignment[], channels: readonly string[], skip: (bundle: Digest) => boolean = () => false): ReadyAssignment | undefined {
  const rank = (a: Assignment): number => (a.urgent ? 0 : 1) * 1000 + Math.max(0, channels.indexOf(a.channel));
  return assignments
    .filter(isReady)
    .filter((a) => !skip(a.bundle.id))
    .sort((a, b) => rank(a) - rank(b))[0];
}

/**
 * The urgent assignment that preempts the transfer of `current`, if any: urgent, ready, another
 * bundle, and not itself left alone. An urgent transfer is never preempted by another.
 */
export function preemptor(assignments: readonly Assignment[], current: ReadyAssignment, channels: readonly string[], skip: (bundle: Digest) => boolean = () => false): ReadyAssignment | undefined {
  if (current.urgent) return undefined;
  const next = pickAssignment(assignments, channels, skip);
  return next && next.urgent && next.bundle.id !== current.bundle.id ? next : undefined;
}
