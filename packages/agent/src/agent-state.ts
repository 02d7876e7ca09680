/**
 * The agent's own state directory: its lock (one agent per store) and its request counter
 * (docs/protocol.md section 3.1: strictly increasing across everything it sends, restarts
 * included). The counter is reserved in blocks, each block's end written durably before any
 * number of it is used, so a crash skips numbers but never reuses one.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, FerryError, isFerryError, writeFileAtomic } from '@ferry/core';
import { readStateJson } from './files.js';

/** Counter numbers reserved per durable write. */
const BLOCK = 64;

/**
 * Takes the agent lock in `stateDir` (core's store lock file and takeover rules: a dead owner's
 * lock is taken over). Another live agent: FERRY_ERR_AGENT_RUNNING. Returns the release function.
 */
export async function lockAgent(stateDir: string, store: string): Promise<() => Promise<void>> {
  await mkdir(stateDir, { recursive: true });
  try {
    return await acquireLock(stateDir);
  } catch (err) {
    if (isFerryError(err, 'FERRY_ERR_STORE_LOCKED')) throw new FerryError('FERRY_ERR_AGENT_RUNNING', `another ferry agent already runs on store ${store} (${err.message})`, { cause: err });
    throw err;
  }
}

/** The durable request counter. */
export class Counter {
  private constructor(
    private readonly file: string,
    private next: number,
    private limit: number,
  ) {}

  /** Opens the counter in `stateDir` (never below the wall clock in milliseconds). */
  static async open(stateDir: string): Promise<Counter> {
    const file = join(stateDir, 'counter');
    // wall-clock milliseconds are a floor: a lost or damaged file still yields numbers above the last used
    let start = Math.max(1, Math.floor(Date.now()));
    // first run, or a damaged file: the clock's floor stands
    const read = await readStateJson(file, 'request counter', 1024);
    const next = read.state === 'ok' ? (read.value as { next?: unknown } | null)?.next : undefined;
    if (Number.isSafeInteger(next) && (next as number) > start) start = next as number;
    return new Counter(file, start, start);
  }

  private reserving: Promise<void> | undefined;

  /** The next number, durably reserved before it is returned. */
  async take(): Promise<number> {
    while (this.next >= this.limit) {
      this.reserving ??= this.reserve().finally(() => (this.reserving = undefined));
      await this.reserving;
    }
    return this.next++;
  }

  private async reserve(): Promise<void> {
    const limit = this.next + BLOCK;
    await writeFileAtomic(this.file, JSON.stringify({ next: limit }) + '\n');
    this.limit = limit;
  }
}

/**
 * The release of each channel that a 'committed' report was made for (`committed.json`). A kill
 * between a commit and its report, or an apply outside the agent (`ferry apply` from a USB stick),
 * leaves a channel at a release the server never heard committed: the agent compares this record
 * with the store's channels at each sync and makes the missing reports. The record is written
 * after the report is buffered, so a crash between the two repeats a report, never loses one.
 */
export class CommitLog {
  private constructor(
    private readonly file: string,
    private readonly releases: Map<string, number>,
  ) {}

  /**
   * Opens the record in `stateDir`. When there is none (a new agent, or one from before the
   * record existed), it starts as `current`: what the store holds now was never the agent's to
   * report. A damaged record is read as empty (at worst, reports repeated).
   */
  static async open(stateDir: string, current: () => Promise<Map<string, number>>): Promise<CommitLog> {
    const file = join(stateDir, 'committed.json');
    const read = await readStateJson(file, 'commit record', 64 * 1024);
    if (read.state === 'missing') {
      const log = new CommitLog(file, await current());
      await log.save();
      return log;
    }
    // damaged (oversized or not JSON): read as empty
    const releases = new Map<string, number>();
    const value = read.state === 'ok' ? read.value : undefined;
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [channel, release] of Object.entries(value)) if (Number.isSafeInteger(release)) releases.set(channel, release as number);
    }
    return new CommitLog(file, releases);
  }

  /** The last release of `channel` reported committed, or undefined. */
  get(channel: string): number | undefined {
    return this.releases.get(channel);
  }

  /** Records that a 'committed' report for `release` of `channel` was buffered. */
  async set(channel: string, release: number): Promise<void> {
    if (this.releases.get(channel) === release) return;
    this.releases.set(channel, release);
    await this.save();
  }

  private save(): Promise<void> {
    return writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(this.releases)) + '\n');
  }
}
