import { it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePythonCorpus } from './helpers/corpus-python.js';
import { makeTarStreamCorpus } from './helpers/corpus-js.js';
import { makeUmociCorpus } from './helpers/corpus-umoci.js';
import { roundTrip } from './helpers/roundtrip.js';

it('probe', async () => {
  const work = await mkdtemp(join(tmpdir(), 'ferry-probe-'));
  const tars: Record<string, string> = { ...(await makePythonCorpus(work)), 'tar-stream': await makeTarStreamCorpus(work), ...(await makeUmociCorpus(work)) };
  const lines: string[] = [];
  for (const [name, t] of Object.entries(tars)) {
    try {
    const r = await roundTrip(t);
    lines.push(`== ${name} ${r.original === r.reassembled} tail=${r.trailer.tail.length}`);
    for (const e of r.entries) lines.push(`  ${JSON.stringify(e.type)} ${e.size} ${e.digest ? 'D' : '-'} raw=${e.raw.length} ${e.path.length}:${e.path.slice(0, 60)}${e.linkname !== undefined ? ` -> ${e.linkname.length}:${e.linkname.slice(0, 40)}` : ''}`);
    } catch (err) { lines.push(`== ${name} ERR ${(err as any).code} ${(err as Error).message}`); }
  }
  await writeFile('/tmp/ferry-scratch/probe.txt', lines.join('\n'));
});
