// Where a transfer's time goes over an emulated link (bench/link.mjs): the link's up/down state and
// the bytes it delivered, sampled every SAMPLE_MS from linksim's stats, beside the agent's own
// events (reports, and a progress line per verified chunk) timed as the bench receives them.
// All times are seconds since the agent was started.

/** How often the link is sampled. */
export const SAMPLE_MS = 50;

/** Samples a linksim every SAMPLE_MS: `{ t, up, down }` (down: bytes delivered towards the agent). */
export function sampleLink(sim, t0) {
  const samples = [];
  const take = () => {
    const s = sim.stats();
    samples.push({ t: (performance.now() - t0) / 1000, up: s.up, down: s.bytesDown });
  };
  take();
  const timer = setInterval(take, SAMPLE_MS);
  return {
    samples,
    stop: () => {
      clearInterval(timer);
      take();
    },
  };
}

/** Up periods `[start, end]` from the samples (a period still open ends at the last sample). */
function upPeriods(samples) {
  const periods = [];
  let start;
  for (const s of samples) {
    if (s.up && start === undefined) start = s.t;
    if (!s.up && start !== undefined) {
      periods.push([start, s.t]);
      start = undefined;
    }
  }
  if (start !== undefined) periods.push([start, samples[samples.length - 1].t]);
  return periods;
}

/** Seconds of [a, b] during which the link was up. */
function upWithin(periods, a, b) {
  return periods.reduce((n, [s, e]) => n + Math.max(0, Math.min(e, b) - Math.max(s, a)), 0);
}

/**
 * The earliest time the link, up as it was, could have carried `seconds` of uptime from the start:
 * the best any agent could do on this schedule (the ideal spreads the uptime evenly instead).
 */
function earliestWith(periods, seconds) {
  let left = seconds;
  for (const [s, e] of periods) {
    if (e - s >= left) return s + left;
    left -= e - s;
  }
  return undefined;
}

/** The first sample at or after `t` whose byte count is higher than at `t`; undefined if none before `until`. */
function firstByteAfter(samples, t, until) {
  const base = samples.findLast((s) => s.t <= t)?.down ?? 0;
  return samples.find((s) => s.t > t && s.t <= until && s.down > base)?.t;
}

/**
 * Each up period's share of [a, b]: its uptime there, the bytes delivered and the time the link sat
 * idle while up (sample intervals with no byte delivered: nothing was queued to send).
 */
function windows(samples, periods, a, b) {
  return periods.filter(([s, e]) => e > a && s < b).map(([s, e]) => {
    const from = Math.max(s, a);
    const to = Math.min(e, b);
    let bytes = 0;
    let idle = 0;
    for (let i = 1; i < samples.length; i++) {
      const p = samples[i - 1];
      const q = samples[i];
      if (p.t < from || q.t > to || !p.up || !q.up) continue;
      bytes += q.down - p.down;
      if (q.down === p.down) idle += q.t - p.t;
    }
    return { at: s, up: to - from, bytes, idle };
  });
}

/**
 * The breakdown: `events` holds `{ t, kind: 'report'|'progress', state|phase, bytesDone, bytesTotal }`
 * in the order received; `rate` is the link's rate in bits/s; `exited` when the agent's process ended.
 */
export function analyse(samples, events, rate, exited) {
  const periods = upPeriods(samples);
  const progress = events.filter((e) => e.kind === 'progress' && e.phase === 'fetching');
  const firstFetch = events.find((e) => e.kind === 'report' && e.state === 'fetching')?.t;
  const firstChunkByte = progress.find((e) => e.bytesDone > 0)?.t;
  const allChunks = events.find((e) => e.kind === 'progress' && e.bytesTotal > 0 && e.bytesDone === e.bytesTotal)?.t;
  const committed = events.find((e) => e.kind === 'report' && e.state === 'committed')?.t;
  const payload = progress.at(-1)?.bytesTotal ?? 0;
  if (firstFetch === undefined || allChunks === undefined || committed === undefined) return undefined;
  // the gap from each return of the link (while chunks are still due) to the first byte after it
  const returns = periods.map(([s]) => s).filter((s) => s > 0 && s > firstFetch && s < allChunks);
  const gaps = returns.map((s) => {
    const first = firstByteAfter(samples, s, allChunks);
    return { at: s, gap: first === undefined ? null : first - s };
  });
  const upFetching = upWithin(periods, firstFetch, allChunks);
  const idealUp = payload / (rate / 8);
  return {
    payload,
    startToFetching: firstFetch, // process start, module loading, lock, check-in, assignment
    fetchingToFirstByte: firstChunkByte === undefined ? null : firstChunkByte - firstFetch, // header download and verification, plan
    transfer: allChunks - firstFetch, // header, plan, every chunk (rebuilds overlap it)
    upDuringTransfer: upFetching,
    downDuringTransfer: allChunks - firstFetch - upFetching,
    idealUp,
    rateWhileUp: upFetching > 0 ? payload / upFetching : 0, // bytes/s of payload per second of uptime
    returns: gaps,
    windows: windows(samples, periods, firstFetch, allChunks),
    gapsTotal: gaps.reduce((n, g) => n + (g.gap ?? 0), 0),
    tail: committed - allChunks, // the last layer's rebuild finishing, commit, cache prune, the committed report
    committed,
    achievable: earliestWith(periods, idealUp), // the payload at the full rate from the start, on this schedule
    exited, // after the commit, --once checks in again to find every channel current
  };
}

/** Prints the breakdown (seconds). */
export function printBreakdown(b, rate) {
  const s = (x) => (x === null || x === undefined ? '-' : `${x.toFixed(2)} s`);
  console.log('where the time went (seconds since the agent process started):');
  console.log(`  start -> 'fetching' report (node start, lock, check-in, assignment): ${s(b.startToFetching)}`);
  console.log(`  'fetching' -> first payload byte verified (header, verify, plan, first chunk): ${s(b.fetchingToFirstByte)}`);
  console.log(`  'fetching' -> last chunk verified: ${s(b.transfer)} (link up ${s(b.upDuringTransfer)}, down ${s(b.downDuringTransfer)}; the payload alone needs ${s(b.idealUp)} of uptime at ${rate / 1e6} Mbit/s)`);
  console.log(`  payload rate while up: ${((b.rateWhileUp * 8) / 1e6).toFixed(3)} Mbit/s of ${rate / 1e6} Mbit/s (${((100 * b.rateWhileUp * 8) / rate).toFixed(1)}%)`);
  console.log(`  link returns during the transfer: ${b.returns.map((g) => `at ${g.at.toFixed(1)} s first byte after ${s(g.gap)}`).join('; ') || 'none'} (total ${s(b.gapsTotal)})`);
  for (const w of b.windows ?? []) console.log(`  up at ${w.at.toFixed(1)} s: ${s(w.up)} up during the transfer, ${(w.bytes / 1e6).toFixed(3)} MB delivered (${((100 * w.bytes * 8) / (rate * w.up)).toFixed(1)}% of the rate), idle while up ${s(w.idle)}`);
  console.log(`  last chunk -> committed (last rebuild, commit, prune): ${s(b.tail)}`);
  console.log(`  the best on this schedule (the payload at the link rate from the process start, nothing else): ${s(b.achievable)}; committed / that: ${b.achievable ? (b.committed / b.achievable).toFixed(3) : '-'}`);
  console.log(`  committed at ${s(b.committed)}; the process exited at ${s(b.exited)} (a last check-in finds the channel current)`);
}
