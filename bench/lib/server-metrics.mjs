// The server's own view of a bench run, from its /metrics: how long check-ins took inside the
// server (ferry_checkin_duration_seconds, fastify's elapsed time: from the request's arrival in
// the event loop to its answer) and how late the event loop ran (the p99 of its delay since the
// previous scrape: prom-client resets it at each scrape). What the load generator measures beyond
// these is time in the kernel's queues and the generator's own lateness.
const BUCKET_RE = /^ferry_checkin_duration_seconds_bucket\{le="([^"]+)"\} (\d+)/;
const LAG_RE = /^ferry_nodejs_eventloop_lag_p99_seconds (\S+)/m;

/** One scrape: check-in histogram buckets (cumulative counts by upper bound) and the event loop's p99 delay. */
export async function scrape(url, token) {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  const text = await res.text();
  const buckets = [];
  for (const line of text.split('\n')) {
    const m = BUCKET_RE.exec(line);
    if (m) buckets.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) });
  }
  return { buckets, lagP99: Number(LAG_RE.exec(text)?.[1] ?? NaN) };
}

/**
 * The server-side p99 of the check-ins answered between two scrapes, as the upper bound of the
 * histogram bucket that holds it (ms), and the event loop's p99 delay over the second (ms).
 */
export function serverSide(before, after) {
  const counts = after.buckets.map((b, i) => ({ le: b.le, count: b.count - (before.buckets[i]?.count ?? 0) }));
  const total = counts.at(-1)?.count ?? 0;
  const p99 = total > 0 ? counts.find((b) => b.count >= 0.99 * total)?.le : undefined;
  return { serverP99: p99 === undefined ? undefined : p99 * 1000, lagP99: after.lagP99 * 1000 };
}
