/**
 * Producers of binary file bodies: ELF-like executables and libraries, structured data files and
 * incompressible (already compressed) files. A producer returns a fresh block of bytes per call,
 * forever; the body reader slices the exact size out of them. Blocks depend only on the seed and
 * the position, so a body is regenerated identically whenever it is needed.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { Rng } from '../rng.js';
import { WORDS } from '../words.js';

/** Returns the next block of a body (never empty, never reused by the producer). */
export type Producer = () => Uint8Array;

const BLOCK = 16 * 1024;

/** What makes one architecture's machine code look like itself, flattened for speed. */
interface ArchProfile {
  machine: number;
  fixedWidth: boolean;
  /** Opcode i is opBytes[8i .. 8i + opLen[i]) (padded to 8 bytes for unrolled copies). */
  opBytes: Uint8Array;
  opLen: Uint8Array;
  /** Maps a uniform 10-bit value to an opcode index, biased to the front: a few instructions (mov, call, jcc) dominate real code. */
  pick: Uint16Array;
  prologue: Uint8Array;
  epilogue: Uint8Array;
}

const profiles = new Map<string, ArchProfile>();

/** ELF e_machine values for the architectures OCI platforms name. */
const MACHINES: Record<string, number> = { amd64: 0x3e, arm64: 0xb7, arm: 0x28, '386': 0x03, ppc64le: 0x15, s390x: 0x16, riscv64: 0xf3 };

const OPCODES = 240;

function archProfile(arch: string): ArchProfile {
  const cached = profiles.get(arch);
  if (cached) return cached;
  const rng = Rng.derive(0x0e1f, 'opcodes', arch);
  const fixedWidth = arch !== 'amd64' && arch !== '386';
  const prefixes = [0x48, 0x89, 0x8b, 0x0f, 0xe8, 0x83, 0x85, 0x74, 0x75, 0xc7, 0x41, 0x4c, 0x31, 0xff];
  const opBytes = new Uint8Array(OPCODES * 8);
  const opLen = new Uint8Array(OPCODES);
  for (let i = 0; i < OPCODES; i++) {
    const len = fixedWidth ? 4 : rng.pick([1, 2, 2, 3, 3, 3, 4, 4, 5, 6]);
    rng.fill(opBytes.subarray(i * 8, i * 8 + len));
    if (!fixedWidth) opBytes[i * 8] = rng.skewed(prefixes, 1.5);
    opLen[i] = len;
  }
  const pick = Uint16Array.from({ length: 1024 }, (_, i) => Math.floor(Math.pow(i / 1024, 2.2) * OPCODES));
  const profile: ArchProfile = {
    machine: MACHINES[arch] ?? (fixedWidth ? 0xb7 : 0x3e),
    fixedWidth,
    opBytes,
    opLen,
    pick,
    prologue: fixedWidth
      ? Uint8Array.of(0xfd, 0x7b, 0xbf, 0xa9, 0xfd, 0x03, 0x00, 0x91)
      : Uint8Array.of(0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x41, 0x57, 0x41, 0x56, 0x53),
    epilogue: fixedWidth ? Uint8Array.of(0xfd, 0x7b, 0xc1, 0xa8, 0xc0, 0x03, 0x5f, 0xd6) : Uint8Array.of(0x5b, 0x41, 0x5e, 0x41, 0x5f, 0x5d, 0xc3),
  };
  profiles.set(arch, profile);
  return profile;
}

function put(out: Uint8Array, o: number, bytes: Uint8Array, from = 0, n = bytes.length): number {
  const k = Math.min(n, out.length - o);
  for (let i = 0; i < k; i++) out[o + i] = bytes[from + i]!;
  return o + k;
}

/**
 * Machine code: skewed opcodes, rel32 displacements, function prologues and int3 padding. The
 * copies are unrolled and branch-free (8 bytes always written, the cursor advanced by the real
 * length) because unpredictable short loops dominated the cost.
 */
