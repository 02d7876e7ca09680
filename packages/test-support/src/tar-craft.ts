/**
 * A few tar members written by hand, for shapes real writers emit that the generated corpus cannot
 * reach cheaply (a body of 8 GiB or more has its size only in a pax record). POSIX ustar layout.
 */
const BLOCK = 512;

/** Fields of a hand-made ustar header; `sizeField` overrides the octal size text. */
export interface CraftHeader {
  name: string;
  type?: string;
  size?: number;
  sizeField?: string;
  linkname?: string;
}

function put(block: Buffer, off: number, len: number, text: string): void {
  Buffer.from(text, 'utf8').copy(block, off, 0, len);
}

/** One 512-byte ustar header block with a valid checksum. */
export function tarHeader(h: CraftHeader): Buffer {
  const b = Buffer.alloc(BLOCK);
  put(b, 0, 100, h.name);
  put(b, 100, 8, '0000644\0');
  put(b, 108, 8, '0000000\0');
  put(b, 116, 8, '0000000\0');
  put(b, 124, 12, h.sizeField ?? `${(h.size ?? 0).toString(8).padStart(11, '0')}\0`);
  put(b, 136, 12, '14625362000\0');
  put(b, 156, 1, h.type ?? '0');
  put(b, 157, 100, h.linkname ?? '');
  put(b, 257, 8, 'ustar\x0000');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  put(b, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return b;
}

/** `data` followed by zero padding to a whole block. */
export function tarPadded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

/** A pax 'x' member (header and padded records) applying `records` to the next member. */
export function paxMember(records: Record<string, string>): Buffer {
  const lines = Object.entries(records).map(([k, v]) => {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    return `${len}${body}`;
  });
  const data = Buffer.from(lines.join(''), 'utf8');
  return Buffer.concat([tarHeader({ name: 'PaxHeaders/x', type: 'x', size: data.length }), tarPadded(data)]);
}

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);
