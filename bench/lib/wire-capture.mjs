// A TCP proxy that keeps every byte each way and splits them into HTTP/1.1 messages, so the link
// bench can say where the bytes on the wire go (request/response line and headers, bodies) per
// route. Loopback only; the bench puts it between linksim and the server.
import { createServer, connect } from 'node:net';

/** Starts the proxy in front of `target` (`{ host, port }`); `close()` ends it, `messages()` parses. */
export async function startWireCapture(target) {
  const conns = [];
  const sockets = new Set();
  const server = createServer((client) => {
    const c = { up: [], down: [] };
    conns.push(c);
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('data', (b) => { c.up.push(b); upstream.write(b); });
    upstream.on('data', (b) => { c.down.push(b); client.write(b); });
    const end = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    /** Every request with its response: `{ method, path, reqHead, reqBody, status, resHead, resBody }` (bytes). */
    messages: () => conns.flatMap((c) => {
      const reqs = parseAll(Buffer.concat(c.up));
      return pair(reqs, parseAll(Buffer.concat(c.down), reqs.map((q) => q.start.split(' ')[0])));
    }),
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(resolve); }),
  };
}

function pair(reqs, ress) {
  return reqs.map((q, i) => ({ method: q.start.split(' ')[0], path: q.start.split(' ')[1], reqHead: q.head, reqBody: q.body, status: ress[i]?.start.split(' ')[1], resHead: ress[i]?.head ?? 0, resBody: ress[i]?.body ?? 0, resText: ress[i]?.text, reqHeaders: q.headers, resHeaders: ress[i]?.headers }));
}

/**
 * HTTP/1.1 messages in `buf` (Content-Length or chunked bodies; a cut message counts what arrived).
 * For responses, `methods` are the requests' methods in order: a HEAD's answer, a 304 and a 204 have no body.
 */
function parseAll(buf, methods) {
  const out = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const headText = buf.subarray(at, end).toString('latin1');
    const lines = headText.split('\r\n');
    const h = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    let p = end + 4;
    const head = p - at;
    const bodyStart = p;
    const bodiless = methods && (methods[out.length] === 'HEAD' || / (1\d\d|204|304) /.test(`${lines[0]} `));
    if (bodiless) p = bodyStart;
    else if (h['transfer-encoding'] === 'chunked') {
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) { p = buf.length; break; }
        const n = parseInt(buf.subarray(p, le).toString('latin1'), 16);
        p = le + 2 + n + 2;
        if (n === 0 || p >= buf.length) { p = Math.min(p, buf.length); break; }
      }
    } else p = Math.min(buf.length, p + Number(h['content-length'] ?? 0));
    const body = p - bodyStart;
    out.push({ start: lines[0], head, body, text: body < 4096 ? buf.subarray(bodyStart, p).toString('latin1') : undefined, headers: headText });
    at = p;
  }
  return out;
}

/** What each request kind cost on the wire: heads and bodies each way, summed per route. */
export function printWireBreakdown(messages, payload) {
  const kind = (m) => m.path.replace(/[0-9a-f]{64}/g, '<hex>').replace(/\?.*$/, '');
  const rows = new Map();
  for (const m of messages) {
    const k = `${m.method} ${kind(m)} ${m.status ?? '-'}`;
    const r = rows.get(k) ?? { n: 0, reqHead: 0, reqBody: 0, resHead: 0, resBody: 0 };
    r.n++;
    r.reqHead += m.reqHead;
    r.reqBody += m.reqBody;
    r.resHead += m.resHead;
    r.resBody += m.resBody;
    rows.set(k, r);
  }
  const sum = (f) => [...rows.values()].reduce((n, r) => n + r[f], 0);
  console.log(`\nbytes on the wire per request kind (payload ${payload} bytes):`);
  console.log('  request                                   n  req head  req body  res head  res body');
  for (const [k, r] of rows) console.log(`  ${k.padEnd(40)} ${String(r.n).padStart(2)} ${String(r.reqHead).padStart(9)} ${String(r.reqBody).padStart(9)} ${String(r.resHead).padStart(9)} ${String(r.resBody).padStart(9)}`);
  if (process.env.FERRY_WIRE_DUMP) for (const m of messages) console.log(`\n${m.reqHeaders}\n\n${m.resHeaders}\n${m.resText?.slice(0, 600) ?? ''}`);
  console.log(`  total down ${sum('resHead') + sum('resBody')} (heads ${sum('resHead')}), up ${sum('reqHead') + sum('reqBody')} (heads ${sum('reqHead')})`);
}
