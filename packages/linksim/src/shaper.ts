/**
 * One direction of the emulated link. Every connection's bytes in that direction share the link
 * (round robin, one packet of at most one MTU at a time), each packet paying its serialisation
 * delay (n*8/rate) and then the latency. Each
 * connection holds at most `queueBytes` in the link before its sender is paused, so TCP's own
 * flow control slows the far end as a real bottleneck would.
 */
import type { Socket } from 'node:net';
import { geometricGap, seededRandom, type Random } from './random.js';
import type { LinkState } from './state.js';

interface Packet {
  data: Buffer;
  deliverAt: number;
}

/** Byte counters a pipe adds to. */
export interface PipeCounters {
  delivered: number;
  corrupted: number;
}

/** Flips one bit in bytes at seeded positions: a Bernoulli process with probability `rate` per byte. */
export class Corrupter {
  private pos = 0;
  private next: number;
  private readonly random: Random;

  constructor(seed: number, private readonly rate: number) {
    this.random = seededRandom(seed);
    this.next = rate > 0 ? geometricGap(this.random, rate) - 1 : Infinity;
  }

  /** Returns `buf`, or a copy with bits flipped; `count` receives how many bytes were changed. */
  apply(buf: Buffer, count: (n: number) => void): Buffer {
    let out = buf;
    let n = 0;
    while (this.next < this.pos + buf.length) {
      if (out === buf) out = Buffer.from(buf);
      const i = this.next - this.pos;
      out[i] = out[i]! ^ (1 << Math.floor(this.random() * 8));
      n++;
      this.next += geometricGap(this.random, this.rate);
    }
    this.pos += buf.length;
    if (n > 0) count(n);
    return out;
  }
}

/**
 * The shared sending side of one direction, in virtual time: the link is busy until `nextFree`;
 * each packet of n bytes occupies it for n*8/rate and arrives one latency after its last byte
 * left. A timer that fires late catches up (packets whose slot has passed leave at once), so the
 * average rate holds whatever the timer granularity; an idle link accrues no credit.
 */
export class Direction {
  private readonly pipes: Pipe[] = [];
  private turn = 0;
  private nextFree: number;
  private idle = true;
  private timer: NodeJS.Timeout | undefined;
  private readonly msPerByte: number;

  constructor(
    rateBits: number | undefined,
    readonly latencyMs: number,
    readonly mtu: number,
    readonly queueBytes: number,
    readonly state: LinkState,
    readonly now: () => number,
  ) {
    this.msPerByte = rateBits === undefined ? 0 : 8000 / rateBits;
    this.nextFree = now();
  }

  /** Adds a connection's pipe. */
  add(p: Pipe): void {
    this.pipes.push(p);
  }

  /** Removes a closed connection's pipe. */
  remove(p: Pipe): void {
    const i = this.pipes.indexOf(p);
    if (i >= 0) this.pipes.splice(i, 1);
  }

  /** The link came up after an outage or stall: nothing was sent meanwhile. */
  resumed(): void {
    this.nextFree = Math.max(this.nextFree, this.now());
    this.wake();
  }

  /** Sends what is due; called when bytes are queued and when the link comes up. */
  wake(): void {
    if (this.idle) {
      this.nextFree = Math.max(this.nextFree, this.now());
      this.idle = false;
    }
    if (this.timer === undefined) this.pump();
  }

  /** Stops the pacing timer. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private pump(): void {
    this.timer = undefined;
    if (!this.state.up) return;
    const now = this.now();
    for (;;) {
      const ready = this.pipes.filter((p) => p.waiting > 0);
      if (ready.length === 0) {
        this.idle = true;
        return;
      }
      if (this.nextFree > now) {
        this.timer = setTimeout(() => this.pump(), Math.ceil(this.nextFree - now));
        return;
      }
      const pipe = ready[this.turn++ % ready.length]!;
      this.nextFree += pipe.headSize() * this.msPerByte;
      pipe.depart(this.nextFree + this.latencyMs);
    }
  }
}

/** One direction of one connection: bytes read from `src`, carried by the link, written to `dst`. */
export class Pipe {
  private readonly queue: Buffer[] = [];
  /** Bytes waiting to leave. */
  waiting = 0;
  private readonly flight: Packet[] = [];
  private flying = 0;
  private timer: NodeJS.Timeout | undefined;
  private srcEnded = false;
  private paused = false;
  /** Last time bytes entered or left this pipe (ms on the link's clock). */
  lastActivity = 0;

  constructor(
    private readonly dir: Direction,
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly corrupter: Corrupter,
    private readonly counters: PipeCounters,
  ) {
    dir.add(this);
    src.on('data', (b: Buffer) => this.push(b));
    src.on('end', () => {
      this.srcEnded = true;
      this.finishIfDrained();
    });
    dst.on('drain', () => this.maybeResume());
  }

  /** Bytes this connection holds in this direction (queued, in flight, or unwritten at the far socket). */
  get held(): number {
    return this.waiting + this.flying + this.dst.writableLength;
  }

  /** Size of the next packet to leave. */
  headSize(): number {
    return this.queue[0]?.length ?? 0;
  }

  private push(buf: Buffer): void {
    this.lastActivity = this.dir.now();
    const data = this.corrupter.apply(buf, (n) => (this.counters.corrupted += n));
    for (let at = 0; at < data.length; at += this.dir.mtu) this.queue.push(data.subarray(at, at + this.dir.mtu));
    this.waiting += data.length;
    if (this.held > this.dir.queueBytes && !this.paused) {
      this.paused = true;
      this.src.pause();
    }
    this.dir.wake();
  }

  /** Called by the direction: the head packet leaves now and arrives at `deliverAt`. */
  depart(deliverAt: number): void {
    const data = this.queue.shift()!;
    this.waiting -= data.length;
    this.flight.push({ data, deliverAt });
    this.flying += data.length;
    this.schedule();
  }

  /** Delivers what is due (held while the link is down or stalled). */
  deliver(): void {
    this.timer = undefined;
    if (!this.dir.state.up) return;
    const now = this.dir.now();
    while (this.flight.length > 0 && this.flight[0]!.deliverAt <= now) {
      const p = this.flight.shift()!;
      this.flying -= p.data.length;
      if (!this.dst.destroyed && this.dst.writable) this.dst.write(p.data);
      this.counters.delivered += p.data.length;
      this.lastActivity = now;
    }
    this.schedule();
    this.maybeResume();
    this.finishIfDrained();
  }

  /** Drops every timer (the connection is gone). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dir.remove(this);
  }

  private schedule(): void {
    if (this.timer !== undefined || this.flight.length === 0) return;
    this.timer = setTimeout(() => this.deliver(), Math.max(0, this.flight[0]!.deliverAt - this.dir.now()));
  }

  private maybeResume(): void {
    if (this.paused && this.held <= this.dir.queueBytes / 2) {
      this.paused = false;
      this.src.resume();
    }
  }

  private finishIfDrained(): void {
    if (this.srcEnded && this.waiting === 0 && this.flying === 0 && !this.dst.destroyed) this.dst.end();
  }
}
