/**
 * The agent's own state directory: its lock (one agent per store) and its request counter
 * (docs/protocol.md section 3.1: strictly increasing across everything it sends, restarts
 * included). The counter is reserved in blocks, each block's end written durably before any
 * number of it is used, so a crash skips numbers but never reuses one.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, FerryError, isFerryError, writeFileAtomic } from '@ferry/core';

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
    try {
      const v = JSON.parse(await readFile(file, 'utf8')) as { next?: unknown };
      if (Number.isSafeInteger(v.next) && (v.next as number) > start) start = v.next as number;
    } catch {
      // first run, or a damaged file: the clock's floor stands
    }
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
