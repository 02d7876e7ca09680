import { FerryError } from '../errors.js';

/** A parsed image reference `name:tag`. */
export interface ImageRef {
  name: string;
  tag: string;
}

const NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Parses `name:tag` (docker reference grammar, tag required) or throws FERRY_ERR_REF_INVALID. */
export function parseRef(s: string): ImageRef {
  const colon = s.lastIndexOf(':');
  const slash = s.lastIndexOf('/');
  if (colon === -1 || colon < slash) throw new FerryError('FERRY_ERR_REF_INVALID', `image reference ${JSON.stringify(s)} needs a tag, as in name:tag`);
  const name = s.slice(0, colon);
  const tag = s.slice(colon + 1);
  if (!NAME_RE.test(name) || name.length > 255) throw new FerryError('FERRY_ERR_REF_INVALID', `image name ${JSON.stringify(name)} is not valid (lowercase letters, digits, separators . _ - and /)`);
  if (!TAG_RE.test(tag)) throw new FerryError('FERRY_ERR_REF_INVALID', `tag ${JSON.stringify(tag)} is not valid (letters, digits, _ . -, up to 128)`);
  return { name, tag };
}

/** Formats a reference. */
export function formatRef(r: ImageRef): string {
  return `${r.name}:${r.tag}`;
}

/** The file name a ref or channel is stored under (reversible, no slashes). */
export function refFileName(ref: string): string {
  return encodeURIComponent(ref);
}

/**
 * The ref a file name in `refs/` stands for, or undefined when the name is not one that
 * refFileName writes (malformed %-encoding, or not a valid name:tag): such a file is reported by
 * fsck, never taken for a ref.
 */
export function refFromFileName(file: string): string | undefined {
  let ref: string;
  try {
    ref = decodeURIComponent(file);
  } catch {
    return undefined;
  }
  if (refFileName(ref) !== file) return undefined;
  try {
    parseRef(ref);
  } catch {
    return undefined;
  }
  return ref;
}

/**
 * Channel names become file names on devices (`channels/<name>`): letters, digits, '.', '_' and
 * '-', up to 128, starting with a letter or digit, so neither `.` nor `..` is one.
 */
export const CHANNEL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** True when `s` is a valid channel name (CHANNEL_NAME_RE). */
export function isChannelName(s: string): boolean {
  return CHANNEL_NAME_RE.test(s);
}

/** The channel a file name in `channels/` stands for, or undefined when it is not a valid one. */
export function channelFromFileName(file: string): string | undefined {
  return isChannelName(file) ? file : undefined;
}
