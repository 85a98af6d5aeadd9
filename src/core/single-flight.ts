/**
 * Shares one in-flight async computation among all callers that ask for the same key while it
 * runs. The tree uses it so that 32 racing first lookups of one process read /proc once; the
 * table's synchronous find-or-create is what guarantees one inode whether or not they share.
 */
export class SingleFlight<K, V> {
  private readonly running = new Map<K, Promise<V>>();

  run(key: K, work: () => Promise<V>): Promise<V> {
    const existing = this.running.get(key);
    if (existing !== undefined) return existing;
    const promise = work().finally(() => {
      if (this.running.get(key) === promise) this.running.delete(key);
    });
    this.running.set(key, promise);
    return promise;
  }

  get size(): number {
    return this.running.size;
  }
}
