import { MAX_INO, type Ino } from './numbers.js';
import type { InodeStore } from './store.js';

/**
 * Hands out inode numbers in strictly increasing order, one at a time, synchronously.
 *
 * Numbers come from ranges the store grants; a range's end is durable before the store returns
 * it, so after a crash the next run starts above every number this one could have handed out.
 * Being synchronous is what makes it serialized: JavaScript runs one allocate() at a time, and
 * no caller can await between asking for a number and receiving it.
 */
export class Allocator {
  private next: Ino = 0;
  private end: Ino = 0;
  private issued = 0;
  private lastIssued: Ino = 0;

  constructor(
    private readonly store: InodeStore,
    /** How many numbers to ask the store for at a time; the store may grant more. */
    private readonly chunk = 1024,
  ) {
    if (!Number.isSafeInteger(chunk) || chunk < 1) throw new RangeError(`allocator chunk must be a positive integer, got ${chunk}`);
  }

  allocate(): Ino {
    if (this.next >= this.end) this.refill();
    const n = this.next++;
    this.issued++;
    this.lastIssued = n;
    return n;
  }

  /** Numbers handed out by this allocator since it was made. */
  get count(): number {
    return this.issued;
  }

  /** The last number handed out (0 if none yet). */
  get last(): Ino {
    return this.lastIssued;
  }

  private refill(): void {
    const range = this.store.reserve(this.chunk);
    if (range.start > MAX_INO || range.end - 1 > MAX_INO) throw new RangeError('inode numbers exhausted (2^53 - 1 reached)');
    // A store that grants a range overlapping what we already handed out would break the one
    // promise this class exists for; refuse it rather than repeat a number.
    if (!(range.start >= this.end && range.start > this.lastIssued && range.end > range.start)) {
      throw new Error(`store granted range [${range.start}, ${range.end}) not above ${Math.max(this.end, this.lastIssued)}`);
    }
    this.next = range.start;
    this.end = range.end;
  }
}