function codeBlock(rng: Rng, p: ArchProfile, len: number): Uint8Array {
  const out = new Uint8Array(len + 16);
  const { opBytes, opLen, pick, fixedWidth } = p;
  let o = 0;
  while (o < len) {
    const r = rng.next();
    if ((r & 63) === 0) {
      o = put(out, o, p.epilogue);
      if (!fixedWidth) while (o < len && (o & 15) !== 0) out[o++] = 0xcc;
      o = Math.min(len, put(out, o, p.prologue));
      continue;
    }
    const idx = pick[(r >>> 6) & 1023]!;
    const s = idx << 3;
    out[o] = opBytes[s]!;
    out[o + 1] = opBytes[s + 1]!;
    out[o + 2] = opBytes[s + 2]!;
    out[o + 3] = opBytes[s + 3]!;
    out[o + 4] = opBytes[s + 4]!;
    out[o + 5] = opBytes[s + 5]!;
    out[o + 6] = opBytes[s + 6]!;
    out[o + 7] = opBytes[s + 7]!;
    o += opLen[idx]!;
    if (fixedWidth) {
      // Register fields vary; the opcode bits stay, as in real AArch64 code.
      out[o - 4] = (out[o - 4]! & 0xe0) | ((r >>> 16) & 31);
    } else {
      // rel32 call/jump displacements (a quarter of instructions): small magnitudes, so the high
      // bytes are 0x00 or 0xff. Written always, kept only when the cursor moves past them.
      const fill = (r & 0x10000) !== 0 ? 0xff : 0;
      out[o] = r >>> 17;
      out[o + 1] = (r >>> 24) & 0x0f;
      out[o + 2] = fill;
      out[o + 3] = fill;
      o += r >>> 30 === 0 ? 4 : 0;
    }
  }
  return out.subarray(0, len);
}

// The word list as bytes, for writing strings without building JS strings.
const WORD_TABLE = (() => {
  const bytes = Buffer.from(WORDS.join(''), 'latin1');
  const start = new Int32Array(WORDS.length);
  const len = new Uint8Array(WORDS.length);
  let at = 0;
  WORDS.forEach((w, i) => {
    start[i] = at;
    len[i] = w.length;
    at += w.length;
  });
  const pick = Uint16Array.from({ length: 4096 }, (_, i) => Math.floor(Math.pow(i / 4096, 2.2) * WORDS.length));
  return { bytes, start, len, pick };
})();

/** Writes one Zipf-picked word at `o` (truncated at the end of `out`); returns the new offset. */
function putWord(out: Uint8Array, o: number, r: number): number {
  const i = WORD_TABLE.pick[r & 4095]!;
  return put(out, o, WORD_TABLE.bytes, WORD_TABLE.start[i]!, WORD_TABLE.len[i]!);
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');
const FMT = Buffer.from(': %s (%d)\n', 'latin1');
const USR = Buffer.from('/usr/share/', 'latin1');
const MANGLE = Buffer.from('_ZN', 'latin1');
const SPACE = Uint8Array.of(0x20);
const SLASH = Uint8Array.of(0x2f);
const UNDERSCORE = Uint8Array.of(0x5f);

/** Read-only strings: messages, format strings and paths, NUL-separated. */
function rodataBlock(rng: Rng, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let o = 0;
  while (o < len) {
    const r = rng.next();
    if ((r >>> 28) === 0) o = put(out, o, USR);
    o = putWord(out, o, r);
    const sep = (r >>> 12) & 15;
    if (sep < 9) o = put(out, o, SPACE);
    else if (sep < 13) o = o + 1; // NUL terminator
    else if (sep < 14) o = put(out, o, FMT) + 1;
    else o = put(out, o, SLASH);
  }
  return out;
}

/** Initialised data: mostly zeros, small integers and pointers into the image. */
function dataBlock(rng: Rng, len: number, pos: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let o = 0; o + 8 <= len; o += 8) {
    const r = rng.next();
    const k = r & 7;
    if (k < 4) continue;
    if (k < 6) {
      out[o] = r >>> 8;
      out[o + 1] = r >>> 28;
    } else if (k === 6) {
      const addr = 0x4000 + ((pos + o) & 0xffffff) + ((r >>> 8) & 0xff8);
      out[o] = addr;
      out[o + 1] = addr >>> 8;
      out[o + 2] = addr >>> 16;
      out[o + 3] = addr >>> 24;
    } else {
      rng.fill(out.subarray(o, o + 8));
    }
  }
  return out;
}

