/**
 * Producers of text bodies made from the word list: documentation prose, JavaScript, Python,
 * configuration files and shell scripts. Each call returns a few KB of complete lines.
 */
import { Rng } from '../rng.js';
import { identifier, sentence, word } from '../words.js';
import type { Producer } from './binary.js';

const TEXT_BLOCK = 6 * 1024;

function lines(rng: Rng, emit: (rng: Rng, out: string[]) => void, head?: string): Producer {
  let first = true;
  return () => {
    const out: string[] = [];
    if (first && head !== undefined) out.push(head);
    first = false;
    let n = 0;
    while (n < TEXT_BLOCK) {
      const before = out.length;
      emit(rng, out);
      for (let i = before; i < out.length; i++) n += (out[i]?.length ?? 0) + 1;
    }
    return Buffer.from(`${out.join('\n')}\n`, 'latin1');
  };
}

/** Wraps words into lines of at most `width` characters. */
function wrap(text: string, width: number, indent = ''): string[] {
  const result: string[] = [];
  let line = indent;
  for (const w of text.split(' ')) {
    if (line.length + w.length + 1 > width && line.trim() !== '') {
      result.push(line.trimEnd());
      line = indent;
    }
    line += `${w} `;
  }
  if (line.trim() !== '') result.push(line.trimEnd());
  return result;
}

function paragraph(rng: Rng): string {
  const parts: string[] = [];
  const n = rng.int(2, 7);
  for (let i = 0; i < n; i++) parts.push(sentence(rng));
  return parts.join(' ');
}

/** Documentation, licences, changelogs, READMEs: wrapped paragraphs with occasional headings. */
export function proseProducer(seed: number): Producer {
  return lines(new Rng(seed), (rng, out) => {
    if (rng.chance(0.12)) out.push(`## ${sentence(rng).slice(0, -1)}`, '');
    else if (rng.chance(0.1)) for (let i = rng.int(2, 5); i > 0; i--) out.push(`  * ${sentence(rng)}`);
    else out.push(...wrap(paragraph(rng), rng.int(70, 79)));
    out.push('');
  });
}

function jsFunction(rng: Rng, out: string[]): void {
  const f = identifier(rng);
  const a = identifier(rng);
  const b = identifier(rng);
  const x = identifier(rng);
  if (rng.chance(0.4)) out.push('/**', ` * ${sentence(rng)}`, ` * @param {${rng.pick(['string', 'number', 'object'])}} ${a}`, ' */');
  out.push(`${rng.chance(0.5) ? 'export ' : ''}${rng.chance(0.3) ? 'async ' : ''}function ${f}(${a}, ${b}) {`);
  for (let i = rng.int(1, 6); i > 0; i--) {
    const k = rng.int(0, 4);
    if (k === 0) out.push(`  const ${x}${i} = ${a}.${identifier(rng)}(${rng.int(0, 4096)});`);
    else if (k === 1) out.push(`  if (${b} === ${rng.pick(['null', 'undefined', "''", '0'])}) {`, `    throw new Error('${word(rng)} ${word(rng)} ${word(rng)}');`, '  }');
    else if (k === 2) out.push(`  for (const ${x} of ${a}.${identifier(rng)}) ${b}.push(${x});`);
    else if (k === 3) out.push(`  // ${sentence(rng)}`);
    else out.push(`  ${b}.${identifier(rng)} = ${rng.chance(0.5) ? `'${word(rng)}'` : String(rng.int(0, 100))};`);
  }
  out.push(`  return ${rng.chance(0.5) ? x + '1' : b};`, '}', '');
}

/** JavaScript modules: imports, documented functions, exports. */
export function jsProducer(seed: number): Producer {
  const head = `'use strict';\nconst { ${identifier(new Rng(seed))} } = require('./${word(new Rng(seed + 1))}');\n`;
  return lines(new Rng(seed), jsFunction, head);
}

function pyFunction(rng: Rng, out: string[]): void {
  const snake = (): string => identifier(rng).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const inClass = rng.chance(0.3);
  const ind = inClass ? '    ' : '';
  if (inClass) out.push(`class ${word(rng).replace(/^./, (c) => c.toUpperCase())}${rng.pick(['Error', 'Handler', 'Config', 'Base'])}(object):`, `    """${sentence(rng)}"""`, '');
  const a = snake();
  out.push(`${ind}def ${snake()}(${inClass ? 'self, ' : ''}${a}, ${snake()}=None):`, `${ind}    """${sentence(rng)}"""`);
  for (let i = rng.int(1, 5); i > 0; i--) {
    const k = rng.int(0, 3);
    if (k === 0) out.push(`${ind}    ${snake()} = ${a}.${snake()}(${rng.int(0, 512)})`);
    else if (k === 1) out.push(`${ind}    if ${a} is None:`, `${ind}        raise ValueError("${word(rng)} ${word(rng)}")`);
    else if (k === 2) out.push(`${ind}    # ${sentence(rng)}`);
    else out.push(`${ind}    for ${snake()} in ${a}:`, `${ind}        yield ${snake()}`);
  }
  out.push(`${ind}    return ${a}`, '');
}

/** Python modules. */
export function pythonProducer(seed: number): Producer {
  return lines(new Rng(seed), pyFunction, '# -*- coding: utf-8 -*-\nimport os\nimport sys\n');
}

function configValue(rng: Rng): string {
  const k = rng.int(0, 4);
  if (k === 0) return String(rng.int(0, 65535));
  if (k === 1) return rng.pick(['yes', 'no', 'true', 'false', 'on', 'off']);
  if (k === 2) return `/${rng.pick(['etc', 'var/lib', 'usr/share', 'run'])}/${word(rng)}/${identifier(rng)}`;
  if (k === 3) return `"${word(rng)} ${word(rng)}"`;
  return word(rng);
}

/** Configuration files: commented key = value lines in sections. */
export function configProducer(seed: number): Producer {
  return lines(new Rng(seed), (rng, out) => {
    if (rng.chance(0.15)) out.push('', `[${word(rng)}${rng.chance(0.3) ? '.' + word(rng) : ''}]`);
    if (rng.chance(0.4)) out.push(`# ${sentence(rng)}`);
    const key = `${word(rng)}_${identifier(rng).toLowerCase()}`;
    out.push(`${rng.chance(0.25) ? '#' : ''}${key} = ${configValue(rng)}`);
  });
}

/** Shell scripts (maintainer scripts, wrappers). */
export function shellProducer(seed: number): Producer {
  return lines(
    new Rng(seed),
    (rng, out) => {
      const w = word(rng);
      if (rng.chance(0.3)) out.push(`if [ "$1" = "${rng.pick(['configure', 'remove', 'upgrade', 'purge'])}" ]; then`, `    ${w} --${word(rng)} /etc/${word(rng)} || true`, 'fi');
      else if (rng.chance(0.3)) out.push(`# ${sentence(rng)}`);
      else out.push(`${identifier(rng).toUpperCase()}="\${${identifier(rng).toUpperCase()}:-${configValue(rng)}}"`);
    },
    '#!/bin/sh\nset -e\n',
  );
}
