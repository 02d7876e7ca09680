/**
 * `startLinkSim`: a userspace TCP proxy that emulates a DIL link between its clients and one
 * target (rate and latency per direction, an up/down schedule, resets, silent stalls, corruption).
 * Users rehearse deployments with it (`ferry linksim`); tests and benches put it between an agent
 * and a server.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { toFerryError } from '@ferry/core';
import { resolveLinkSimOptions, type LinkSimOptions, type ResolvedLinkSimOptions } from './options.js';
import { deriveSeed, exponential, seededRandom, type Random } from './random.js';
import { Corrupter, Direction, Pipe, type PipeCounters } from './shaper.js';
import { LinkState } from './state.js';

/** What the link has done so far. */
export interface LinkStats {
  /** The link carries bytes right now. */
  up: boolean;
  /** Connections accepted, in all. */
  connections: number;
  /** Connections open now. */
  open: number;
  /** Connections reset at once because the link was down (down mode 'reset'). */
  refused: number;
  /** Connections reset by the link (outages in 'reset' mode and injected resets). */
  resets: number;
  /** Down periods begun. */
  outages: number;
  /** Silent stalls begun. */
  stalls: number;
  /** Bytes delivered from clients to the target. */
  bytesUp: number;
  /** Bytes delivered from the target to clients. */
  bytesDown: number;
  /** Bytes that had a bit flipped. */
  corruptedBytes: number;
}

/** A running link emulator. */
export interface LinkSim {
  /** The host it listens on. */
  host: string;
  /** The port it listens on. */
  port: number;
  /** Counters so far. */
  stats(): LinkStats;
  /** Stops listening, resets every connection and clears every timer. */
  close(): Promise<void>;
}

interface Connection {
  client: Socket;
  upstream: Socket;
  pipes: Pipe[];
}

/** The link's moving parts, shared by every connection. */
class Link {
  readonly state: LinkState;
  readonly up: Direction;
  readonly down: Direction;
  readonly conns = new Set<Connection>();
  readonly upCounters: PipeCounters = { delivered: 0, corrupted: 0 };
  readonly downCounters: PipeCounters = { delivered: 0, corrupted: 0 };
  readonly random: Random;
  accepted = 0;
  refused = 0;
  resets = 0;
  private resetTimer: NodeJS.Timeout | undefined;

  constructor(readonly o: ResolvedLinkSimOptions) {
    this.random = seededRandom(o.seed);
    this.state = new LinkState(o.schedule, seededRandom(deriveSeed(o.seed, 1)), { everyMs: o.stallEveryMs, forMs: o.stallMs });
    this.up = new Direction(o.rateUp, o.latencyUpMs, o.mtu, o.queueBytes, this.state, o.now);
    this.down = new Direction(o.rateDown, o.latencyDownMs, o.mtu, o.queueBytes, this.state, o.now);
    this.state.on('change', (up, cause) => this.onChange(up, cause));
  }

  start(): void {
    this.state.start();
    this.nextReset();
  }

  close(): void {
    this.state.close();
    clearTimeout(this.resetTimer);
    this.up.close();
    this.down.close();
    for (const c of this.conns) this.drop(c, true);
  }

  accept(client: Socket): void {
    const index = this.accepted++;
    if (!this.state.scheduleUp && this.o.downMode === 'reset') {
      this.refused++;
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    // the link paces packets itself: Nagle on the proxy's own loopback sockets would add delayed-ACK stalls no real link has
    const upstream = connect({ host: this.o.target.host, port: this.o.target.port, allowHalfOpen: true, noDelay: true });
    client.setNoDelay(true);
    const corrupt = (dir: number): Corrupter => new Corrupter(deriveSeed(this.o.seed, 2, index, dir), this.o.corruptRate);
    const c: Connection = { client, upstream, pipes: [] };
    c.pipes.push(new Pipe(this.up, client, upstream, corrupt(0), this.upCounters), new Pipe(this.down, upstream, client, corrupt(1), this.downCounters));
    this.conns.add(c);
    for (const s of [client, upstream]) {
      s.on('error', () => this.drop(c, true));
      s.on('close', () => {
        if (client.destroyed && upstream.destroyed) this.drop(c, false);
      });
    }
  }

  /** Closes a connection; `reset` sends RST to both ends. */
  drop(c: Connection, reset: boolean): void {
    if (!this.conns.delete(c)) return;
    for (const p of c.pipes) p.close();
    for (const s of [c.client, c.upstream]) {
      s.on('error', () => {});
      if (reset && !s.destroyed) s.resetAndDestroy();
      else s.destroy();
    }
  }

  private onChange(up: boolean, cause: 'schedule' | 'stall'): void {
    if (!this.state.scheduleUp && cause === 'schedule' && this.o.downMode === 'reset') {
      for (const c of this.conns) {
        this.resets++;
        this.drop(c, true);
      }
    }
    if (up) {
      this.up.resumed();
      this.down.resumed();
      for (const c of this.conns) for (const p of c.pipes) p.deliver();
    }
  }

  /** Injected resets: a Poisson process; each resets one connection that is moving bytes. */
  private nextReset(): void {
    const every = this.o.resetEveryMs;
    if (every === undefined) return;
    this.resetTimer = setTimeout(() => {
      const now = this.o.now();
      const busy = [...this.conns].filter((c) => c.pipes.some((p) => p.held > 0 || now - p.lastActivity < 1000));
      const victim = busy[Math.floor(this.random() * busy.length)];
      if (victim) {
        this.resets++;
        this.drop(victim, true);
      }
      this.nextReset();
    }, exponential(this.random, every));
  }

  stats(): LinkStats {
    return {
      up: this.state.up,
      connections: this.accepted,
      open: this.conns.size,
      refused: this.refused,
      resets: this.resets,
      outages: this.state.outages,
      stalls: this.state.stalls,
      bytesUp: this.upCounters.delivered,
      bytesDown: this.downCounters.delivered,
      corruptedBytes: this.upCounters.corrupted + this.downCounters.corrupted,
    };
  }
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/** Starts the emulator; FERRY_ERR_USAGE for bad options, FERRY_ERR_IO when it cannot listen. */
export async function startLinkSim(options: LinkSimOptions): Promise<LinkSim> {
  const o = resolveLinkSimOptions(options);
  const link = new Link(o);
  const server = createServer({ allowHalfOpen: true }, (s) => link.accept(s));
  let port: number;
  try {
    port = await listen(server, o.listen.host, o.listen.port);
  } catch (err) {
    throw toFerryError(err, `linksim: listening on ${o.listen.host}:${o.listen.port}`);
  }
  link.start();
  return {
    host: o.listen.host,
    port,
    stats: () => link.stats(),
    close: () =>
      new Promise<void>((resolve) => {
        link.close();
        server.close(() => resolve());
      }),
  };
}
