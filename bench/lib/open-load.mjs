// Open-loop check-in load for the server bench. autocannon's `overallRate` is not open loop at
// 1,000 connections: each connection sends at most `rate / connections` requests a second, reset
// by its own 1 s interval, and all intervals start in the same tick, so 1,000 agents at 1/s arrive
// as one burst of 1,000 requests each second (the last waits for the 999 before it); and its
// coordinated-omission correction takes `1 / rate` as the expected interval in milliseconds (1 ms
// at 1 request a second per connection), so a 500 ms answer is recorded as 500 samples of
// 500, 499, ... 1 ms. Here request k is sent at t0 + k / rate (agent k mod n: each agent checks in
// every n / rate seconds, the fleet evenly spread), each agent on its own keep-alive connection,
// and its latency runs from when it was due, not from when the generator got round to it; how late
// the generator itself sent requests is returned beside it (sentLateP99).
import { Agent, request } from 'node:http';
import { checkinBody, report } from './fleet.mjs';

/** Seconds of load before the measured window: every agent's connection is opened in it. */
const WARMUP_S = 1;
/** An answer later than this counts as a timeout (as autocannon's `timeout: 30`). */
const TIMEOUT_MS = 30_000;

const percentile = (sorted, q) => (sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);

/** Sends one check-in of `agent` (state: its keep-alive http.Agent); resolves with its outcome. */
function checkinOnce(agent, state, body) {
  return new Promise((resolve) => {
    const req = request(state.url, { method: 'POST', agent: state.http, path: `/v1/agents/${agent.id}/checkin`, headers: { authorization: `Bearer ${agent.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: TIMEOUT_MS }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes }));
      res.on('error', () => resolve({ error: true }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { timeout: true })));
    req.on('error', (err) => resolve({ error: true, timeout: err.timeout === true }));
    req.end(body);
  });
}

/**
 * `rate` check-ins a second in all for `duration` seconds (after WARMUP_S unmeasured), spread
 * evenly over `agents` (each on its own connection to `urls[i % urls.length]`). Returns the figures
 * load.mjs returns for autocannon runs.
 */
export async function openCheckinLoad(urls, agents, { layers, bundle, duration, rate }) {
  const states = agents.map((a, i) => ({ url: urls[i % urls.length], http: new Agent({ keepAlive: true, maxSockets: 1 }) }));
  const interval = 1000 / rate;
  const total = Math.round(rate * (duration + WARMUP_S));
  const measuredFrom = Math.round(rate * WARMUP_S);
  const latencies = [];
  /** How late the generator sent each measured request (its own share of the latency). */
  const late = [];
  const r = { non2xx: 0, errors: 0, timeouts: 0, bytes: 0 };
  const pending = [];
  const t0 = performance.now() + 20;
  const send = (k) => {
    const i = k % agents.length;
    const a = agents[i];
    const body = JSON.stringify({ ...checkinBody(a, layers, false), reports: [report(a, bundle)] });
    const due = t0 + k * interval;
    if (k >= measuredFrom) late.push(performance.now() - due);
    pending.push(checkinOnce(a, states[i], body).then((o) => {
      if (k < measuredFrom) return;
      if (o.error) {
        r.errors++;
        if (o.timeout) r.timeouts++;
      } else if (o.status < 200 || o.status > 299) r.non2xx++;
      else {
        latencies.push(performance.now() - due);
        r.bytes += o.bytes;
      }
    }));
  };
  try {
    await new Promise((resolve) => {
      let k = 0;
      const tick = () => {
        while (k < total && t0 + k * interval <= performance.now()) send(k++);
        if (k < total) setTimeout(tick, Math.max(0, t0 + k * interval - performance.now()));
        else resolve();
      };
      setTimeout(tick, 20);
    });
    await Promise.all(pending);
  } finally {
    for (const s of states) s.http.destroy();
  }
  latencies.sort((x, y) => x - y);
  late.sort((x, y) => x - y);
  return { sentLateP99: percentile(late, 0.99), requests: latencies.length, rps: latencies.length / duration, p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9), p99: percentile(latencies, 0.99), max: latencies.at(-1), bytesPerSecond: r.bytes / duration, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts };
}
