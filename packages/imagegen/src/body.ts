/**
 * File bodies as descriptions, not bytes: a body is (kind, seed, size, edits) and its bytes are
 * produced on the fly, in chunks, every time they are needed. This is what lets a multi-gigabyte
 * image be written with bounded memory, and a release edit a binary "slightly".
 */
import { createHash } from 'node:crypto';
import { codeProducer, dataProducer, elfProducer, randomProducer, type Producer } from './gen/binary.js';
import { configProducer, jsProducer, proseProducer, pythonProducer, shellProducer } from './gen/text.js';

/** The kinds of generated content, each with its own structure and compressibility. */
export type ContentKind = 'elf' | 'data' | 'random' | 'prose' | 'js' | 'python' | 'config' | 'shell';

/**
 * One change to a body, in offsets of the unedited body. `replace` and `insert` splice in
 * `length` new bytes of the same kind generated from `seed`; `delete` drops `length` bytes.
 */
export interface BodyEdit {
  op: 'replace' | 'insert' | 'delete';
  /** Offset in the original body; edits are sorted and do not overlap. */
  offset: number;
  length: number;
  seed: number;
}

/** A body generated from a seed. */
export interface GeneratedBody {
  kind: ContentKind;
  seed: number;
  /** Size of the unedited body in bytes. */
  size: number;
  /** Architecture for `elf` bodies (`amd64`, `arm64`, ...): sets e_machine and the code style. */
  arch?: string;
  /** Changes applied on top of the seeded body (a release's edits). */
  edits?: readonly BodyEdit[];
}

/** A body given as bytes (package.json files, dpkg lists, anything a test wants verbatim). */
export interface LiteralBody {
  kind: 'literal';
  data: Uint8Array;
}

/** Describes the bytes of one regular file. */
export type BodySpec = GeneratedBody | LiteralBody;

/** Chunk size bodies are produced in. */
export const BODY_CHUNK = 64 * 1024;

/** Size in bytes of a body, edits included. */
export function bodySize(body: BodySpec): number {
  if (body.kind === 'literal') return body.data.length;
  let size = body.size;
  for (const e of body.edits ?? []) {
    if (e.op === 'insert') size += e.length;
    else if (e.op === 'delete') size -= e.length;
  }
  return size;
}

/** A literal body from text or bytes. */
export function literal(data: string | Uint8Array): LiteralBody {
  return { kind: 'literal', data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data };
}

/**
 * A string that is equal for two bodies exactly when they produce the same bytes by construction
 * (the same seeded body with the same edits, or equal literal bytes).
 */
export function bodyKey(body: BodySpec): string {
  if (body.kind === 'literal') return `literal:${createHash('sha256').update(body.data).digest('hex')}`;
  const edits = (body.edits ?? []).map((e) => `${e.op}@${e.offset}+${e.length}#${e.seed}`).join(',');
  return `${body.kind}:${body.arch ?? ''}:${body.seed}:${body.size}:${edits}`;
}

function baseProducer(body: GeneratedBody): Producer {
  switch (body.kind) {
    case 'elf':
      return elfProducer(body.seed, body.size, body.arch ?? 'amd64');
    case 'data':
      return dataProducer(body.seed);
    case 'random':
      return randomProducer(body.seed);
    case 'prose':
      return proseProducer(body.seed);
    case 'js':
      return jsProducer(body.seed);
    case 'python':
      return pythonProducer(body.seed);
    case 'config':
      return configProducer(body.seed);
    case 'shell':
      return shellProducer(body.seed);
  }
}

function editProducer(body: GeneratedBody, seed: number): Producer {
  if (body.kind === 'elf') return codeProducer(seed, body.arch ?? 'amd64');
  return baseProducer({ kind: body.kind, seed, size: 0 });
}

/** Reads exact byte counts out of a producer's variable-size blocks. */
class ByteSource {
  private block: Uint8Array = new Uint8Array(0);
  private pos = 0;

  constructor(private readonly produce: Producer) {}

  read(n: number): Uint8Array {
    if (this.block.length - this.pos >= n) {
      const out = this.block.subarray(this.pos, this.pos + n);
      this.pos += n;
      return out;
    }
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      if (this.pos === this.block.length) {
        this.block = this.produce();
        this.pos = 0;
      }
      const k = Math.min(n - o, this.block.length - this.pos);
      out.set(this.block.subarray(this.pos, this.pos + k), o);
      o += k;
      this.pos += k;
    }
    return out;
  }

  skip(n: number): void {
    while (n > 0) {
      const k = Math.min(n, BODY_CHUNK);
      this.read(k);
      n -= k;
    }
  }
}

function* take(src: ByteSource, n: number, chunk: number): Generator<Uint8Array> {
  while (n > 0) {
    const k = Math.min(n, chunk);
    yield src.read(k);
    n -= k;
  }
}

/**
 * The bytes of a body, produced lazily in chunks of at most `chunkSize` bytes. Chunks are never
 * reused, so a consumer may keep them.
 */
export function* bodyChunks(body: BodySpec, chunkSize = BODY_CHUNK): Generator<Uint8Array> {
  if (body.kind === 'literal') {
    for (let o = 0; o < body.data.length; o += chunkSize) yield body.data.subarray(o, o + chunkSize);
    return;
  }
  if (!Number.isSafeInteger(body.size) || body.size < 0) throw new RangeError(`body size must be a non-negative integer, got ${body.size}`);
  const base = new ByteSource(baseProducer(body));
  let pos = 0;
  for (const e of body.edits ?? []) {
    if (e.offset < pos || e.offset > body.size) throw new RangeError(`body edit at ${e.offset} is out of order or past the end`);
    yield* take(base, e.offset - pos, chunkSize);
    pos = e.offset;
    if (e.op !== 'insert') {
      base.skip(e.length);
      pos += e.length;
    }
    if (e.op !== 'delete') yield* take(new ByteSource(editProducer(body, e.seed)), e.length, chunkSize);
  }
  if (pos > body.size) throw new RangeError('body edits run past the end of the body');
  yield* take(base, body.size - pos, chunkSize);
}

/** The whole body in one buffer (small bodies and tests only). */
export function bodyBytes(body: BodySpec): Buffer {
  return Buffer.concat([...bodyChunks(body)]);
}

/** sha256 (hex) of a body, computed by streaming it. */
export function bodyDigest(body: BodySpec): string {
  const h = createHash('sha256');
  for (const chunk of bodyChunks(body)) h.update(chunk);
  return h.digest('hex');
}
