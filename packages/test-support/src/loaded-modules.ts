/**
 * Which modules a node process loads: a module resolve hook (node:module `register`, installed
 * with `--import` before anything else) prints every resolved URL matching a pattern to stderr.
 * Tests use it to check that a command or an import does not load what it should not (TypeBox in
 * `@ferry/core`, the differ or the agent in `ferry apply`), a cost that shows only as RSS.
 */
import { spawnSync } from 'node:child_process';

const MARK = 'ferry-loaded-module ';

/** What one run printed and the matching modules it loaded (resolved file URLs, in load order). */
export interface LoadedModules {
  status: number | null;
  stdout: string;
  stderr: string;
  modules: string[];
}

/** Runs `node ...args` in `cwd` and lists the resolved module URLs that match `pattern`. */
export function loadedModules(args: readonly string[], opts: { cwd?: string; pattern: RegExp; env?: NodeJS.ProcessEnv }): LoadedModules {
  const hook = `export async function resolve(s, c, n) { const r = await n(s, c); if (${opts.pattern.toString()}.test(r.url)) process.stderr.write(${JSON.stringify(MARK)} + r.url + "\\n"); return r; }`;
  const installer = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(installer)}`, ...args], { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8' });
  const lines = r.stderr.split('\n');
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: lines.filter((l) => !l.startsWith(MARK)).join('\n'),
    modules: [...new Set(lines.filter((l) => l.startsWith(MARK)).map((l) => l.slice(MARK.length)))],
  };
}
