// Load generation for the server bench with autocannon: every connection is one simulated agent
// (its own token and request counter) checking in, or a client fetching random chunks.
import autocannon from 'autocannon';
import { checkinBody, report } from './fleet.mjs';

/** Figures of one autocannon run. */
function figures(r, seconds) {
  return {
    requests: r.requests.total,
    rps: r.requests.total / seconds,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    bytesPerSecond: r.throughput.total / seconds,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
}

async function runCannon(opts) {
  const t0 = performance.now();
  const r = await autocannon({ timeout: 30, ...opts });
  return figures(r, (performance.now() - t0) / 1000);
}

/**
 * `agents.length` connections, connection i being agent i, checking in (inventory digest only,
 * with one progress report) for `duration` seconds against `urls` (spread evenly). `rate`: check-ins
 * per second offered in all (open loop), or unset to go as fast as answers come (closed loop).
 */
export async function checkinLoad(urls, agents, { layers, bundle, duration, rate }) {
  let next = 0;
  const setupClient = (client) => {
    const a = agents[next++ % agents.length];
    client.setRequests([
      {
        method: 'POST',
        path: `/v1/agents/${a.id}/checkin`,
        headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' },
        setupRequest: (req) => {
          const r = report(a, bundle);
          req.body = JSON.stringify({ ...checkinBody(a, layers, false), reports: [r] });
          return req;
        },
      },
    ]);
  };
  return runCannon({ url: urls.length === 1 ? urls[0] : urls, connections: agents.length, duration, setupClient, ...(rate ? { overallRate: rate } : {}) });
}

/** `connections` clients GETting random chunks (names: hex) under `${base}/repo/chunks/` for `duration` seconds. */
export async function chunkLoad(bases, names, { connections, duration }) {
  let seed = 1;
  const pick = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return names[seed % names.length];
  };
  const setupClient = (client) => {
    client.setRequests([{ method: 'GET', path: '/repo/chunks/x', setupRequest: (req) => ({ ...req, path: `/repo/chunks/${pick()}` }) }]);
  };
  return runCannon({ url: bases.length === 1 ? bases[0] : bases, connections, duration, setupClient });
}
