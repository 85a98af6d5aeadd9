import { FIRST_DYNAMIC_INO, MAX_INO, type Generation, type Ino } from './numbers.js';
import type { InodeRecord, InodeStore, NumberRange } from './store.js';

/**
 * A store that keeps everything in memory: for tests, the consumer kit and benchmarks.
 * It honours the same contract as the durable store (ranges above the high-water mark, rows
 * replaced by number) so the core behaves identically on both.
 */
export class MemoryStore implements InodeStore {
  readonly generation: Generation;
  private high: Ino;
  private readonly rows = new Map<Ino, InodeRecord>();
  private changes = 0;
  /** Numbers whose row changed since the last flush. */
  private readonly pendingRows = new Set<Ino>();

  constructor(options: { generation?: Generation; highWater?: Ino; records?: Iterable<InodeRecord> } = {}) {
    this.generation = options.generation ?? 1;
    this.high = Math.max(options.highWater ?? FIRST_DYNAMIC_INO, FIRST_DYNAMIC_INO);
    for (const r of options.records ?? []) {
      this.rows.set(r.ino, r);
      this.high = Math.max(this.high, r.ino + 1);
    }
  }

  get highWater(): Ino {
    return this.high;
  }

  get dirty(): boolean {
    return this.changes > 0;
  }

  reserve(count: number): NumberRange {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`reserve: bad count ${count}`);
    const start = this.high;
    // Compare before adding: past 2^53 the sum itself would round.
    if (start > MAX_INO || count > MAX_INO - start + 1) throw new RangeError('inode numbers exhausted (2^53 - 1 reached)');
    const end = start + count;
    this.high = end;
    return { start, end };
  }

  load(): Iterable<InodeRecord> {
    return [...this.rows.values()];
  }

  put(record: InodeRecord): void {
    this.rows.set(record.ino, record);
    this.pendingRows.add(record.ino);
    this.changes++;
  }

  /** A state change of a row: never waited for by whenDurable (InodeStore.putState). */
  putState(record: InodeRecord): void {
    this.rows.set(record.ino, record);
    this.changes++;
  }

  delete(ino: Ino): void {
    this.rows.delete(ino);
    this.pendingRows.add(ino);
    this.changes++;
  }

  whenDurable(ino: Ino): Promise<void> | undefined {
    return this.pendingRows.has(ino) ? this.flush() : undefined;
  }

  flush(): Promise<void> {
    this.changes = 0;
    this.pendingRows.clear();
    return Promise.resolve();
  }

  close(): void {
    this.changes = 0;
    this.pendingRows.clear();
  }

  /** Test helper: a snapshot of the rows, as a restart would load them. */
  records(): InodeRecord[] {
    return [...this.rows.values()];
  }
}
