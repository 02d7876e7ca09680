/**
 * Rebuilding one target layer from its payload frame (docs/format.md section 5): ops stream into
 * a staged skeleton and new contents; the staged layer is reassembled and checked against its
 * diff_id before it is renamed into place (DESIGN.md sections 6 and 8).
 */
import { rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { fsyncDir, writeStreamAtomic } from '../util/fs.js';
import { zstdDecode } from '../util/zstd.js';
import { bspatch } from '../delta/bspatch.js';
import { parseHeaderGroup, paddingAfter, recomputeChecksums } from '../tar/group.js';
import type { SkeletonEntry } from '../tar/skeleton.js';
import { reassembleVerified } from '../store/export.js';
import { SkeletonWriter, readSkeletonFile } from '../tar/skeleton-file.js';
import { ContentBatch } from '../store/contents.js';
import type { Store } from '../store/store.js';
import type { BaselineEntry } from './baseline.js';
import { patchBytes, readOps, type DecodedBody, type HeaderSource } from './payload.js';
import { GroupMembers } from './group.js';
import type { LayerPlan } from './header.js';

/** Limits of a layer rebuild. */
export interface LayerApplyLimits {
  /** Largest patch reference (set) loaded in memory (DEFAULT_MAX_PATCH_REFERENCE unless the caller says). */
  maxPatchReference: number;
}

function bad(msg: string): FerryError {
  return new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: ${msg}`);
}

function baseAt(baseline: BaselineEntry[], i: number): BaselineEntry {
  const b = baseline[i];
  if (!b) throw bad(`baseline entry ${i} does not exist (the baseline has ${baseline.length})`);
  return b;
}

async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

async function loadReference(store: Store, b: BaselineEntry, limits: LayerApplyLimits): Promise<Buffer> {
  if (!b.digest) throw bad('patch reference has no body');
  if (b.size > limits.maxPatchReference) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `patch reference ${b.path} is ${b.size} bytes, over the ${limits.maxPatchReference} cap`);
  try {
    return await readAll(store.openContent(b.digest, { maxSize: b.size }));
  } catch (err) {
    if (err instanceof FerryError && (err.code === 'FERRY_ERR_OBJECT_CORRUPT' || err.code === 'FERRY_ERR_OBJECT_MISSING')) {
      throw new FerryError('FERRY_ERR_BASELINE_MISSING', `baseline content ${b.digest} (${b.path}) is ${err.code === 'FERRY_ERR_OBJECT_CORRUPT' ? 'corrupt' : 'missing'}: ${err.message}`, { cause: err, details: { digest: b.digest } });
    }
    throw err;
  }
}

/** A baseline header group with a byte patch applied (and its checksums recomputed when asked). */
function patchedHeader(base: Buffer, patch: Uint8Array, fixChecksum: boolean): Buffer {
  const out = patchBytes(base, patch);
  if (fixChecksum && !recomputeChecksums(out, base)) throw bad('a patched header checksum does not fit its field');
  return out;
}

/** State of one layer rebuild. */
class LayerBuild {
  readonly digests: (Digest | undefined)[] = [];
  /** Body sizes of the entries so far (reference sets may name them, docs/format.md section 5.3). */
  readonly sizes: number[] = [];
  prevSize = 0;
  count = 0;
  /** Tar bytes the entries so far make up (paddings, header groups, bodies). */
  bytes = 0;
  /** Bodies of the open reference-set group (docs/format.md section 5.3). */
  readonly members = new GroupMembers();

  constructor(
    readonly store: Store,
    readonly baseline: BaselineEntry[],
    readonly batch: ContentBatch,
    readonly writer: SkeletonWriter,
    readonly limits: LayerApplyLimits,
  ) {}

  header(h: HeaderSource): { bytes: Buffer; base?: BaselineEntry | undefined } {
    if (h.kind === 'literal') return { bytes: Buffer.from(h.bytes) };
    const base = baseAt(this.baseline, h.index);
    if (h.kind === 'base') return { bytes: base.header, base };
    return { bytes: patchedHeader(base.header, h.patch, h.fixChecksum ?? false), base };
  }

  async body(b: DecodedBody, base: BaselineEntry | undefined): Promise<{ digest?: Digest | undefined; size: number }> {
    switch (b.kind) {
      case 'none': return { size: 0 };
      case 'same': return { digest: base!.digest, size: base!.size };
      case 'copy': {
        const c = baseAt(this.baseline, b.index);
        return { digest: c.digest, size: c.size };
      }
      case 'back': {
        if (b.k > this.digests.length) throw bad('back reference before the layer start');
        const digest = this.digests[this.digests.length - b.k];
        if (!digest) throw bad('back reference to an entry without a body');
        return { digest, size: -1 };
      }
      case 'digest':
        if (!(await this.store.hasContent(b.digest))) throw new FerryError('FERRY_ERR_BASELINE_MISSING', `content ${b.digest} named by the payload is not in the store`);
        return { digest: b.digest, size: -1 };
      case 'literal':
        return { digest: await this.batch.put(b.data, b.size), size: b.size };
      case 'patch': {
        const ref = await loadReference(this.store, baseAt(this.baseline, b.index), this.limits);
        return { digest: await this.batch.put(zstdDecode(b.data, b.size, ref), b.size), size: b.size };
      }
      case 'bsdiff': {
        const ref = await loadReference(this.store, baseAt(this.baseline, b.index), this.limits);
        return { digest: await this.batch.put(bspatch(ref, b.data, b.size), b.size), size: b.size };
      }
      case 'group':
        return this.members.open(b, {
          lookup: (i) => this.baseline[i],
          earlier: (k) => (k >= 1 && k <= this.digests.length ? { digest: this.digests[this.digests.length - k], size: this.sizes[this.sizes.length - k]! } : undefined),
          settle: () => this.batch.flush(),
          source: this.store,
          put: (body, size) => this.batch.put(body, size),
          maxReference: this.limits.maxPatchReference,
        });
      case 'member':
        return this.members.next(b.d);
    }
  }

  add(pad: Uint8Array | undefined, header: Buffer, body: { digest?: Digest | undefined; size: number }): void {
    const padLen = paddingAfter(this.prevSize);
    const padding = pad ?? Buffer.alloc(padLen);
    if (padding.length !== padLen) throw bad('padding has the wrong length');
    const info = parseHeaderGroup(header);
    if (body.size !== -1 && body.size !== info.size) throw bad(`body of ${info.path} is ${body.size} bytes, its header says ${info.size}`);
    if ((info.size > 0) !== (body.digest !== undefined)) throw bad(`entry ${info.path} body and header disagree`);
    const entry: SkeletonEntry = { raw: Buffer.concat([padding, header]), path: info.path, type: info.type, linkname: info.linkname, size: info.size, digest: body.digest };
    this.writer.add(entry);
    this.digests.push(body.digest);
    this.sizes.push(info.size);
    this.prevSize = info.size;
    this.count++;
    this.bytes += padding.length + header.length + info.size;
  }
}

/** Verifies a staged skeleton by reassembling it with every content re-hashed. */
async function verifyStaged(store: Store, path: string, layer: LayerPlan): Promise<void> {
  for await (const _ of reassembleVerified(store, readSkeletonFile(path), layer.diffId, layer.size, true)) {
    // reading is the check
  }
}

/** Rebuilds one layer from its op stream. On any failure nothing appears at the layer's skeleton path. */
export async function applyLayer(store: Store, layer: LayerPlan, ops: AsyncIterable<Uint8Array>, baseline: BaselineEntry[], limits: LayerApplyLimits): Promise<{ files: number }> {
  const batch = new ContentBatch(store);
  const writer = new SkeletonWriter();
  const final = store.skeletonPath(layer.diffId);
  const staged = join(dirname(final), `.tmp-apply-${process.pid}-${layer.diffId.slice(7, 23)}`);
  // a payload can fail before writeStreamAtomic has piped the output (an empty frame fails at its
  // first read): without a listener, destroying the writer then raised an uncaught 'error'
  writer.output.on('error', () => {});
  const write = writeStreamAtomic(staged, writer.output, { check: () => batch.flush() });
  write.catch(() => {});
  const build = new LayerBuild(store, baseline, batch, writer, limits);
  try {
    let tail: Uint8Array | undefined;
    for await (const op of readOps(ops, 4 * layer.size + (1 << 20))) {
      if (op.op === 'run') {
        for (let i = op.start; i < op.start + op.count; i++) {
          const b = baseAt(baseline, i);
          build.add(undefined, b.header, { digest: b.digest, size: b.size });
        }
      } else if (op.op === 'patchrun') {
        for (let i = op.start; i < op.start + op.count; i++) {
          const b = baseAt(baseline, i);
          build.add(undefined, patchedHeader(b.header, op.patch, true), { digest: b.digest, size: b.size });
        }
      } else if (op.op === 'entry') {
        const { bytes, base } = build.header(op.header);
        build.add(op.pad, bytes, await build.body(op.body, base));
      } else {
        tail = op.bytes;
      }
    }
    build.members.finish();
    // a payload that builds a layer of another size is refused here, before the skeleton is read back
    const size = build.bytes + tail!.length;
    if (size !== layer.size) throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `rebuilt layer is ${size} bytes, expected ${layer.diffId} (${layer.size} bytes)`, { details: { expected: layer.diffId, size } });
    writer.finish({ tail: tail!, diffId: layer.diffId, size: layer.size, count: build.count });
    await write;
    await verifyStaged(store, staged, layer);
    await rename(staged, final);
    await fsyncDir(dirname(final));
  } catch (err) {
    writer.destroy(err as Error);
    await write.catch(() => {});
    await batch.flush().catch(() => {});
    await rm(staged, { force: true });
    throw err;
  }
  return { files: build.count };
}
