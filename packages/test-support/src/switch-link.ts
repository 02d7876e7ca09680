/**
 * A link a test switches by hand: a TCP front on port 0 for an HTTP server that resets every
 * connection at once while it is down (as a radio link that is out), and forwards while it is up.
 * For tests of what happens when a link returns; linksim is the emulator with rates and schedules.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** A running switchable link. */
export interface SwitchLink {
  /** `target` with this front's host and port (the path kept). */
  url: string;
  /** Whether connections are forwarded (set it; it starts down). Going down resets what is open. */
  up: boolean;
  /** Connections reset while down. */
  refused: number;
  close(): Promise<void>;
}

/** Starts a switchable link in front of `target` (`http://host:port/path/`), down. */
export async function startSwitchLink(target: string): Promise<SwitchLink> {
  const t = new URL(target);
  const sockets = new Set<Socket>();
  let up = false;
  const srv = createServer((client) => {
    if (!up) {
      link.refused++;
      return void client.resetAndDestroy();
    }
    const upstream = connect(Number(t.port), t.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => (client.destroy(), upstream.destroy()));
      s.on('close', () => (sockets.delete(s), client.destroy(), upstream.destroy()));
    }
    client.pipe(upstream).pipe(client);
  });
  const link: SwitchLink = {
    url: '',
    get up() {
      return up;
    },
    set up(v: boolean) {
      up = v;
      if (!v) for (const s of sockets) s.resetAndDestroy();
    },
    refused: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  link.url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}${t.pathname}${t.search}`;
  return link;
}
