/** The child-process side of the kill -9 tests (import and apply): run a worker script, kill it mid-work. */
import { spawn } from 'node:child_process';

/** How a child run ended. */
export interface ChildRun {
  /** Killed before it finished. */
  killed: boolean;
  /** Work time the child reported ("done <ms>"), when it finished. */
  doneMs?: number;
}

/**
 * Runs `node script ...args` from `cwd`. The child prints "ready" when its work starts and
 * "done <ms>" when it finished. With `killAfter`, it is SIGKILLed that many ms after "ready";
 * `onReady` gets its pid. A kill that lands after "done" (while exiting) counts as finished.
 */
export function runKillableChild(script: string, args: string[], cwd: string, killAfter?: number, onReady?: (pid: number) => void): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (b: Buffer) => {
      const before = out;
      out += b.toString();
      if (!before.includes('ready\n') && out.includes('ready\n')) {
        if (killAfter !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), killAfter);
        onReady?.(child.pid!);
      }
    });
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    // 'close', not 'exit': all of stdout is in by then
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const done = /done (\d+)/.exec(out);
      if (done && (code === 0 || signal === 'SIGKILL')) resolve({ killed: false, doneMs: Number(done[1]) });
      else if (signal === 'SIGKILL') resolve({ killed: true });
      else reject(new Error(`${script} exited with ${code ?? signal}: ${err || out}`));
    });
  });
}

/** mulberry32, seeded, so a failing kill test can be replayed with its seed (the link emulator's generator). */
export { seededRandom as rng } from '@ferry/linksim';
