/**
 * The agent daemon (DESIGN.md section 6): idle -> checking in -> fetching -> applying ->
 * committed (or failed with a reason). One agent per store (an agent lock in its state directory).
 * Each sync checks in (inventory, installed releases, buffered reports), picks an assignment
 * (priority.ts), verifies its header, and runs the transfer (transfer.ts) while reporting
 * periodically and checking in for urgent releases that preempt it. Network failures back off;
 * a bad header or bundle is reported and left alone for a while, not retried in a tight loop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError, inventoryDigest, isFerryError, Store, toFerryError, verifyHeader, type ApplyResult, type Assignment, type CheckinAnswer, type Digest } from '@ferry/core';
import { resolveAgentOptions, type AgentOptions, type ResolvedAgentOptions } from './agent-options.js';
import { CommitLog, Counter, lockAgent } from './agent-state.js';
import { AgentApi, loadHeader } from './api.js';
import { backoffMs, LinkWaker } from './backoff.js';
import { pruneCache } from './cache-prune.js';
import { preemptor, pickAssignment, type ReadyAssignment } from './priority.js';
import { ReportBuffer } from './report-buffer.js';
import { Reporter } from './reporter.js';
import { runTransfer } from './transfer.js';
import type { FetchProgress } from './progress.js';

/**
 * The longest backoff between attempts at a chunk: on a link that comes back after an outage, a
 * probe every few seconds costs a SYN, while a long backoff wastes the uptime it waits through.
 */
const RETRY_CAP_MS = 8000;

/** How one sync ended. */
export type SyncOutcome =
  /** Every channel runs its latest release (or has none). */
  | { kind: 'current'; retryAfter: number }
  /** A transfer was committed (another channel may still need one). */
  | { kind: 'committed'; result: ApplyResult; hookError?: FerryError | undefined }
  /** A bundle is being built for this agent, or a transfer gave way to an urgent one. */
  | { kind: 'waiting'; retryAfter: number; preempted?: boolean }
  /** A failure: `error.retryable` says whether backing off and trying again can help. */
  | { kind: 'failed'; error: FerryError };

/** The agent. Open with {@link Agent.open}; close when done. */
export class Agent {
  private readonly bad = new Map<Digest, number>();
  private sentInventory: Digest | undefined;
  private failures = 0;

  private constructor(
    readonly o: ResolvedAgentOptions,
    private readonly store: Store,
    private readonly unlock: () => Promise<void>,
    private readonly reporter: Reporter,
    private readonly api: AgentApi,
    private readonly commits: CommitLog,
  ) {}

  /** Takes the agent lock (FERRY_ERR_AGENT_RUNNING when another agent holds it) and opens its state. */
  static async open(options: AgentOptions): Promise<Agent> {
    const o = resolveAgentOptions(options);
    const store = await Store.open(o.store, { create: true });
    const unlock = await lockAgent(o.stateDir, o.store);
    try {
      const counter = await Counter.open(o.stateDir);
      const api = new AgentApi(o.servers, o.token, o.id, counter);
      const reporter = new Reporter(counter, await ReportBuffer.open(o.stateDir, o.maxBufferedReports), api, o.onReport);
      const commits = await CommitLog.open(o.stateDir, async () => new Map(Object.entries(await installedReleases(store, o.channels)).map(([c, s]) => [c, s.release])));
      return new Agent(o, store, unlock, reporter, api, commits);
    } catch (err) {
      await unlock();
      throw err;
    }
  }

  /** Releases the agent lock and closes its connections. */
  close(): Promise<void> {
    this.api.close();
    return this.unlock();
  }

  /** Runs until `signal` aborts. */
  async run(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    while (!signal?.aborted) {
      let out: SyncOutcome;
      try {
        out = await this.sync({ signal });
      } catch (err) {
        if (signal?.aborted) break;
        throw err;
      }
      await this.pause(this.delayAfter(out), signal, linkDown(out));
    }
    await this.reporter.make('idle', {}).catch(() => undefined);
  }

  /**
   * Syncs until every channel is current: transient failures (network, disk full, a bundle being
   * built) wait and try again; a failure that retrying cannot cure is thrown.
   */
  async runOnce(options: { signal?: AbortSignal } = {}): Promise<ApplyResult[]> {
    const done: ApplyResult[] = [];
    for (;;) {
      const out = await this.sync(options);
      options.signal?.throwIfAborted();
      if (out.kind === 'current') return done;
      if (out.kind === 'committed') done.push(out.result);
      if (out.kind === 'failed' && !out.error.retryable) throw out.error;
      await this.pause(this.delayAfter(out), options.signal, linkDown(out));
    }
  }

