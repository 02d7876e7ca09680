/**
 * Reports made while the server cannot be reached, kept durably in the agent's state directory
 * (`reports.json`, written atomically) and sent at the next contact, oldest first, each with the
 * counter it was made with (docs/protocol.md section 3.2). Bounded: past the cap the oldest go,
 * since the server keeps only the newest state of an agent anyway.
 */
import { join } from 'node:path';
import { fitsMessage, writeFileAtomic, type Report } from '@ferry/core';
import { readStateJson } from './files.js';

/** A generous cap on one report's JSON (its strings are capped by the schema). */
const REPORT_MAX_BYTES = 8 * 1024;

/** The durable report queue. */
export class ReportBuffer {
  private constructor(
    private readonly file: string,
    private readonly cap: number,
    private queue: Report[],
  ) {}

  /**
   * Opens the buffer in `stateDir`, keeping at most `cap` reports. A damaged file (a crash cannot
   * make one: it is written atomically) is dropped, as are entries without a report's shape.
   */
  static async open(stateDir: string, cap: number): Promise<ReportBuffer> {
    const file = join(stateDir, 'reports.json');
    const read = await readStateJson(file, 'report buffer', cap * REPORT_MAX_BYTES);
    const queue = read.state === 'ok' && Array.isArray(read.value) ? read.value.filter(isReport).slice(-cap) : [];
    return new ReportBuffer(file, cap, queue);
  }

  /** Reports waiting, oldest first. */
  get size(): number {
    return this.queue.length;
  }

  /** Adds a report (durably); the oldest goes when the buffer is full. */
  async push(report: Report): Promise<void> {
    this.queue.push(report);
    if (this.queue.length > this.cap) this.queue.splice(0, this.queue.length - this.cap);
    await this.save();
  }

  /** The oldest `n` reports (a copy). */
  peek(n: number): Report[] {
    return this.queue.slice(0, n);
  }

  /** Removes the reports the server took (those with a counter up to `last`). */
  async ack(last: number): Promise<void> {
    const before = this.queue.length;
    this.queue = this.queue.filter((r) => r.counter > last);
    if (this.queue.length !== before) await this.save();
  }

  private save(): Promise<void> {
    return writeFileAtomic(this.file, JSON.stringify(this.queue));
  }
}

function isReport(v: unknown): v is Report {
  return fitsMessage('report', v);
}
