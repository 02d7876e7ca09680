/**
 * A realistic image of ~22 MB for end-to-end tests, generated in code: a base layer of many small
 * files (uncompressed), a gzip layer of medium files, a zstd layer with large files (streamed by
 * the store, not buffered), plus empty files, directories and symlinks.
 */
import {
  buildImage,
  buildLayer,
  ociLayout,
  seededBytes,
  seededText,
  writeFiles,
  type BuiltImage,
  type FileSpec,
} from './images.js';

function baseLayer(): FileSpec[] {
  const files: FileSpec[] = [{ path: 'usr/', type: 'directory' }, { path: 'usr/share/', type: 'directory' }];
  for (let i = 0; i < 300; i++) {
    const size = 2_000 + ((i * 7919) % 28_000);
    files.push({ path: `usr/share/doc/pkg${i % 40}/file${i}.txt`, body: i % 3 === 0 ? seededBytes(`base${i}`, size) : seededText(`base${i}`, size) });
    if (i % 50 === 0) files.push({ path: `usr/share/doc/pkg${i % 40}/empty${i}`, body: '' });
  }
  files.push({ path: 'usr/bin/sh', type: 'symlink', linkname: 'dash' });
  return files;
}

function midLayer(): FileSpec[] {
  return Array.from({ length: 40 }, (_, i) => ({ path: `usr/lib/x86_64-linux-gnu/lib${i}.so.1`, body: seededBytes(`mid${i}`, 100_000 + i * 3_000) }));
}

function bigLayer(): FileSpec[] {
  return [
    { path: 'opt/app/model.bin', body: seededBytes('model', 6 * 1024 * 1024) },
    { path: 'opt/app/assets.pak', body: seededBytes('assets', 3 * 1024 * 1024) },
    { path: 'opt/app/app.js', body: seededText('app', 900_000) },
    { path: 'opt/app/VERSION', body: '1.0.0\n' },
  ];
}

/** Builds the image and writes it as an OCI layout at `dir` tagged `tag`. */
export async function writeBigImage(dir: string, tag = 'v1'): Promise<BuiltImage> {
  const image = buildImage([await buildLayer(baseLayer(), 'none'), await buildLayer(midLayer(), 'gzip'), await buildLayer(bigLayer(), 'zstd')], { label: 'big' });
  await writeFiles(dir, ociLayout([{ image, tag }]).files);
  return image;
}
