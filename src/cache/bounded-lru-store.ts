/**
 * A Map that holds at most `maxEntries` keys and evicts the least recently used one beyond that:
 * `get` of a present key and `set` both make the key the most recent. keyv 5 takes any Map as its
 * in-memory store (`store instanceof Map`) but its default Map grows without bound; this one is a
 * drop-in replacement. keyv keeps the expiry inside each value and drops expired entries when they
 * are read, so an expired entry holds a slot only until it is read or evicted.
 */
export class BoundedLruStore<V> extends Map<string, V> {
  /** Entries pushed out by the bound since creation, for metrics. */
  evictions = 0;
  private readonly maxEntries: number;

  constructor(maxEntries: number) {
    super();
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
  }

  override get(key: string): V | undefined {
    if (!super.has(key)) return undefined;
    const value = super.get(key) as V;
    // Re-insert so iteration order (oldest first) is recency order.
    super.delete(key);
    super.set(key, value);
    return value;
  }

  /** The value without touching its recency. */
  peek(key: string): V | undefined {
    return super.get(key);
  }

  override set(key: string, value: V): this {
    super.delete(key);
    super.set(key, value);
    while (this.size > this.maxEntries) {
      const oldest = this.keys().next();
      if (oldest.done === true) break;
      super.delete(oldest.value);
      this.evictions++;
    }
    return this;
  }
}
