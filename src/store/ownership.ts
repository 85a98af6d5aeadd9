/**
 * Is the file at `--state` handlefs's? Decided from raw bytes only, before SQLite opens it
 * (a read-only SQLite connection may still create `-shm`/`-wal` next to a foreign database), so
 * a file that is not ours is left exactly as it was.
 *
 * A file is ours when:
 *  - its SQLite header carries handlefs's `application_id` (every state is created with it, under
 *    a temporary name, and renamed into place only once complete), or
 *  - its `FILE.hwm` companion is a handlefs high-water record (then even an empty, truncated or
 *    garbled file at FILE is a damaged state of ours and may be moved aside).
 * Anything else (text, an empty file, a foreign SQLite database, a directory, a device) is refused.
 */
import * as fs from 'node:fs';
import { APPLICATION_ID } from './schema.js';

export type StateFileKind =
  | { readonly kind: 'missing' }
  | { readonly kind: 'ours'; readonly why: 'application_id' | 'hwm companion' }
  | { readonly kind: 'foreign'; readonly reason: string };

/** The first 16 bytes of every SQLite 3 database file. */
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** Offset of `PRAGMA application_id` in the database header (4 bytes, big-endian). */
const APPLICATION_ID_OFFSET = 68;
/** How every FILE.hwm starts, whatever its version and even with a broken checksum. */
const HWM_PREFIX = 'handlefs-hwm ';

/** Thrown when `--state` names something that is not provably handlefs's; nothing was changed. */
export class NotOurStateError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`handlefs store: ${file} is not a handlefs state file (${reason}); refusing to touch it`);
    this.name = 'NotOurStateError';
  }
}

function hwmCompanionIsOurs(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(`${file}.hwm`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return false;
    const head = Buffer.alloc(HWM_PREFIX.length);
    return fs.readSync(fd, head, 0, head.length, 0) === head.length && head.toString('latin1') === HWM_PREFIX;
  } finally {
    fs.closeSync(fd);
  }
}

function describeContent(head: Buffer, size: number): string {
  if (size === 0) return 'an empty file';
  if (head.subarray(0, 16).equals(SQLITE_MAGIC)) {
    const id = head.length >= APPLICATION_ID_OFFSET + 4 ? head.readUInt32BE(APPLICATION_ID_OFFSET) : 0;
    return `an SQLite database with application_id 0x${id.toString(16)}, expected 0x${APPLICATION_ID.toString(16)}`;
  }
  return `${size} bytes that are not an SQLite database`;
}

/** Classifies the file at `file` without changing anything (stat and a 100-byte read). */
export function classifyStateFile(file: string): StateFileKind {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw err;
  }
  const companion = hwmCompanionIsOurs(file);
  if (!st.isFile()) {
    const what = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device';
    return { kind: 'foreign', reason: `it is ${what}, not a regular file` };
  }
  const head = Buffer.alloc(100);
  let got = 0;
  const fd = fs.openSync(file, 'r');
  try {
    got = fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    // No SQLite connection of this process has the file open yet, so closing drops no lock.
    fs.closeSync(fd);
  }
  const bytes = head.subarray(0, got);
  if (got >= APPLICATION_ID_OFFSET + 4 && bytes.subarray(0, 16).equals(SQLITE_MAGIC) && bytes.readUInt32BE(APPLICATION_ID_OFFSET) === APPLICATION_ID) {
    return { kind: 'ours', why: 'application_id' };
  }
  if (companion) return { kind: 'ours', why: 'hwm companion' };
  return { kind: 'foreign', reason: `it is ${describeContent(bytes, st.size)}, and no ${file}.hwm says handlefs wrote it` };
}
