/**
 * Content sketches for finding similar baseline bodies (DESIGN.md section 5, "content similarity
 * found by a cheap sketch"): a gear rolling hash picks content-defined anchor points (about one per
 * SKETCH_SPACING bytes, at the same places in any file holding the same bytes), and a second gear
 * hash at each anchor is a fingerprint of the 32 bytes before it. A body's sketch is the sorted set
 * of its fingerprints; the share of a target's fingerprints found in a candidate estimates how much
 * of the target a patch against it can copy.
 */

/** Mean distance between anchors, bytes (a power of two). */
export const SKETCH_SPACING = 64;

/** A fixed pseudo-random gear table (xorshift from a fixed seed): sketches must not vary between runs. */
function gearTable(seed: number): Int32Array {
  const t = new Int32Array(256);
  let x = seed >>> 0;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    t[i] = x | 0;
  }
  return t;
}

const GEAR = gearTable(0x9e3779b9);
const ANCHOR_SHIFT = 32 - Math.log2(SKETCH_SPACING);
/** Bytes before an anchor that its fingerprint covers. */
const WINDOW = 32;

/** Incremental sketcher: feed a body in pieces, then take its sketch. */
export class Sketcher {
  private gear = 0;
  /** The last WINDOW - 1 bytes seen, so fingerprints span piece boundaries. */
  private tail = new Uint8Array(0);
  private prints = new Uint32Array(1024);
  private count = 0;

  /** Hashes the next bytes of the body. */
  update(piece: Uint8Array): void {
    const tail = this.tail;
    let a = this.gear;
    for (let i = 0; i < piece.length; i++) {
      a = ((a << 1) + GEAR[piece[i]!]!) | 0;
      // anchors are 1 in SKETCH_SPACING positions: fingerprint the window before it (FNV-1a),
      // reaching back into the previous piece near this one's start
      if (a >>> ANCHOR_SHIFT === 0) this.push(i + 1 >= WINDOW ? fingerprint(FNV_SEED, piece, i + 1 - WINDOW, i + 1) : fingerprint(fingerprint(FNV_SEED, tail, Math.max(0, tail.length - (WINDOW - 1 - i)), tail.length), piece, 0, i + 1));
    }
    this.gear = a;
    this.tail = piece.length >= WINDOW - 1 ? piece.slice(piece.length - (WINDOW - 1)) : Buffer.concat([tail, piece]).subarray(-(WINDOW - 1));
  }

  private push(fp: number): void {
    if (this.count === this.prints.length) {
      const grown = new Uint32Array(this.prints.length * 2);
      grown.set(this.prints);
      this.prints = grown;
    }
    this.prints[this.count++] = fp;
  }

  /** The sketch: sorted distinct fingerprints. */
  digest(): Uint32Array {
    const s = this.prints.slice(0, this.count).sort();
    let n = 0;
    for (let i = 0; i < s.length; i++) if (i === 0 || s[i] !== s[i - 1]) s[n++] = s[i]!;
    return s.slice(0, n);
  }
}

const FNV_SEED = 0x811c9dc5 | 0;

/** FNV-1a of bytes[from, to), continuing from `h`. */
function fingerprint(h: number, bytes: Uint8Array, from: number, to: number): number {
  for (let j = from; j < to; j++) h = Math.imul(h ^ bytes[j]!, 0x01000193);
  return h >>> 0;
}

/** The sketch of one whole body. */
export function sketchOf(bytes: Uint8Array): Uint32Array {
  const s = new Sketcher();
  s.update(bytes);
  return s.digest();
}


const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const SNIFF = 8192;

/** True for an ELF file or one with a NUL byte in its first 8 KiB (`head`: the body's first bytes). */
export function looksBinary(head: Uint8Array): boolean {
  return Buffer.from(head.buffer, head.byteOffset, Math.min(head.length, 4)).equals(ELF) || head.subarray(0, SNIFF).includes(0);
}
