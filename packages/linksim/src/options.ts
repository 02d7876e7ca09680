/** Options of the link emulator, with their defaults merged in one place. */
import { FerryError } from '@ferry/core';

/** A host and port. */
export interface Endpoint {
  host: string;
  port: number;
}

/** When the link is up: always, a fixed cycle, or seeded random periods. */
export type LinkSchedule =
  | { kind: 'always' }
  /** Up for `upMs`, then down for `downMs`, repeated (starting up). */
  | { kind: 'fixed'; upMs: number; downMs: number }
  /** Up and down periods drawn from exponential distributions with these means (seeded). */
  | { kind: 'random'; meanUpMs: number; meanDownMs: number };

/** What a down period does to connections. */
export type DownMode =
  /** Open connections are reset (RST) when the link goes down; new ones are reset at once. */
  | 'reset'
  /** Bytes are held, not delivered, until the link is up again; connections stay open. */
  | 'stall';

/** Options of {@link startLinkSim}. */
export interface LinkSimOptions {
  /** Where the emulated link is reached (default 127.0.0.1, port 0: any free port). */
  listen?: Partial<Endpoint>;
  /** Where connections are forwarded. */
  target: Endpoint;
  /** Rate from the client to the target, bits/s (default: unlimited). */
  rateUp?: number | undefined;
  /** Rate from the target to the client, bits/s (default: unlimited). */
  rateDown?: number | undefined;
  /** One-way delay from the client to the target, ms (default 0). */
  latencyUpMs?: number;
  /** One-way delay from the target to the client, ms (default 0). */
  latencyDownMs?: number;
  /** Up/down schedule (default: always up). */
  schedule?: LinkSchedule;
  /** What a down period does (default 'reset'). */
  downMode?: DownMode;
  /** Mean time between injected resets of one open connection, ms (default: none). */
  resetEveryMs?: number | undefined;
  /** Mean time between silent stalls of the whole link, ms (default: none). */
  stallEveryMs?: number | undefined;
  /** How long a silent stall holds every byte, ms (default 5000). */
  stallMs?: number;
  /** Probability that a byte crossing the link has one bit flipped (default 0). */
  corruptRate?: number;
  /** Seed of every random choice (schedule, resets, stalls, corrupted positions; default 1). */
  seed?: number;
  /** Bytes one direction of one connection may hold in the link before its sender is paused (default 64 KiB). */
  queueBytes?: number;
  /** Largest packet the link sends at once, bytes (default 1500). */
  mtu?: number;
  /** Milliseconds clock (default performance.now). */
  now?: () => number;
}

/** Options with every default filled in. */
export type ResolvedLinkSimOptions = Required<Omit<LinkSimOptions, 'rateUp' | 'rateDown' | 'resetEveryMs' | 'stallEveryMs' | 'listen'>> & {
  listen: Endpoint;
  rateUp: number | undefined;
  rateDown: number | undefined;
  resetEveryMs: number | undefined;
  stallEveryMs: number | undefined;
};

function check(ok: boolean, what: string): void {
  if (!ok) throw new FerryError('FERRY_ERR_USAGE', `linksim: ${what}`);
}

const positive = (v: number | undefined): boolean => v === undefined || (Number.isFinite(v) && v > 0);
const nonNegative = (v: number): boolean => Number.isFinite(v) && v >= 0;

/** Merges defaults and checks ranges (FERRY_ERR_USAGE naming the bad option). */
export function resolveLinkSimOptions(o: LinkSimOptions): ResolvedLinkSimOptions {
  const r: ResolvedLinkSimOptions = {
    listen: { host: o.listen?.host ?? '127.0.0.1', port: o.listen?.port ?? 0 },
    target: o.target,
    rateUp: o.rateUp,
    rateDown: o.rateDown,
    latencyUpMs: o.latencyUpMs ?? 0,
    latencyDownMs: o.latencyDownMs ?? 0,
    schedule: o.schedule ?? { kind: 'always' },
    downMode: o.downMode ?? 'reset',
    resetEveryMs: o.resetEveryMs,
    stallEveryMs: o.stallEveryMs,
    stallMs: o.stallMs ?? 5000,
    corruptRate: o.corruptRate ?? 0,
    seed: o.seed ?? 1,
    queueBytes: o.queueBytes ?? 64 * 1024,
    mtu: o.mtu ?? 1500,
    now: o.now ?? (() => performance.now()),
  };
  check(positive(r.rateUp) && positive(r.rateDown), 'rates must be positive bits per second');
  check(nonNegative(r.latencyUpMs) && nonNegative(r.latencyDownMs), 'latencies must be 0 ms or more');
  check(positive(r.resetEveryMs) && positive(r.stallEveryMs) && r.stallMs > 0, 'reset and stall intervals must be positive');
  check(r.corruptRate >= 0 && r.corruptRate <= 1, 'the corruption rate is a probability per byte, from 0 to 1');
  check(Number.isInteger(r.mtu) && r.mtu >= 1 && Number.isInteger(r.queueBytes) && r.queueBytes >= r.mtu, 'mtu must be a whole number of bytes, queueBytes at least one mtu');
  const s = r.schedule;
  if (s.kind === 'fixed') check(s.upMs > 0 && s.downMs >= 0, 'a fixed schedule needs upMs > 0 and downMs >= 0');
  if (s.kind === 'random') check(s.meanUpMs > 0 && s.meanDownMs > 0, 'a random schedule needs positive mean up and down times');
  check(Number.isInteger(r.target.port) && r.target.port > 0 && r.target.port < 65536, 'target port must be 1-65535');
  return r;
}
