/**
 * Python tarfile part of the skeleton corpus: the same members written as PAX, GNU and USTAR, plus
 * a PAX archive whose extended header is larger than the default meta-size limit.
 */
import { join } from 'node:path';
import { runTool } from '@ferry/test-support';

/** Names of the Python corpus members. */
export const PYTHON_TARS = ['python-pax', 'python-gnu', 'python-ustar'] as const;

/** A Python corpus member name. */
export type PythonTarName = (typeof PYTHON_TARS)[number];

/** Paths the Python tars hold (the USTAR one keeps every path within 255 bytes). */
export const PYTHON_FACTS = {
  /** >255 bytes: PAX path record / GNU 'L' member. */
  longFile: `py/${'p'.repeat(120)}/${'q'.repeat(120)}/long-file.txt`,
  /** 101..255 bytes, splittable into ustar prefix + name. */
  midFile: `py/${'r'.repeat(120)}/mid-file.txt`,
  nonAscii: 'py/ñandú-日本語.txt',
  symlink: 'py/link',
  longTarget: `../${'s'.repeat(150)}/target`,
  shortTarget: 'target',
  hardlink: 'py/hard',
  bigId: 3_000_000_000,
} as const;

const SCRIPT = String.raw`
import io, sys, tarfile
out, facts = sys.argv[1], sys.argv[2:]
long_file, mid_file, non_ascii, symlink, long_target, short_target, hardlink, big_id = facts
big_id = int(big_id)

def add(tf, name, data=b'', **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    ti.size = len(data) if ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    tf.addfile(ti, io.BytesIO(data) if ti.size else None)

def write(path, fmt, long_ok, global_headers=None, entry_headers=None):
    with tarfile.open(path, 'w', format=fmt, encoding='utf-8', pax_headers=global_headers or {}) as tf:
        add(tf, 'py/', type=tarfile.DIRTYPE, mode=0o755, mtime=1700000000, pax_headers=entry_headers or {})
        target = long_file if long_ok else mid_file
        add(tf, target, bytes(range(256)) * 3, mtime=1700000000)
        add(tf, non_ascii, 'non-ascii name\n'.encode(), mtime=1700000000)
        add(tf, 'py/empty', b'', mtime=1700000000)
        add(tf, symlink, type=tarfile.SYMTYPE, linkname=long_target if long_ok else short_target)
        add(tf, hardlink, type=tarfile.LNKTYPE, linkname=target if long_ok else non_ascii)
        add(tf, 'py/null', type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        add(tf, 'py/fifo', type=tarfile.FIFOTYPE)
        if long_ok:
            # base-256 in GNU format, pax uid/gid/mtime records in PAX format
            add(tf, 'py/big-ids', b'ids\n', uid=big_id, gid=big_id, mtime=-1000000000)

# a pax global header ('g') leads the PAX archive
write(out + '/python-pax.tar', tarfile.PAX_FORMAT, True, {'comment': 'ferry global header'})
write(out + '/python-gnu.tar', tarfile.GNU_FORMAT, True)
write(out + '/python-ustar.tar', tarfile.USTAR_FORMAT, False)
# 2 MiB extended headers, over the splitter's default 1 MiB meta limit: per entry ('x') and global ('g')
huge = {'comment': 'x' * (2 * 1024 * 1024)}
write(out + '/python-pax-huge-x.tar', tarfile.PAX_FORMAT, True, None, huge)
write(out + '/python-pax-huge-g.tar', tarfile.PAX_FORMAT, True, huge)
`;

/** Python tars that must be refused: an 'x' and a 'g' header of 2 MiB each. */
export type PythonHugeName = 'python-pax-huge-x' | 'python-pax-huge-g';

/** Writes the Python tars into `dir`; returns paths by name. */
export async function makePythonCorpus(dir: string): Promise<Record<PythonTarName | PythonHugeName, string>> {
  const f = PYTHON_FACTS;
  await runTool('python3', ['-c', SCRIPT, dir, f.longFile, f.midFile, f.nonAscii, f.symlink, f.longTarget, f.shortTarget, f.hardlink, String(f.bigId)]);
  return {
    'python-pax': join(dir, 'python-pax.tar'),
    'python-gnu': join(dir, 'python-gnu.tar'),
    'python-ustar': join(dir, 'python-ustar.tar'),
    'python-pax-huge-x': join(dir, 'python-pax-huge-x.tar'),
    'python-pax-huge-g': join(dir, 'python-pax-huge-g.tar'),
  };
}
