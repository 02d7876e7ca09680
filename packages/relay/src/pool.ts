/** A fixed set of resources handed out one caller at a time (the relay's upstream fetchers). */

/** Hands out `items`, queueing callers while all are taken. */
export class Pool<T> {
  private readonly idle: T[];
  private readonly waiting: ((item: T) => void)[] = [];

  constructor(items: readonly T[]) {
    this.idle = [...items];
  }

  /** Runs `fn` with an item, waiting for one to be free. */
  async use<R>(fn: (item: T) => Promise<R>): Promise<R> {
    const item = this.idle.pop() ?? (await new Promise<T>((resolve) => this.waiting.push(resolve)));
    try {
      return await fn(item);
    } finally {
      const next = this.waiting.shift();
      if (next) next(item);
      else this.idle.push(item);
    }
  }
}

/**
 * Single flight: concurrent calls with the same key share one running promise; the next call after
 * it settles starts a new one.
 */
export class SingleFlight<K> {
  private readonly running = new Map<K, Promise<void>>();

  /** Joins the flight for `key`, starting it with `start` when none runs. */
  run(key: K, start: () => Promise<void>): Promise<void> {
    let p = this.running.get(key);
    if (!p) {
      p = start().finally(() => this.running.delete(key));
      this.running.set(key, p);
    }
    return p;
  }

  /** True while a flight for `key` runs. */
  has(key: K): boolean {
    return this.running.has(key);
  }

  /** Every running flight (for shutdown). */
  all(): Promise<void>[] {
    return [...this.running.values()];
  }
}