  /** One check-in and, when a release is ready, its transfer. Never throws but on abort. */
  async sync(options: { signal?: AbortSignal } = {}): Promise<SyncOutcome> {
    const { signal } = options;
    let a: ReadyAssignment | undefined;
    try {
      const installed = await installedReleases(this.store, this.o.channels);
      await this.reportUnreported(installed);
      const answer = await this.checkin(signal, installed);
      a = pickAssignment(answer.assignments, this.o.channels, (b) => this.isBad(b));
      if (!a) return this.quiet(answer);
      const out = await this.transfer(a, signal);
      this.failures = 0;
      return out;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const error = toFerryError(err, 'sync');
      this.failures++;
      if (a && !error.retryable) this.bad.set(a.bundle.id, this.o.now() + this.o.badBundleSeconds);
      await this.reporter.make('failed', subjectOf(a), undefined, { code: error.code, message: error.message }).catch(() => undefined);
      if (error.code !== 'FERRY_ERR_NETWORK') await this.reporter.flush(signal);
      return { kind: 'failed', error };
    }
  }

  /** No ready assignment: idle, or waiting for a bundle being built. */
  private async quiet(answer: CheckinAnswer): Promise<SyncOutcome> {
    this.failures = 0;
    const building = answer.assignments.some((x) => x.state === 'building');
    await this.reporter.make('idle', {});
    return building ? { kind: 'waiting', retryAfter: answer.retryAfter } : { kind: 'current', retryAfter: answer.retryAfter || this.o.checkinSeconds };
  }

  /**
   * Makes the 'committed' report of each channel whose release in the store was never reported
   * committed (CommitLog: a kill between a commit and its report, or an apply outside the agent).
   */
  private async reportUnreported(installed: Installed): Promise<void> {
    for (const [channel, s] of Object.entries(installed)) {
      if (s.release <= (this.commits.get(channel) ?? -Infinity)) continue;
      await this.reporter.make('committed', { channel, release: s.release });
      await this.commits.set(channel, s.release);
    }
  }

  /** Checks in, with the inventory when the server needs it and the buffered reports. */
  private async checkin(signal?: AbortSignal, known?: Installed): Promise<CheckinAnswer> {
    const layers = (await this.store.listObjects('skeletons')).flatMap((x) => (x.digest ? [x.digest] : []));
    const digest = inventoryDigest(layers);
    const installed = known ?? (await installedReleases(this.store, this.o.channels));
    const send = async (withLayers: boolean): Promise<CheckinAnswer> => {
      const reports = this.reporter.pending();
      const answer = await this.api.checkin({ channels: this.o.channels, installed, inventory: withLayers ? { digest, layers } : { digest }, ...(reports.length > 0 ? { reports } : {}), agent: { version: this.o.version ?? '0.1.0' } }, signal);
      await this.reporter.sent(reports);
      return answer;
    };
    let answer = await send(this.sentInventory !== digest);
    if (answer.needInventory) answer = await send(true);
    this.sentInventory = digest;
    return answer;
  }

  /** Fetches, verifies and applies one assignment; checks in meanwhile for urgent releases. */
  private async transfer(a: ReadyAssignment, signal?: AbortSignal): Promise<SyncOutcome> {
    const subject = subjectOf(a);
    await this.reporter.make('fetching', subject);
    const sources = [...this.o.sources, a.repository];
    const bytes = await loadHeader(a.bundle.id, this.o.cacheDir, sources, signal);
    const header = verifyHeader(bytes, { trust: this.o.trust, channel: a.channel, now: this.o.now() });
    const ac = new AbortController();
    const stop = (): void => ac.abort(signal!.reason);
    signal?.addEventListener('abort', stop, { once: true });
    let last: { phase: 'fetching' | 'applying'; p: FetchProgress } | undefined;
    const watch: { preempted?: ReadyAssignment | undefined } = {};
    const reportTimer = setInterval(() => void (last && this.reporter.make(last.phase, subject, last.p).then(() => this.reporter.flush(ac.signal)).catch(() => undefined)), this.o.reportSeconds * 1000);
    const checkinTimer = setInterval(() => void this.watchPriority(a, ac, watch), this.o.transferCheckinSeconds * 1000);
    try {
      const result = await runTransfer({
        store: this.store,
        header,
        channel: a.channel,
        fetcher: { concurrency: this.o.concurrency, maxBytesPerSecond: this.o.maxBytesPerSecond, maxRetryMs: RETRY_CAP_MS, ...this.o.fetcher, cacheDir: this.o.cacheDir, sources },
        onProgress: (phase, p) => {
          last = { phase, p };
          try {
            this.o.onProgress?.(phase, p);
          } catch {
            // a listener's bug must not stop a transfer
          }
        },
        signal: ac.signal,
      });
      await this.reporter.make('committed', subject, last?.p, null);
      await this.commits.set(result.channel, result.release);
      if (!this.o.keepCache) await pruneCache(this.o.cacheDir, this.store, this.o.trust, Math.floor(this.o.now())).catch(() => undefined); // a failed prune loses nothing: the next commit prunes again
      const hookError = await this.runHook(result.ref, signal);
      await this.reporter.flush(signal);
      return { kind: 'committed', result, hookError };
    } catch (err) {
      const by = watch.preempted;
      if (by && !signal?.aborted) {
        await this.reporter.make('idle', subject, last?.p, { code: 'FERRY_ERR_ABORTED', message: `preempted by urgent release ${by.release} on ${by.channel}` });
        return { kind: 'waiting', retryAfter: 0, preempted: true };
      }
      throw err;
    } finally {
      clearInterval(reportTimer);
      clearInterval(checkinTimer);
      ac.abort(new FerryError('FERRY_ERR_ABORTED', 'the transfer ended')); // a check-in or report flush the timers started ends with it
      signal?.removeEventListener('abort', stop);
    }
  }

