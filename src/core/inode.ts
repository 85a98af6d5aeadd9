import type { Generation, Incarnation, Ino, Key } from './numbers.js';

/**
 * What makes an object itself: its kind, and within the kind `key`, the host-visible number that
 * finds it (a pid, an nsfs inode number); the host reuses keys, so `incarnation` tells two lives
 * of one key apart (a process's pidfs inode number, a namespace's never-reused kernel id).
 *
 * The table finds objects by kind and key together, so keys of different kinds may be equal: a
 * layer above need not keep its kinds' numbers apart. Keys are numbers rather than strings: a map
 * keyed by small integers compares keys without touching memory, which keeps lookups fast at a
 * million inodes.
 */
export interface Identity {
  readonly kind: string;
  readonly key: Key;
  readonly incarnation: Incarnation;
}

/**
 * An object's entry in the identity table: the number it was given, for good. It outlives any
 * number of dentries while its object lives; once the object is dead and nothing references the
 * inode it leaves the table, and its number is never given to anything else.
 */
export class Inode<T> implements Identity {
  /** The live dentry, if the object is instantiated right now. */
  dentry: Dentry<T> | null = null;

  constructor(
    readonly ino: Ino,
    readonly generation: Generation,
    readonly kind: string,
    readonly key: Key,
    readonly incarnation: Incarnation,
    /** What the layer above knows of the object; undefined for inodes restored from the store until first found again. */
    public object: T | undefined,
  ) {}
}

/**
 * The one instantiated node of an inode: what the kernel's node id refers to. Its counts say who
 * holds it; when all reach zero it is released for good. A released dentry never comes back:
 * the next instantiate of the same inode builds a new one with the same number.
 */
export class Dentry<T> {
  /** Lookups the kernel holds (LOOKUP and READDIRPLUS add, FORGET subtracts). */
  lookups = 0;
  /** Open files and directories. */
  opens = 0;
  /** Pins: bind mounts and anything else that must keep the handle alive. */
  pins = 0;
  /** Short-lived holds of code that is using the dentry right now (get/put). */
  holds = 0;
  /** Set once, when the counts all reached zero. */
  released = false;

  constructor(readonly inode: Inode<T>) {}

  get ino(): Ino {
    return this.inode.ino;
  }

  /** The object, which an instantiated inode always has. */
  get object(): T {
    return this.inode.object as T;
  }

  /** True while something other than a short-lived hold keeps the dentry. */
  get referenced(): boolean {
    return this.lookups + this.opens + this.pins > 0;
  }
}
