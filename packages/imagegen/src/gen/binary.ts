/**
 * Producers of binary file bodies: ELF-like executables and libraries, structured data files and
 * incompressible (already compressed) files. A producer returns a fresh block of bytes per call,
 * forever; the body reader slices the exact size out of them. Blocks depend only on the seed and
 * the position, so a body is regenerated identically whenever it is needed.
 */
import { Rng } from '../rng.js';
import { identifier, word } from '../words.js';

/** Returns the next block of a body (never empty, never reused by the producer). */
export type Producer = () => Uint8Array;

const BLOCK = 16 * 1024;

/** What makes one architecture's machine code look like itself. */
interface ArchProfile {
  machine: number;
  fixedWidth: boolean;
  opcodes: Uint8Array[];
  prologue: Uint8Array;
  epilogue: Uint8Array;
}

const profiles = new Map<string, ArchProfile>();

/** ELF e_machine values for the architectures OCI platforms name. */
const MACHINES: Record<string, number> = { amd64: 0x3e, arm64: 0xb7, arm: 0x28, '386': 0x03, ppc64le: 0x15, s390x: 0x16, riscv64: 0xf3 };

// A skew table turns a uniform 10-bit value into an opcode index biased to the front, the way a few
// instructions (mov, call, jcc) dominate real code.
const SKEW = Array.from({ length: 1024 }, (_, i) => Math.pow(i / 1024, 2.2));

function archProfile(arch: string): ArchProfile {
  const cached = profiles.get(arch);
  if (cached) return cached;
  const rng = Rng.derive(0x0e1f, 'opcodes', arch);
  const fixedWidth = arch !== 'amd64' && arch !== '386';
  const prefixes = [0x48, 0x89, 0x8b, 0x0f, 0xe8, 0x83, 0x85, 0x74, 0x75, 0xc7, 0x41, 0x4c, 0x31, 0xff];
  const opcodes: Uint8Array[] = [];
  for (let i = 0; i < 240; i++) {
    const len = fixedWidth ? 4 : rng.pick([1, 2, 2, 3, 3, 3, 4, 4, 5, 6]);
    const op = new Uint8Array(len);
    rng.fill(op);
    if (!fixedWidth) op[0] = rng.skewed(prefixes, 1.5);
    opcodes.push(op);
  }
  const profile: ArchProfile = fixedWidth
    ? {
        machine: MACHINES[arch] ?? 0xb7,
        fixedWidth,
        opcodes,
        prologue: Uint8Array.of(0xfd, 0x7b, 0xbf, 0xa9, 0xfd, 0x03, 0x00, 0x91),
        epilogue: Uint8Array.of(0xfd, 0x7b, 0xc1, 0xa8, 0xc0, 0x03, 0x5f, 0xd6),
      }
    : {
        machine: MACHINES[arch] ?? 0x3e,
        fixedWidth,
        opcodes,
        prologue: Uint8Array.of(0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x41, 0x57, 0x41, 0x56, 0x53),
        epilogue: Uint8Array.of(0x5b, 0x41, 0x5e, 0x41, 0x5f, 0x5d, 0xc3),
      };
  profiles.set(arch, profile);
  return profile;
}

function put(out: Uint8Array, o: number, bytes: Uint8Array): number {
  const n = Math.min(bytes.length, out.length - o);
  for (let i = 0; i < n; i++) out[o + i] = bytes[i] ?? 0;
  return o + n;
}

/** Machine code: skewed opcodes, rel32 immediates, function prologues and int3 padding. */
function codeBlock(rng: Rng, p: ArchProfile, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const ops = p.opcodes;
  let o = 0;
  while (o < len) {
    const r = rng.next();
    if ((r & 63) === 0) {
      o = put(out, o, p.epilogue);
      if (!p.fixedWidth) while (o < len && (o & 15) !== 0) out[o++] = 0xcc;
      o = put(out, o, p.prologue);
      continue;
    }
    const op = ops[Math.floor((SKEW[(r >>> 6) & 1023] ?? 0) * ops.length)] ?? ops[0]!;
    o = put(out, o, op);
    if (p.fixedWidth) {
      // Register fields vary; the opcode bits stay, as in real AArch64 code.
      if (r >>> 30 === 0 && o >= 4) out[o - 4] = ((out[o - 4] ?? 0) & 0xe0) | ((r >>> 16) & 31);
    } else if (r >>> 29 < 2 && o + 4 <= len) {
      // rel32 call/jump displacements: small magnitudes, so the high bytes are 0x00 or 0xff.
      const v = rng.next();
      const neg = (v & 1) === 1;
      out[o] = v >>> 8;
      out[o + 1] = (v >>> 16) & 0x0f;
      out[o + 2] = neg ? 0xff : 0;
      out[o + 3] = neg ? 0xff : 0;
      o += 4;
    }
  }
  return out;
}

function latin1(text: string, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(Buffer.from(text.length > len ? text.slice(0, len) : text, 'latin1'));
  return out;
}

/** Read-only strings: messages, format strings and paths, NUL-separated. */
function rodataBlock(rng: Rng, len: number): Uint8Array {
  const parts: string[] = [];
  let n = 0;
  while (n < len) {
    const k = rng.next() & 3;
    let s: string;
    if (k === 0) s = `${word(rng)} ${word(rng)}: %s (%d)\n`;
    else if (k === 1) s = `/usr/share/${word(rng)}/${identifier(rng)}.conf`;
    else s = `${word(rng)} ${word(rng)} ${word(rng)} ${word(rng)}`;
    parts.push(s);
    n += s.length + 1;
  }
  return latin1(parts.join('\0'), len);
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

/** Symbol names (mangled, with hash suffixes) as in .dynstr/.strtab. */
function symtabBlock(rng: Rng, len: number): Uint8Array {
  const parts: string[] = [];
  let n = 0;
  while (n < len) {
    const a = identifier(rng);
    const b = identifier(rng);
    const s = rng.chance(0.5) ? `_ZN${a.length}${a}${b.length}${b}17h${rng.hex(16)}E` : `${a}_${b}`;
    parts.push(s);
    n += s.length + 1;
  }
  return latin1(parts.join('\0'), len);
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
 * counters, small fields and short strings; compresses about 3-4x.
 */
export function dataProducer(seed: number): Producer {
  const rng = new Rng(seed);
  let counter = rng.next() & 0xffff;
  return () => {
    const out = Buffer.alloc(48 * 128);
    for (let o = 0; o < out.length; o += 48) {
      const r = rng.next();
      out.writeUInt32LE(counter++, o);
      out.writeUInt16LE(r & 0x3f, o + 4);
      out.writeUInt16LE((r >>> 8) & 0x3, o + 6);
      out.write(word(rng), o + 8, 24, 'latin1');
      out.writeUInt32LE((r >>> 12) & 0x3ff, o + 32);
      if ((r & 0x80000000) !== 0) rng.fill(out.subarray(o + 36, o + 44));
      out.writeUInt32LE(counter * 48, o + 44);
    }
    return out;
  };
}

/** Incompressible bytes: already-compressed files (.gz, .png, .woff2). */
export function randomProducer(seed: number): Producer {
  const rng = new Rng(seed);
  return () => {
    const out = new Uint8Array(BLOCK);
    rng.fill(out);
    return out;
  };
}
