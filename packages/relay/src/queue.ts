/**
 * Reports buffered while upstream is down (docs/protocol.md section 7): each request is a file
 * `queue/<seq>.json` written durably (temp, fsync, rename, fsync dir) in a directory only the
 * relay's user can read (it holds the agent's bearer token, needed to forward it), and forwarded
 * in order once upstream answers again. Bounded in requests and bytes; a full queue refuses.
 */
import { chmod, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, toFerryError, writeFileAtomic } from '@ferry/core';

/** One buffered request. */
export interface QueuedRequest {
  agent: string;
  /** Path under the upstream, `/v1/agents/<id>/reports`. */
  path: string;
  /** The Authorization header the agent sent. */
  authorization: string | undefined;
  /** The JSON body, as text. */
  body: string;
}

/** What forwarding one request did: delivered, refused for good (dropped), or upstream still down. */
export type SendResult = 'sent' | 'dropped' | 'down';

/** The durable report queue. */
export class ReportQueue {
  private readonly items: { seq: number; bytes: number }[] = [];
  private bytes = 0;
  private seq = 0;
  private draining: Promise<boolean> | undefined;

  private constructor(
    private readonly dir: string,
    private readonly limits: { maxRequests: number; maxBytes: number },
  ) {}

  /** Opens (creating, mode 0700) the queue directory and finds what a previous run left. */
  static async open(dir: string, limits: { maxRequests: number; maxBytes: number }): Promise<ReportQueue> {
    const q = new ReportQueue(dir, limits);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
      for (const name of (await readdir(dir)).sort()) {
        const m = /^(\d{16})\.json$/.exec(name);
        if (!m) {
          if (name.startsWith('.tmp-')) await rm(join(dir, name), { force: true });
          continue;
        }
        const bytes = (await readFile(join(dir, name))).length;
        q.items.push({ seq: Number(m[1]), bytes });
        q.bytes += bytes;
        q.seq = Number(m[1]) + 1;
      }
    } catch (err) {
      throw toFerryError(err, `opening the report queue ${dir}`);
    }
    return q;
  }

  /** Requests waiting. */
  get length(): number {
    return this.items.length;
  }

  /** Appends a request durably; FERRY_ERR_UPSTREAM_UNAVAILABLE when the queue is full (the agent keeps its reports). */
  async push(r: QueuedRequest): Promise<void> {
    const text = JSON.stringify(r);
    const bytes = Buffer.byteLength(text);
    if (this.items.length >= this.limits.maxRequests || this.bytes + bytes > this.limits.maxBytes) {
      throw new FerryError('FERRY_ERR_UPSTREAM_UNAVAILABLE', `upstream is unreachable and the relay's report queue is full (${this.items.length} requests, ${this.bytes} bytes); keep the reports and retry`);
    }
    const seq = this.seq++;
    await writeFileAtomic(this.file(seq), text, { mkdir: false });
    this.items.push({ seq, bytes });
    this.bytes += bytes;
  }

  /**
   * Forwards every waiting request in order with `send`, removing each one delivered or refused for
   * good; stops at the first that finds upstream down. Resolves true when the queue is empty.
   * Concurrent calls share one drain.
   */
  drain(send: (r: QueuedRequest) => Promise<SendResult>): Promise<boolean> {
    this.draining ??= this.drainOnce(send).finally(() => (this.draining = undefined));
    return this.draining;
  }

  private async drainOnce(send: (r: QueuedRequest) => Promise<SendResult>): Promise<boolean> {
    while (this.items.length > 0) {
      const item = this.items[0]!;
      const r = JSON.parse(await readFile(this.file(item.seq), 'utf8')) as QueuedRequest;
      if ((await send(r)) === 'down') return false;
      await rm(this.file(item.seq), { force: true });
      this.items.shift();
      this.bytes -= item.bytes;
    }
    return true;
  }

  private file(seq: number): string {
    return join(this.dir, `${String(seq).padStart(16, '0')}.json`);
  }
}
