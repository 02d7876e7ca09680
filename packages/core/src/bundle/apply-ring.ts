/**
 * A single-producer, single-consumer ring of records in a SharedArrayBuffer: how a layer rebuild
 * hands its byte stream to its writer thread (apply-worker.ts) without a message, a copy into a
 * transferred buffer, or any garbage per record. The memory is allocated once; the producer
 * waits (Atomics.waitAsync) while the ring is full, the consumer (Atomics.wait) while it is empty.
 *
 * A record is an 8-byte head (type, payload length) and its payload, written contiguously modulo
 * the ring's size (a record may wrap around the end). Positions are byte counts that wrap at 2^31;
 * the ring's size is a power of two, so `position & (size - 1)` is the offset.
 */

/** Atomics.waitAsync (ES2024; in Node since 16), typed here because the build targets ES2022. */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> | string } }).waitAsync.bind(Atomics);

/** Control words (Int32) at the start of the buffer. */
const HEAD = 0;
const TAIL = 1;
/** Set by the consumer when it stopped on an error, by the producer when it gave up. */
const STOP = 2;
const CONTROL_BYTES = 64;
const RECORD_HEAD = 8;

/** Record types (the payload layouts are in apply-worker.ts). */
export const REC = {
  /** Bytes of the layer: hashed. */
  hash: 1,
  /** A stored content's body (digest, size): read, decoded, hashed. */
  content: 2,
  /** A new body begins (its size follows as a float64). */
  begin: 3,
  /** Bytes of the new body in progress: hashed and written. */
  data: 4,
  /** The new body ends (its digest): named or dropped as a duplicate. */
  end: 5,
  /** Make every new body durable under its name, then answer 'flushed'. */
  flush: 6,
  /** Answer 'done' with the layer's digest and size. */
  finish: 7,
  /**
   * A new body begins that is stored but is not (yet) part of the layer's bytes (its size follows
   * as a float64): a group member decoded before its own entry, which later takes it as a content.
   * Its data and end records are those of `begin`.
   */
  stash: 8,
} as const;

/** Largest payload of one record: bodies are cut into data records of at most this. */
export const RECORD_MAX = 256 * 1024;

/** The shared memory of a ring. */
export function ringBuffer(size: number): SharedArrayBuffer {
  if (size & (size - 1) || size < 4 * RECORD_MAX) throw new RangeError('ring size must be a power of two of at least 1 MiB');
  return new SharedArrayBuffer(CONTROL_BYTES + size);
}

class RingView {
  protected readonly ctrl: Int32Array;
  protected readonly data: Uint8Array;
  protected readonly mask: number;

  constructor(sab: SharedArrayBuffer) {
    this.ctrl = new Int32Array(sab, 0, CONTROL_BYTES / 4);
    this.data = new Uint8Array(sab, CONTROL_BYTES);
    this.mask = this.data.length - 1;
  }

  /** True once either side stopped. */
  get stopped(): boolean {
    return Atomics.load(this.ctrl, STOP) !== 0;
  }

  /** Stops the ring: the other side's waits return and it gives up. */
  stop(): void {
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.notify(this.ctrl, HEAD);
    Atomics.notify(this.ctrl, TAIL);
  }

  protected used(): number {
    return (Atomics.load(this.ctrl, HEAD) - Atomics.load(this.ctrl, TAIL)) & 0x7fffffff;
  }
}

/** The producer side (the rebuild, on the main thread). */
export class RingWriter extends RingView {
  private readonly head = new DataView(new ArrayBuffer(RECORD_HEAD));

  /** Appends a record, waiting (without blocking the thread) while the ring is full. */
  async push(type: number, ...parts: Uint8Array[]): Promise<void> {
    const len = parts.reduce((a, p) => a + p.length, 0);
    if (len > RECORD_MAX) throw new RangeError(`ring record of ${len} bytes`);
    const need = RECORD_HEAD + len;
    const room = (): boolean => this.data.length - this.used() >= need;
    if (!room()) await this.waitTail(room);
    if (this.stopped) return;
    let pos = Atomics.load(this.ctrl, HEAD);
    this.head.setUint32(0, type);
    this.head.setUint32(4, len);
    pos = this.copyIn(pos, new Uint8Array(this.head.buffer));
    for (const p of parts) pos = this.copyIn(pos, p);
    Atomics.store(this.ctrl, HEAD, pos);
    Atomics.notify(this.ctrl, HEAD);
  }

