/**
 * What a number is, and the bounds of inode numbers.
 *
 * Inode numbers are JavaScript numbers, not bigints. Why that is safe: numbers are issued one at
 * a time in strictly increasing order, so reaching Number.MAX_SAFE_INTEGER (2^53 - 1) would take
 * 285 years at a million allocations per second. The allocator refuses to go past that bound
 * rather than lose precision, and the wire codec writes them as u64. Plain numbers keep the hot
 * paths (maps keyed by number, Smi fields) fast and small.
 *
 * Units. The core deals in four kinds of number that all look alike: an inode number (which is
 * also the kernel's node id), the generation stamped on it, an object's key (what the host
 * reuses: a pid, an nsfs inode number) and its incarnation. Each has a type of its own, so that a
 * key cannot be passed where an inode number belongs, nor one unit's value stored in another's
 * field. Like Go's `type Ino uint64` beside an untyped constant, an unbranded number (a literal, a
 * value decoded from the wire) is accepted as any unit; a number of another unit is refused.
 * The units cost nothing at run time: they are numbers.
 */
declare const unit: unique symbol;
/** A number of unit `U`: plain numbers convert to it, numbers of another unit do not. */
type Unit<U extends string> = number & { readonly [unit]?: U };

/** An inode number, which is also the kernel's node id for it (node id == inode number). */
export type Ino = Unit<'ino'>;
/** The store run (epoch) an inode number was issued in; with the number it names an object forever. */
export type Generation = Unit<'generation'>;
/** What the host finds an object by and reuses (a pid, an nsfs inode number); unique within a kind. */
export type Key = Unit<'key'>;
/** What tells two lives of one key apart (a pidfs inode number, a kernel namespace id). */
export type Incarnation = Unit<'incarnation'>;

export const MAX_INO: Ino = Number.MAX_SAFE_INTEGER;

/** Numbers below this are reserved for the static directories; root is 1 (FUSE_ROOT_ID). */
export const FIRST_DYNAMIC_INO: Ino = 1024;
export const ROOT_INO: Ino = 1;
