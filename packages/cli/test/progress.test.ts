/**
 * The progress bar on a terminal: each phase is drawn against its own total (an apply's layers,
 * then its commit, whose total is the payload), and nothing is drawn on a pipe or with --json.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { CliContext } from '../src/context.js';
import { createProgress } from '../src/progress.js';

/** A writable that says it is a terminal and keeps what is written, escape codes stripped. */
function terminal(isTTY: boolean): { stream: Writable & { isTTY: boolean; columns: number }; text: () => string } {
  let out = '';
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString();
        done();
      },
    }),
    { isTTY, columns: 120 },
  );
  // eslint-disable-next-line no-control-regex
  return { stream, text: () => out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '\n') };
}

function context(stderr: Writable): CliContext {
  return { stdout: stderr, stderr, cwd: '/', debug: false, version: 'test', signal: new AbortController().signal } as unknown as CliContext;
}

describe('createProgress', () => {
  it('draws each phase against its own total', () => {
    const t = terminal(true);
    const p = createProgress(context(t.stream), { json: false });
    p.update({ phase: 'layer 1/1', done: 50 << 20, total: 200 << 20 });
    p.update({ phase: 'layer 1/1', done: 200 << 20, total: 200 << 20 });
    p.update({ phase: 'commit', done: 3 << 20, total: 3 << 20 });
    p.stop();
    const lines = t.text().split('\n').filter((l) => l.startsWith('commit'));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.at(-1)).toMatch(/^commit \[=+\] 100% 3\.0 MiB\/3\.0 MiB/);
    expect(t.text()).toMatch(/layer 1\/1 \[[=-]+\] \d+% [\d.]+ MiB\/200\.0 MiB/);
  });

  it('draws nothing on a pipe or with --json', () => {
    for (const [tty, json] of [[false, false], [true, true]] as const) {
      const t = terminal(tty);
      const p = createProgress(context(t.stream), { json });
      p.update({ phase: 'layer 1/1', done: 1, total: 2 });
      p.stop();
      expect(t.text()).toBe('');
    }
  });
});