  /** Where the next record goes: a record pushed before it is handled once {@link handled} says so. */
  position(): number {
    return Atomics.load(this.ctrl, HEAD);
  }

  /**
   * True when the consumer is done with every record before `pos` (a {@link position}): it frees a
   * record's space only when it asks for the next (RingReader.next), after handling it.
   */
  handled(pos: number): boolean {
    const head = Atomics.load(this.ctrl, HEAD);
    return this.used() <= ((head - pos) & 0x7fffffff);
  }

  /** Waits (without blocking the thread) until {@link handled}(`pos`) or the ring stops. */
  waitHandled(pos: number): Promise<void> {
    return this.waitTail(() => this.handled(pos));
  }

  /**
   * Waits (without blocking the thread) until `done()` or the ring stops. Only the consumer
   * changes what `done` looks at, and it moves TAIL when it does: the wait sleeps on TAIL, read
   * before `done` is checked again so that a move in between is not missed.
   */
  private async waitTail(done: () => boolean): Promise<void> {
    while (!done() && !this.stopped) {
      const tail = Atomics.load(this.ctrl, TAIL);
      if (done()) return;
      const w = waitAsync(this.ctrl, TAIL, tail, 100);
      if (w.async) await w.value;
    }
  }

  private copyIn(pos: number, bytes: Uint8Array): number {
    const at = pos & this.mask;
    const first = Math.min(bytes.length, this.data.length - at);
    this.data.set(bytes.subarray(0, first), at);
    if (first < bytes.length) this.data.set(bytes.subarray(first), 0);
    return (pos + bytes.length) & 0x7fffffff;
  }
}

/** One record as the consumer sees it: its payload, in at most two views of the shared memory. */
export interface RingRecord {
  type: number;
  length: number;
  /** The payload; valid until `next` is called again. */
  parts: Uint8Array[];
}

/** The consumer side (the writer thread). */
export class RingReader extends RingView {
  private consumed = 0;
  private readonly head = Buffer.alloc(RECORD_HEAD);

  /**
   * The next record, blocking the thread while the ring is empty; undefined once the ring was
   * stopped. Consuming frees the previous record's space.
   */
  next(): RingRecord | undefined {
    this.release();
    for (;;) {
      if (this.stopped) return undefined;
      const head = Atomics.load(this.ctrl, HEAD);
      if (((head - Atomics.load(this.ctrl, TAIL)) & 0x7fffffff) >= RECORD_HEAD) break;
      Atomics.wait(this.ctrl, HEAD, head, 100);
    }
    const tail = Atomics.load(this.ctrl, TAIL);
    let at = 0;
    for (const p of this.view(tail, RECORD_HEAD)) {
      this.head.set(p, at);
      at += p.length;
    }
    const type = this.head.readUInt32BE(0);
    const length = this.head.readUInt32BE(4);
    this.consumed = RECORD_HEAD + length;
    return { type, length, parts: this.view((tail + RECORD_HEAD) & 0x7fffffff, length) };
  }

  private view(pos: number, len: number): Uint8Array[] {
    const at = pos & this.mask;
    const first = Math.min(len, this.data.length - at);
    const out = [this.data.subarray(at, at + first)];
    if (first < len) out.push(this.data.subarray(0, len - first));
    return out;
  }

  /** Frees the space of the record returned last. */
  release(): void {
    if (this.consumed === 0) return;
    Atomics.store(this.ctrl, TAIL, (Atomics.load(this.ctrl, TAIL) + this.consumed) & 0x7fffffff);
    Atomics.notify(this.ctrl, TAIL);
    this.consumed = 0;
  }
}
