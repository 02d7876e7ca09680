/**
 * Prometheus metrics (prom-client), one registry per server: requests by route and status, bytes
 * of repository responses sent, bundles built and their build time, check-in latency, live
 * dashboard clients, and agents by state (read from the shared database at each scrape, so every
 * server behind one PostgreSQL reports the whole fleet: aggregate those with max, not sum).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import type { State } from './state/state.js';

/** Options of the metrics. */
export interface MetricsOptions {
  state: State;
  /** Seconds between check-ins an agent is told by default (stale = 3 of its intervals). */
  checkinInterval: number;
  /** Also export the process's own metrics (CPU, memory, event loop lag), prefixed `ferry_` (default true). */
  processMetrics?: boolean;
}

const CHECKIN_ROUTE = '/v1/agents/:id/checkin';
const REPO_ROUTE = '/repo/:kind/:hex';

/** The server's metrics. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly repoBytes: Counter<'kind'>;
  readonly bundlesBuilt: Counter<'result'>;
  readonly buildSeconds: Histogram;
  readonly checkinSeconds: Histogram;
  readonly sseClients: Gauge;

  constructor(o: MetricsOptions) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'ferry_http_requests_total', help: 'HTTP requests answered, by method, route template and status', labelNames: ['method', 'route', 'status'], registers });
    this.repoBytes = new Counter({ name: 'ferry_repo_bytes_served_total', help: 'Body bytes of repository responses (headers, chunks) sent in full', labelNames: ['kind'], registers });
    this.bundlesBuilt = new Counter({ name: 'ferry_bundles_built_total', help: 'Bundle builds this process finished, by result (ready, failed)', labelNames: ['result'], registers });
    this.buildSeconds = new Histogram({ name: 'ferry_bundle_build_seconds', help: 'Time to build a bundle (differ, signing, writing the repository)', buckets: [1, 5, 15, 60, 300, 900, 3600], registers });
    this.checkinSeconds = new Histogram({ name: 'ferry_checkin_duration_seconds', help: 'Time to answer an agent check-in', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.sseClients = new Gauge({ name: 'ferry_dashboard_clients', help: 'Live event streams (dashboards) open on this process', registers });
    const { state, checkinInterval } = o;
    new Gauge({
      name: 'ferry_agents',
      help: 'Agents by the state of their last report (unknown: none yet; stale: not seen for 3 check-in intervals, also counted in its state)',
      labelNames: ['state'],
      registers,
      async collect() {
        const { states, stale } = await state.agents.counts(checkinInterval);
        this.reset();
        for (const [s, n] of Object.entries(states)) this.set({ state: s }, n);
        this.set({ state: 'stale' }, stale);
      },
    });
    if (o.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'ferry_' });
  }

  /** Counts every answered request (and check-in latency, repository bytes) from fastify's onResponse. */
  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const status = reply.statusCode;
      this.requests.inc({ method: request.method, route, status: String(status) });
      if (route === CHECKIN_ROUTE && status === 200) this.checkinSeconds.observe(reply.elapsedTime / 1000);
      if (route === REPO_ROUTE && request.method === 'GET' && (status === 200 || status === 206) && reply.raw.writableFinished) {
        const kind = (request.params as { kind?: string }).kind === 'headers' ? 'headers' : 'chunks';
        this.repoBytes.inc({ kind }, Number(reply.getHeader('content-length') ?? 0));
      }
    });
  }

  /** Records a finished build. */
  built(ok: boolean, ms: number): void {
    this.bundlesBuilt.inc({ result: ok ? 'ready' : 'failed' });
    if (ok) this.buildSeconds.observe(ms / 1000);
  }
}
