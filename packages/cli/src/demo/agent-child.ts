/**
 * The demo's agent: `ferry agent --once --json` as a child process (so that it can be killed with
 * SIGKILL like a device losing power), its JSON lines turned into progress and report events.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Report } from '@ferry/core';
import type { FetchProgress } from '@ferry/agent';
import { runtimeEnv } from '../memory.js';

/** The CLI entry point (this file is dist/demo/agent-child.js). */
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** A progress line of `ferry agent --json`: the fetcher's progress and the phase. */
export type ProgressLine = FetchProgress & { phase: 'fetching' | 'applying' };

/** What the child says. */
export interface AgentEvents {
  onProgress?: (p: ProgressLine) => void;
  onReport?: (r: Report) => void;
}

/** A running agent child. */
export interface AgentChild {
  pid: number;
  /** Resolves with the exit code (null when killed) and the tail of stderr. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
}

/** Options of {@link startAgentChild}. */
export interface AgentChildOptions {
  /** Arguments for node before the script (`--import` a preload, `--max-old-space-size`). */
  nodeArgs?: string[] | undefined;
}

/**
 * Starts `ferry agent ARGS --once --json` (`main`: the CLI entry, default this build's) in the
 * environment bin/ferry would give it.
 */
export function startAgentChild(args: string[], main: string | undefined, events: AgentEvents, options: AgentChildOptions = {}): AgentChild {
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), main ?? MAIN, 'agent', ...args, '--once', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: runtimeEnv() });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let msg: { progress?: ProgressLine; report?: Report };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (msg.progress) events.onProgress?.(msg.progress);
    if (msg.report) events.onReport?.(msg.report);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { pid: child.pid!, exited, kill: (s) => void child.kill(s) };
}
