/**
 * What the core needs from a durable store. The allocator draws ranges of numbers from it and the
 * identity table records which object owns which number. Every method is synchronous except
 * flush(): allocation must happen inside the atomic find-or-create, so it cannot await.
 */
import type { Generation, Incarnation, Ino, Key } from './numbers.js';

/** One row of the identity table: which object a number was given to. */
export interface InodeRecord {
  readonly ino: Ino;
  /** Store run (epoch) in which the number was issued; together with ino it names the object forever. */
  readonly generation: Generation;
  /** Kind of object ("process", "namespace", ...); the core does not interpret it. */
  readonly kind: string;
  /** Host-visible number that finds the object (a pid, an nsfs inode number); the host reuses it. */
  readonly key: Key;
  /**
   * What tells two objects with the same key apart within one scope (a process's start time, a
   * namespace's never-reused kernel id). A number: it is compared on every lookup, and a string
   * per inode would cost memory the table cannot spare at a million inodes.
   */
  readonly incarnation: Incarnation;
  /**
   * What the incarnation is relative to (the boot id, for host objects). Rows of another scope
   * are of objects that can no longer exist and may be pruned.
   */
  readonly scope: string;
  /**
   * What the layer above recorded about the object, for a successor of this process (opaque text
   * the core and the store never interpret; null or absent when nothing was recorded). The tree
   * keeps a process's last known fields here, and how it ended once it has.
   */
  readonly state?: string | null;
}

/** A half-open range [start, end) of numbers that nobody was ever given. */
export interface NumberRange {
  readonly start: Ino;
  readonly end: Ino;
}

export interface InodeStore {
  /** The generation stamped on numbers issued by this run (a durable per-open counter). */
  readonly generation: Generation;
  /** Every number ever granted is below this. */
  readonly highWater: Ino;
  /**
   * Grants a range of at least `count` numbers above everything ever granted. The range's end is
   * durable before this returns, so a crash may skip numbers but never repeat one.
   * Throws if the bound cannot be made durable; then no number of the range may be used.
   */
  reserve(count: number): NumberRange;
  /** Rows recorded by earlier runs, for restoring the table at start. */
  load(): Iterable<InodeRecord>;
  /** Queues a row; it is durable once a later flush() resolves. */
  put(record: InodeRecord): void;
  /**
   * Optional: queues a row that changes only its state (InodeRecord.state), for a number whose row
   * is already durable or queued. Like put(), except that it never makes whenDurable(ino) wait:
   * the number was made durable by its own row, and a state is no write-ahead matter. Stores
   * without it get put().
   */
  putState?(record: InodeRecord): void;
  /** Queues removal of the row of an object that can no longer exist. Never frees the number. */
  delete(ino: Ino): void;
  /** True while puts or deletes wait for a flush. */
  readonly dirty: boolean;
  /**
   * undefined when the row of `ino` has no change waiting or being committed (it is durable, or
   * there never was one); else a promise that settles as flush() does once that row is durable.
   * Unlike flush(), never waits for other rows' commits that do not carry this one.
   */
  whenDurable(ino: Ino): Promise<void> | undefined;
  /** Resolves when everything queued before the call is durable; rejects if it cannot be made so. */
  flush(): Promise<void>;
  /** Flushes synchronously and releases the store. */
  close(): void;
}
