// Prints the functions with the most self time in a V8 .cpuprofile (from FERRY_BENCH_CPU_PROF).
// Usage: node bench/lib/profile-top.mjs FILE [N]
import { readFile } from 'node:fs/promises';

const [file, n = '25'] = process.argv.slice(2);
const p = JSON.parse(await readFile(file, 'utf8'));
const nodes = new Map(p.nodes.map((x) => [x.id, x]));
const self = new Map();
let total = 0;
for (const [i, id] of p.samples.entries()) {
  const f = nodes.get(id).callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-3).join('/')}:${f.lineNumber + 1}`;
  const dt = p.timeDeltas[i] ?? 0;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
}
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(n))) console.log(`${(v / 1e3).toFixed(0).padStart(8)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
