/**
 * Progress reports (docs/protocol.md section 3.2): each one gets its counter when it is made and
 * goes into the durable buffer first; the buffer is sent with the next check-in or on its own,
 * oldest first, and a report leaves the buffer only once a server took it.
 */
import { PROTOCOL_LIMITS, type AgentState, type Report } from '@ferry/core';
import type { AgentApi } from './api.js';
import type { Counter } from './agent-state.js';
import type { FetchProgress } from './progress.js';
import type { ReportBuffer } from './report-buffer.js';
import { SerialQueue } from './serial.js';

/** What a report is about (the transfer in flight, if any). */
export interface ReportSubject {
  channel?: string | null;
  release?: number | null;
  bundle?: Report['bundle'];
}

/** Figures of a report when no transfer is running. */
const NO_PROGRESS: FetchProgress = { bytesDone: 0, bytesTotal: 0, chunksDone: 0, chunksTotal: 0, rate: 0, eta: null, error: null, link: { bytesReceived: 0, requests: 0, failures: 0, stalls: 0, resets: 0, rtt: null, wireBytesReceived: 0, wireBytesSent: 0, digestFailures: 0, restarts: 0, bytesDiscarded: 0, bytesFromFiles: 0 } };

/** Makes, buffers and sends reports. Calls are serialized (one buffer write at a time). */
export class Reporter {
  private readonly queue = new SerialQueue();

  constructor(
    private readonly counter: Counter,
    private readonly buffer: ReportBuffer,
    private readonly api: AgentApi,
    private readonly onReport?: (r: Report) => void,
  ) {}

  /** Makes a report and buffers it durably. */
  make(state: AgentState, subject: ReportSubject, p: FetchProgress = NO_PROGRESS, error: { code: string; message: string } | null = p.error): Promise<Report> {
    return this.serial(async () => {
      const { link } = p;
      const report: Report = {
        counter: await this.counter.take(),
        at: new Date().toISOString(),
        state,
        channel: subject.channel ?? null,
        release: subject.release ?? null,
        bundle: subject.bundle ?? null,
        bytesDone: p.bytesDone,
        bytesTotal: p.bytesTotal,
        chunksDone: p.chunksDone,
        chunksTotal: p.chunksTotal,
        rate: Math.min(p.rate, 1e12),
        eta: p.eta === null ? null : Math.min(Math.round(p.eta), 1e9),
        error: error && { code: error.code.slice(0, 64), message: error.message.slice(0, PROTOCOL_LIMITS.text) },
        link: { bytesReceived: link.bytesReceived, requests: link.requests, failures: link.failures, stalls: link.stalls, resets: link.resets, rtt: link.rtt === null ? null : Math.min(link.rtt, 86_400) },
      };
      await this.buffer.push(report);
      try {
        this.onReport?.(report);
      } catch {
        // a listener's bug must not stop the agent
      }
      return report;
    });
  }

  /** The buffered reports to send with a check-in (oldest first). */
  pending(): Report[] {
    return this.buffer.peek(PROTOCOL_LIMITS.reports);
  }

  /** A server took these reports: they leave the buffer. */
  sent(reports: Report[]): Promise<void> {
    const last = reports[reports.length - 1];
    return last ? this.serial(() => this.buffer.ack(last.counter)) : Promise.resolve();
  }

  /** Sends the buffer on its own; a network failure leaves it for the next contact. */
  async flush(signal?: AbortSignal): Promise<boolean> {
    const reports = this.pending();
    if (reports.length === 0) return true;
    try {
      await this.api.reports(reports, signal);
    } catch {
      return false;
    }
    await this.sent(reports);
    return true;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}
