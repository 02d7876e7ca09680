/**
 * Process-wide memory settings of the `ferry` executable: the environment bin/ferry starts node
 * in, and the V8 setting main.ts applies before anything else loads for the commands that run on
 * a device (`ferry apply`, `ferry agent`: a 128 MB peak RSS budget, bench/README.md "Figures:
 * apply memory").
 */
import { setFlagsFromString } from 'node:v8';

let capped = false;

/**
 * Keeps V8's young generation at its initial size (two 1 MiB semi-spaces) instead of letting it
 * grow to 2 x 16 MiB while a rebuild allocates fast: the rebuild's garbage is short-lived, so a
 * small young generation costs a few more scavenges and saves up to ~30 MB of RSS (measured on
 * security-update with the node flag: 153 -> 126 MiB). `--max-semi-space-size` would do the same but is read only
 * when the heap is set up, so it needs a node flag; the growth factor is read each time the young
 * generation would grow, so it works from here. Idempotent.
 */
export function capYoungGeneration(): void {
  if (capped) return;
  capped = true;
  setFlagsFromString('--semi-space-growth-factor=1');
}

/**
 * The environment bin/ferry starts every ferry process in (read there when the process starts, so
 * it cannot be set from here): glibc's mmap threshold fixed at its default 128 KiB instead of
 * rising to the largest buffer freed, which keeps freed multi-MiB buffers resident (bin/ferry
 * says more). Keep the two in step; packages/cli/test/launcher.test.ts checks that they are.
 */
export const RUNTIME_ENV: Readonly<Record<string, string>> = Object.freeze({ MALLOC_MMAP_THRESHOLD_: '131072' });

/**
 * `env` with RUNTIME_ENV's settings it lacks: for a ferry process started without bin/ferry (the
 * demo's agent child, the benches), so that it runs as the installed command does.
 */
export function runtimeEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...RUNTIME_ENV, ...env };
}
