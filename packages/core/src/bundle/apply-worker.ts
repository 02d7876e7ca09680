/**
 * The writer thread of a layer rebuild (apply-sink.ts's ThreadSink is its other end): it takes
 * the layer's bytes in tar order from a shared ring (apply-ring.ts) and hands them to a
 * LayerWriter (apply-writer.ts, which says what it does with them).
 *
 * Record payloads: content = digest (32) + size (float64 BE); begin and stash = size (float64 BE);
 * end = digest (32); hash and data = bytes. Answers (postMessage): {type: 'flushed'},
 * {type: 'done', digest, size}, {type: 'error', code, message, details}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { REC, RingReader, type RingRecord } from './apply-ring.js';
import { LayerWriter, WriterFailure, type WriterData } from './apply-writer.js';

/** What the thread is started with. */
export interface ThreadWriterData extends WriterData {
  ring: SharedArrayBuffer;
}

const data = workerData as ThreadWriterData;
const ring = new RingReader(data.ring);
const writer = new LayerWriter(data);

function joined(r: RingRecord): Buffer {
  return r.parts.length === 1 ? Buffer.from(r.parts[0]!.buffer, r.parts[0]!.byteOffset, r.parts[0]!.byteLength) : Buffer.concat(r.parts);
}

function handle(r: RingRecord): void {
  switch (r.type) {
    case REC.hash:
      for (const p of r.parts) writer.hash(p);
      return;
    case REC.content: {
      const b = joined(r);
      return writer.content(b.toString('hex', 0, 32), b.readDoubleBE(32));
    }
    case REC.begin:
    case REC.stash:
      return writer.begin(joined(r).readDoubleBE(0), r.type === REC.begin);
    case REC.data:
      return writer.bodyData(r.parts);
    case REC.end:
      return writer.end(joined(r).toString('hex', 0, 32));
    case REC.flush:
      writer.flush();
      parentPort!.postMessage({ type: 'flushed' });
      return;
    case REC.finish:
      parentPort!.postMessage({ type: 'done', digest: `sha256:${writer.digest().hex}`, size: writer.digest().size });
      return;
    default:
      throw new WriterFailure('FERRY_ERR_INTERNAL', `unknown ring record ${r.type}`);
  }
}

for (;;) {
  const r = ring.next();
  if (!r) break;
  try {
    handle(r);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { details?: Record<string, unknown> };
    parentPort!.postMessage({ type: 'error', code: e instanceof WriterFailure ? e.code : undefined, message: e.message, details: e.details, errno: e.code, syscall: e.syscall, path: e.path });
    ring.stop();
    break;
  }
}
writer.close();
