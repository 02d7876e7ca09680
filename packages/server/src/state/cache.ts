/**
 * A small cache for the check-in path: entries expire after `ttlMs` and the oldest go first once
 * `maxWeight` is passed (each entry weighs what `weigh` says, 1 by default). The change feed
 * deletes entries as soon as what they hold changes; the TTL bounds staleness when a change
 * notification is missed (another server's, while the listener reconnects).
 */

/** Options of a cache. */
export interface CacheOptions<V> {
  /** Milliseconds an entry lives (Infinity for immutable values). */
  ttlMs: number;
  /** Total weight kept at most. */
  maxWeight: number;
  weigh?: (value: V) => number;
  /** Clock in milliseconds (default Date.now). */
  now?: () => number;
}

/** A TTL cache with a weight bound; Map order is insertion order, so the first key is the oldest. */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: V; expires: number; weight: number }>();
  private weight = 0;
  /** Bumped by every invalidation, so a load that raced one does not store what it read. */
  private epoch = 0;

  constructor(private readonly o: CacheOptions<V>) {}

  /** The value, unless absent or expired. */
  get(key: K): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= (this.o.now ?? Date.now)()) {
      this.remove(key);
      return undefined;
    }
    return e.value;
  }

  set(key: K, value: V): void {
    this.remove(key);
    const weight = this.o.weigh?.(value) ?? 1;
    if (weight > this.o.maxWeight) return;
    this.entries.set(key, { value, expires: (this.o.now ?? Date.now)() + this.o.ttlMs, weight });
    this.weight += weight;
    for (const k of this.entries.keys()) {
      if (this.weight <= this.o.maxWeight) break;
      this.remove(k);
    }
  }

  /** Invalidates one key. */
  delete(key: K): void {
    this.epoch++;
    this.remove(key);
  }

  /** Invalidates everything. */
  clear(): void {
    this.epoch++;
    this.entries.clear();
    this.weight = 0;
  }

  private remove(key: K): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.weight -= e.weight;
  }

  /**
   * Loads through the cache: `load` runs only when the key has no live entry, and what it read is
   * kept only if nothing was invalidated meanwhile (and `keep` says it is worth keeping).
   */
  async through(key: K, load: () => Promise<V>, keep: (value: V) => boolean = () => true): Promise<V> {
    const e = this.entries.get(key);
    if (e && e.expires > (this.o.now ?? Date.now)()) return e.value;
    const at = this.epoch;
    const value = await load();
    if (this.epoch === at && keep(value)) this.set(key, value);
    return value;
  }
}
