/**
 * Live events for the dashboard (docs/protocol.md section 5, `GET /v1/events`): server-sent events
 * fed by the state's change feed, which carries this process's changes and, on PostgreSQL, every
 * other server's (state/changes.ts), so each dashboard sees the whole fleet whichever server it
 * is connected to.
 *
 * A client first gets a `snapshot` (every agent, channel and bundle), then `agent` events (one
 * agent's new view) and `channels` / `bundles` events (the whole lists, when they changed), and a
 * `now` event (the server clock) every heartbeat. Changes are coalesced: an agent that reports ten
 * times within one flush interval is sent once. The number of clients is bounded (more get 503) and
 * so is what waits for each: before each batch of events, a client with more than `maxBuffered`
 * bytes still queued from earlier batches is dropped (EventSource reconnects and starts over from a
 * fresh snapshot). A batch itself is written whole, since one flush may legitimately exceed what a
 * socket takes at once.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { FerryError } from '@ferry/core';
import type { Change } from './state/changes.js';
import type { State } from './state/state.js';
import { agentSummary, bundleSummaries, channelSummaries } from './state/views.js';

/** Limits and pacing of the live events. */
export interface EventOptions {
  /** Event streams open at once (default 32); more are refused with 503 FERRY_ERR_SERVER_BUSY. */
  maxClients: number;
  /** Bytes still queued for one client from earlier batches before it is dropped as too slow (default 4 MiB). */
  maxBuffered: number;
  /** Milliseconds changes are gathered before they are sent (default 500). */
  flushMs: number;
  /** Milliseconds between `now` events, which also keep idle connections open (default 15 s). */
  heartbeatMs: number;
  /** Channel and bundle lists are recomputed at most this often, in milliseconds (default 2 s). */
  summaryMs: number;
}

/** What the hub works with. */
export interface EventHubOptions {
  state: State;
  events: EventOptions;
  /** Clock in unix milliseconds. */
  now: () => number;
  checkinInterval: number;
  log: FastifyBaseLogger;
  /** Told the number of open streams whenever it changes (a metric). */
  onClients?: (n: number) => void;
}

/** One server-sent event frame (JSON.stringify never writes a raw newline, so one data line is enough). */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A stream; until its snapshot is written, the agents sent to it are noted to be sent again after. */
interface Client {
  pending: boolean;
  touched: Set<string>;
}

/** The live event streams of one server process. */
export class EventHub {
  private readonly clients = new Map<ServerResponse, Client>();
  private readonly dirtyAgents = new Set<string>();
  private summariesDirty = false;
  private lastSummaries = 0;
  private sent = { channels: '', bundles: '' };
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly unsubscribe: () => void;

  constructor(private readonly o: EventHubOptions) {
    this.unsubscribe = o.state.changes.on((c) => this.changed(c));
  }

  /** Open streams. */
  get size(): number {
    return this.clients.size;
  }

  /** Refuses a new stream when the hub is full (before anything is written). */
  admit(): void {
    if (this.clients.size >= this.o.events.maxClients) throw new FerryError('FERRY_ERR_SERVER_BUSY', `${this.clients.size} live event streams are open, the most this server keeps; retry later`);
  }

  /** Starts streaming to `res` (headers already accepted): the snapshot, then changes. */
  async attach(res: ServerResponse): Promise<void> {
    this.admit();
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const client: Client = { pending: true, touched: new Set() };
    this.clients.set(res, client);
    this.o.onClients?.(this.clients.size);
    res.once('close', () => this.drop(res));
    res.write('retry: 3000\n\n');
    this.heartbeat ??= setInterval(() => {
      this.prune();
      this.broadcast(sseFrame('now', { now: Math.floor(this.o.now() / 1000) }));
    }, this.o.events.heartbeatMs).unref();
    try {
      this.send(res, await this.snapshotFrame());
    } catch (err) {
      this.drop(res);
      throw err;
    }
    // an agent event sent before the snapshot may be newer than what the snapshot read: send it again
    client.pending = false;
    for (const id of client.touched) this.dirtyAgents.add(id);
    if (client.touched.size > 0) this.schedule(this.o.events.flushMs);
  }

  private drop(res: ServerResponse): void {
    if (!this.clients.delete(res)) return;
    if (!res.destroyed) res.destroy();
    this.o.onClients?.(this.clients.size);
    if (this.clients.size === 0) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  private send(res: ServerResponse, frame: string): void {
    if (this.clients.has(res)) res.write(frame);
  }

  /** Drops the clients that still have more than the cap queued: call before each batch. */
  private prune(): void {
    for (const res of [...this.clients.keys()]) {
      if (res.writableLength <= this.o.events.maxBuffered) continue;
      this.o.log.info({ buffered: res.writableLength }, 'live event client too slow; dropped');
      this.drop(res);
    }
  }

  /** Sends a frame to every stream; `agent` names the agent it is about. */
  private broadcast(frame: string, agent?: string): void {
    for (const [res, c] of [...this.clients]) {
      if (agent !== undefined && c.pending) c.touched.add(agent);
      this.send(res, frame);
    }
  }

  private changed(c: Change): void {
    if (this.clients.size === 0) return;
    if (c.kind === 'resync') {
      void this.snapshotFrame().then((f) => (this.prune(), this.broadcast(f)), (err: unknown) => this.o.log.error({ err }, 'live events: snapshot failed'));
      return;
    }
    if (c.kind === 'token') return;
    if (c.kind === 'agent') this.dirtyAgents.add(c.key);
    this.summariesDirty = true;
    this.schedule(this.o.events.flushMs);
  }

  private schedule(ms: number): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flushing = this.flush().catch((err: unknown) => this.o.log.error({ err }, 'live events: flush failed'));
    }, ms);
  }

  private async flush(): Promise<void> {
    const ids = [...this.dirtyAgents];
    this.dirtyAgents.clear();
    const now = this.o.now();
    this.prune();
    if (ids.length > 0) {
      for (const a of await this.o.state.agents.many(ids)) this.broadcast(sseFrame('agent', agentSummary(a, now, this.o.checkinInterval)), a.id);
    }
    if (!this.summariesDirty) return;
    const wait = this.lastSummaries + this.o.events.summaryMs - now;
    if (wait > 0) return this.schedule(wait);
    this.summariesDirty = false;
    this.lastSummaries = now;
    const agents = await this.o.state.agents.list();
    const [channels, bundles] = await Promise.all([channelSummaries(this.o.state, agents), bundleSummaries(this.o.state, agents)]);
    // only what changed goes out
    for (const [event, value] of [['channels', channels], ['bundles', bundles]] as const) {
      const json = JSON.stringify(value);
      if (json === this.sent[event]) continue;
      this.sent[event] = json;
      this.broadcast(`event: ${event}\ndata: ${json}\n\n`);
    }
  }

  private async snapshotFrame(): Promise<string> {
    const now = this.o.now();
    const agents = await this.o.state.agents.list();
    const [channels, bundles] = await Promise.all([channelSummaries(this.o.state, agents), bundleSummaries(this.o.state, agents)]);
    return sseFrame('snapshot', { now: Math.floor(now / 1000), agents: agents.map((a) => agentSummary(a, now, this.o.checkinInterval)), channels, bundles });
  }

  /** Ends every stream and stops (the server is closing: streams would hold it open). */
  async close(): Promise<void> {
    this.unsubscribe();
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    await this.flushing;
    for (const res of [...this.clients.keys()]) {
      res.end();
      this.drop(res);
    }
  }
}
