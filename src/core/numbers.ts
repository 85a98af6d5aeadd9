/**
 * Inode numbers are JavaScript numbers, not bigints.
 *
 * Why that is safe: numbers are issued one at a time in strictly increasing order, so reaching
 * Number.MAX_SAFE_INTEGER (2^53 - 1) would take 285 years at a million allocations per second.
 * The allocator refuses to go past that bound rather than lose precision, and the wire codec
 * writes them as u64. Plain numbers keep the hot paths (maps keyed by number, Smi fields) fast
 * and small.
 */
export const MAX_INO = Number.MAX_SAFE_INTEGER;

/** Numbers below this are reserved for the static directories; root is 1 (FUSE_ROOT_ID). */
export const FIRST_DYNAMIC_INO = 1024;
export const ROOT_INO = 1;

export function isValidIno(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1 && n <= MAX_INO;
}