/** Symbol names (some mangled, with hash suffixes) as in .dynstr/.strtab. */
function symtabBlock(rng: Rng, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let o = 0;
  while (o < len) {
    const r = rng.next();
    const mangled = (r >>> 31) === 1;
    if (mangled) o = put(out, o, MANGLE);
    o = putWord(out, o, r);
    o = put(out, o, UNDERSCORE);
    o = putWord(out, o, r >>> 12);
    if (mangled) {
      const h = rng.next();
      for (let i = 0; i < 8 && o < len; i++) out[o++] = HEX[(h >>> (i * 4)) & 15]!;
    }
    o += 1; // NUL terminator
  }
  return out;
}

function elfHeader(rng: Rng, p: ArchProfile, size: number, len: number): Uint8Array {
  const out = dataBlock(rng, len, 0);
  const h = Buffer.alloc(64);
  h.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  h.writeUInt16LE(3, 16);
  h.writeUInt16LE(p.machine, 18);
  h.writeUInt32LE(1, 20);
  h.writeBigUInt64LE(BigInt(0x1000 + (rng.next() & 0xfff0)), 24);
  h.writeBigUInt64LE(64n, 32);
  h.writeBigUInt64LE(BigInt(Math.max(0, size - 2048)), 40);
  h.writeUInt16LE(64, 52);
  h.writeUInt16LE(56, 54);
  h.writeUInt16LE(4, 56);
  h.writeUInt16LE(64, 58);
  h.writeUInt16LE(30, 60);
  h.writeUInt16LE(29, 62);
  out.set(h.subarray(0, Math.min(64, len)));
  return out;
}

/**
 * An ELF-like executable: a real ELF header for the architecture, then text (about 58%), rodata,
 * data and symbol strings. It compresses like real code (gzip about 2-2.5x) and a local edit
 * leaves the rest of the file byte-identical.
 */
export function elfProducer(seed: number, size: number, arch: string): Producer {
  const rng = new Rng(seed);
  const p = archProfile(arch);
  const bounds = [Math.min(size, 64 + 56 * 4), Math.floor(size * 0.58), Math.floor(size * 0.78), Math.floor(size * 0.93)];
  let pos = 0;
  return () => {
    const section = bounds.findIndex((b) => pos < b);
    const end = section !== -1 ? (bounds[section] ?? size) : pos < size ? size : pos + BLOCK;
    const len = Math.max(1, Math.min(BLOCK, end - pos));
    let out: Uint8Array;
    if (section === 0) out = elfHeader(rng, p, size, len);
    else if (section === 1) out = codeBlock(rng, p, len);
    else if (section === 2) out = rodataBlock(rng, len);
    else if (section === 3) out = dataBlock(rng, len, pos);
    else out = symtabBlock(rng, len);
    pos += len;
    return out;
  };
}

/** Bytes to splice into an ELF body by an edit: new machine code for the architecture. */
export function codeProducer(seed: number, arch: string): Producer {
  const rng = new Rng(seed);
  const p = archProfile(arch);
  return () => codeBlock(rng, p, 4096);
}

/**
 * Structured binary data (message catalogs, databases, locale archives): fixed-size records with
 * counters, small fields and short strings; compresses about 3x.
 */
export function dataProducer(seed: number): Producer {
  const rng = new Rng(seed);
  let counter = rng.next() & 0xffff;
  return () => {
    const out = new Uint8Array(48 * 128);
    for (let o = 0; o < out.length; o += 48) {
      const r = rng.next();
      const c = counter++;
      out[o] = c;
      out[o + 1] = c >>> 8;
      out[o + 2] = c >>> 16;
      out[o + 4] = r & 0x3f;
      out[o + 6] = (r >>> 8) & 0x3;
      putWord(out.subarray(o + 8, o + 32), 0, r >>> 10);
      out[o + 32] = r >>> 22;
      out[o + 33] = (r >>> 30) & 3;
      if ((r & 0x80) !== 0) rng.fill(out.subarray(o + 36, o + 44));
      const off = c * 48;
      out[o + 44] = off;
      out[o + 45] = off >>> 8;
      out[o + 46] = off >>> 16;
    }
    return out;
  };
}

const ZEROS = new Uint8Array(BLOCK);

/**
 * Incompressible bytes: already-compressed files (.gz, .png, .woff2). An AES-128-CTR keystream
 * keyed by the seed: deterministic, and produced natively at memory speed.
 */
export function randomProducer(seed: number): Producer {
  const key = createHash('sha256').update(`imagegen-random:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return () => cipher.update(ZEROS);
}
