/**
 * The change feed: which agents, channels, bundles and tokens changed. It invalidates the state's
 * short-lived caches and drives the dashboard's live events (events.ts).
 *
 * Writes made by this process are announced locally as they commit. With several servers on one
 * PostgreSQL, each also LISTENs: row triggers (migrations.ts) NOTIFY every change at commit, so a
 * process sees the others' changes within milliseconds, without polling and without an extra
 * round trip on the check-in path (the trigger runs inside the statement). LISTEN/NOTIFY is chosen
 * over polling a cursor because notifications arrive in commit order (a polled sequence or clock
 * can skip a row whose transaction commits late) and cost nothing while nothing changes. A lost
 * listener connection is reopened with backoff; while it is down the caches expire on their TTL,
 * and when it is back a `resync` tells every consumer to start over.
 */
import pg from 'pg';

/** The PostgreSQL notification channel the triggers publish on. */
export const CHANGES_CHANNEL = 'ferry_changes';

/** One change. `resync`: changes may have been missed; drop caches, resend everything. */
export type Change = { kind: 'agent' | 'channel' | 'bundle' | 'token'; key: string } | { kind: 'resync' };

/** A listener of changes. */
export type ChangeListener = (change: Change) => void;

/** Changes announced by this process, and (on PostgreSQL) by the others. */
export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  /** Subscribes; returns the unsubscribe function. */
  on(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Announces a change to every listener (a failing listener does not stop the others). */
  emit(change: Change): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        // a consumer's failure is its own (it logs); the feed goes on
      }
    }
  }
}

const KINDS = new Set(['agent', 'channel', 'bundle', 'token']);

/** Options of the PostgreSQL listener. */
export interface ListenerOptions {
  url: string;
  /** This process's application_name: its own notifications are skipped. */
  origin: string;
  feed: ChangeFeed;
  /** Longest wait between reconnection attempts (default 30 s). */
  maxBackoffMs?: number;
}

/** Parses one notification payload; undefined when it is not one of ours. */
function parsePayload(payload: string | undefined): { kind: string; key: string; origin: string } | undefined {
  try {
    const v = JSON.parse(payload ?? '') as { k?: unknown; v?: unknown; o?: unknown };
    if (typeof v.k !== 'string' || !KINDS.has(v.k) || typeof v.v !== 'string') return undefined;
    return { kind: v.k, key: v.v, origin: typeof v.o === 'string' ? v.o : '' };
  } catch {
    return undefined;
  }
}

/** LISTENs on CHANGES_CHANNEL and forwards other processes' changes to the feed. */
export class PgChangeListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private backoff = 500;

  constructor(private readonly o: ListenerOptions) {}

  /** Connects (the first connection must succeed: the database was just opened). */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.o.url, application_name: `${this.o.origin}:listen` });
    client.on('notification', (n) => {
      const c = parsePayload(n.payload);
      if (c && c.origin !== this.o.origin) this.o.feed.emit({ kind: c.kind as 'agent', key: c.key });
    });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.backoff = 500;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.end().catch(() => {});
    this.retry();
  }

  private retry(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.connect().then(
        () => this.o.feed.emit({ kind: 'resync' }),
        () => {
          this.backoff = Math.min(this.backoff * 2, this.o.maxBackoffMs ?? 30_000);
          this.retry();
        },
      );
    }, this.backoff);
    this.timer.unref();
  }

  /** Stops listening and closes the connection. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}