  /** A check-in during a transfer: an urgent release of another bundle aborts it. */
  private async watchPriority(current: ReadyAssignment, ac: AbortController, watch: { preempted?: ReadyAssignment | undefined }): Promise<void> {
    if (ac.signal.aborted) return;
    try {
      const answer = await this.checkin(ac.signal);
      const p = preemptor(answer.assignments, current, this.o.channels, (b) => this.isBad(b));
      if (!p || ac.signal.aborted) return;
      watch.preempted = p;
      ac.abort(new FerryError('FERRY_ERR_ABORTED', `preempted by urgent release ${p.release} on channel ${p.channel}`));
    } catch {
      // offline: the transfer goes on
    }
  }

  /** Runs the on-commit hook; its failure is reported, not thrown. */
  private async runHook(ref: string, signal?: AbortSignal): Promise<FerryError | undefined> {
    if (!this.o.onCommit) return undefined;
    try {
      await this.o.onCommit(ref, signal ?? new AbortController().signal);
      return undefined;
    } catch (err) {
      const e = isFerryError(err) ? err : new FerryError('FERRY_ERR_AGENT_HOOK', `on-commit for ${ref}: ${(err as Error).message}`, { cause: err });
      await this.reporter.make('committed', {}, undefined, { code: e.code, message: e.message }).catch(() => undefined);
      return e;
    }
  }

  private isBad(bundle: Digest): boolean {
    const until = this.bad.get(bundle);
    return until !== undefined && until > this.o.now();
  }

  /** Seconds to wait after an outcome. */
  private delayAfter(out: SyncOutcome): number {
    switch (out.kind) {
      case 'current':
        return out.retryAfter;
      case 'committed':
        return 0;
      case 'waiting':
        return out.retryAfter;
      case 'failed': {
        if (!out.error.retryable) return this.o.checkinSeconds;
        const after = out.error.details?.retryAfterMs as number | undefined;
        return after !== undefined ? after / 1000 : backoffMs(this.failures - 1, this.o.minBackoffSeconds * 1000, this.o.maxBackoffSeconds * 1000) / 1000;
      }
    }
  }

  /** Waits; after a network failure the servers are probed meanwhile and the first answer ends the wait. */
  private async pause(seconds: number, signal: AbortSignal | undefined, probe: boolean): Promise<void> {
    if (seconds <= 0) return;
    if (!probe) return void (await sleep(seconds * 1000, undefined, { signal }).catch(() => undefined));
    const waker = new LinkWaker({ everyMs: this.o.probeSeconds * 1000, timeoutMs: 30_000, probe: (s) => this.api.probe(signal ? AbortSignal.any([signal, s]) : s) });
    await waker.wait(seconds * 1000, signal ?? new AbortController().signal, true).catch(() => undefined);
  }
}

/** The release and manifest each channel runs in the store (none for a channel never applied). */
type Installed = Record<string, { release: number; manifest: Digest }>;

async function installedReleases(store: Store, channels: readonly string[]): Promise<Installed> {
  const installed: Installed = {};
  for (const c of channels) {
    const s = await store.getChannel(c);
    if (s) installed[c] = { release: s.release, manifest: s.manifest };
  }
  return installed;
}

/** A failure in which no server answered: the link may be down, so the wait after it probes. */
function linkDown(out: SyncOutcome): boolean {
  return out.kind === 'failed' && out.error.retryable && out.error.code === 'FERRY_ERR_NETWORK';
}

function subjectOf(a: Assignment | undefined): { channel?: string; release?: number | null; bundle?: Digest | null } {
  return a ? { channel: a.channel, release: a.release ?? null, bundle: a.bundle?.id ?? null } : {};
}
