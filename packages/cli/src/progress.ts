/**
 * Progress bars on stderr (cli-progress), shown only when stderr is a terminal and the output is
 * not --json: pipes, logs and scripts get nothing but the result.
 */
import type cliProgress from 'cli-progress';
import type { Progress } from '@ferry/core';
import type { CliContext } from './context.js';
import { count, humanBytes } from './format.js';
import { loadCliProgress } from './lazy.js';

/** What a command reports progress to. */
export interface ProgressSink {
  /** Takes a core progress event (pass as `onProgress`). */
  update: (p: Progress) => void;
  /** Removes the bar; call before printing the result, also on failure. */
  stop(): void;
}

/** Options for createProgress. */
export interface ProgressOptions {
  /** --json was given (no bar). */
  json: boolean;
  /** What `done`/`total` count (default bytes). */
  unit?: 'bytes' | 'items';
}

const SILENT: ProgressSink = { update: () => {}, stop: () => {} };

/** A progress sink: a bar on a TTY stderr, else silent. */
export function createProgress(ctx: CliContext, opts: ProgressOptions): ProgressSink {
  if (opts.json || !ctx.stderr.isTTY) return SILENT;
  const fmt = opts.unit === 'items' ? count : humanBytes;
  let bar: cliProgress.SingleBar | undefined;
  let total = 0;
  return {
    update(p) {
      const known = p.total !== undefined && p.total > 0;
      const payload = { phase: p.phase, done: fmt(p.done), whole: known ? fmt(p.total!) : '?' };
      if (!bar) {
        const format = known ? '{phase} [{bar}] {percentage}% {done}/{whole} ETA {eta_formatted}' : '{phase} {done}';
        bar = new (loadCliProgress().SingleBar)({ stream: ctx.stderr, format, hideCursor: true, clearOnComplete: true, barsize: 30, fps: 5 });
        total = known ? p.total! : 1;
        bar.start(total, 0, payload);
      } else if (known && p.total !== total) {
        // a new phase counts against its own total (apply: each layer's bytes, then the commit)
        total = p.total!;
        bar.setTotal(total);
      }
      bar.update(known ? Math.min(p.done, p.total!) : 0, payload);
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
