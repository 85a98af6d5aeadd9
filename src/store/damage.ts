/**
 * Damage detection and the records that survive it.
 *
 * Three independent witnesses bound the numbers a previous run may have revealed:
 *  1. the `meta` row of the state database (high-water mark + generation, with a checksum);
 *  2. the high-water file `FILE.hwm`, kept outside the database, rewritten durably (temp file,
 *     fsync, rename, fsync of the directory) every time a range is granted;
 *  3. the wall clock: the allocator never lets the high-water mark pass `clockCeiling(now)`, so
 *     when both records are lost, `clockCeiling(now at restart)` is above anything ever granted.
 * A damaged database is moved aside (`FILE.corrupt-<timestamp>`), never repaired in place.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MAX_INO } from '../core/numbers.js';

/** The state file exists but cannot be trusted; the store quarantines it and recovers. */
export class StoreDamageError extends Error {
  constructor(readonly reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'StoreDamageError';
  }
}

/** One line, no newlines: "CODE: message" for errors with a code, else the message. */
export function describeCause(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const text = typeof code === 'string' && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
    return text.replace(/\s*\n\s*/g, ' ');
  }
  return String(err).replace(/\s*\n\s*/g, ' ');
}

// ---------------------------------------------------------------------------------------------
// Wall-clock bound

/**
 * How far (in numbers) the high-water mark may run ahead of the wall clock in microseconds.
 * It lets a freshly clock-recovered store grant whole ranges at once; it does not loosen the bound.
 */
export const CLOCK_LEAD = 2 ** 30;

/**
 * The largest high-water mark the allocator may reach at wall-clock time `nowMs`: one number per
 * microsecond since the Unix epoch plus CLOCK_LEAD. This caps the sustained allocation rate at
 * 1,000,000 numbers per second (about 3x the benchmarked peak), which is what makes the clock a valid
 * witness: if the clock at a restart is not behind the clock of any earlier grant, every number
 * ever granted is below `clockCeiling(restart time)`. (2^53 is reached in the year 2255.)
 */
export function clockCeiling(nowMs: number): number {
  return Math.floor(nowMs) * 1000 + CLOCK_LEAD;
}

/** Generation to use when no record survives: seconds since the epoch (above any counter that advances at most once per second on average). */
export function clockGeneration(nowMs: number): number {
  return Math.floor(nowMs / 1000);
}

/** A value read from damaged or unverified storage is used only if it could be a real bound. */
export function plausibleHighWater(value: unknown, nowMs: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= Math.min(MAX_INO + 1, clockCeiling(nowMs));
}

// ---------------------------------------------------------------------------------------------
// Checksums

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** Checksum of the meta row (generation, high_water, created_at); a mismatch means damage. */
export function metaChecksum(generation: number, highWater: number, createdAt: string): string {
  return sha(`handlefs-meta v1|${generation}|${highWater}|${createdAt}`);
}

function fnv(s: string, h: number): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h;
}

function mixNumber(n: number, h: number): number {
  if (!Number.isSafeInteger(n)) return Math.imul(fnv(String(n), h ^ 0x2f), 16777619);
  h ^= n >>> 0; // low 32 bits
  h = Math.imul(h, 16777619);
  h ^= Math.floor(n / 4294967296) >>> 0; // high bits
  return Math.imul(h, 16777619);
}

const FNV_OFFSET = 2166136261;

/**
 * 32-bit FNV-1a over every column of an `inodes` row, stored beside it. SQLite's quick_check
 * verifies the b-tree structure; this catches flipped bytes inside a row's own content.
 */
export function rowChecksum(ino: number, generation: number, kindId: number, key: number, incarnation: number, scopeId: number, state: string | null = null): number {
  let h = mixNumber(ino, FNV_OFFSET);
  h = mixNumber(generation, h);
  h = mixNumber(kindId, h);
  h = mixNumber(key, h);
  h = mixNumber(incarnation, h);
  h = mixNumber(scopeId, h);
  // The state column (schema 2): a row without one sums as in schema 1, so older rows still verify.
  if (state !== null) h = fnv(state, h ^ 0x5e);
  return h >>> 0;
}

/** Checksum of a `kinds` or `scopes` row (id and name). */
export function nameChecksum(id: number, name: string): number {
  return fnv(name, mixNumber(id, FNV_OFFSET)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// High-water file (FILE.hwm)

export interface HwmRecord {
  readonly highWater: number;
  readonly generation: number;
}

export type HwmRead =
  | { readonly state: 'ok'; readonly record: HwmRecord }
  | { readonly state: 'missing' }
  | { readonly state: 'corrupt'; readonly reason: string };

const HWM_LINE = /^handlefs-hwm v1 high_water=(\d+) generation=(\d+) checksum=([0-9a-f]{32})\n?$/;

function hwmBody(r: HwmRecord): string {
  return `handlefs-hwm v1 high_water=${r.highWater} generation=${r.generation}`;
}

export function formatHwm(r: HwmRecord): string {
  const body = hwmBody(r);
  return `${body} checksum=${sha(body)}\n`;
}

export function parseHwm(text: string): HwmRead {
  const m = HWM_LINE.exec(text);
  if (!m) return { state: 'corrupt', reason: 'unrecognised content' };
  const record = { highWater: Number(m[1]), generation: Number(m[2]) };
  if (!Number.isSafeInteger(record.highWater) || !Number.isSafeInteger(record.generation)) {
    return { state: 'corrupt', reason: 'number out of range' };
  }
  if (sha(hwmBody(record)) !== m[3]) return { state: 'corrupt', reason: 'checksum mismatch' };
  return { state: 'ok', record };
}

export function readHwm(file: string): HwmRead {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    return { state: 'corrupt', reason: `unreadable (${describeCause(err)})` };
  }
  return parseHwm(text);
}

/** fsync a directory so that a rename or creation inside it is durable. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces FILE.hwm atomically and durably: write temp, fsync, rename, fsync the directory.
 * `sync: false` (a record that need only survive the process, not the machine) skips the fsyncs.
 */
export function writeHwm(file: string, record: HwmRecord, options: { sync?: boolean } = {}): void {
  const sync = options.sync ?? true;
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, formatHwm(record));
    if (sync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  if (sync) fsyncDir(path.dirname(file));
}

// ---------------------------------------------------------------------------------------------
// Quarantine

/** `20250102T030405.678Z`: sortable, no colons (safe on every filesystem). */
function quarantineStamp(nowMs: number): string {
  return new Date(nowMs).toISOString().replace(/[-:]/g, '');
}

/**
 * Moves the database and its -wal/-shm companions aside as `FILE.corrupt-<stamp>[-wal|-shm]`
 * (names the sqlite3 CLI pairs up, so the copy can be inspected with its WAL). Returns the new
 * paths. The directory is fsync'd so the old file cannot reappear after a crash.
 */
export function quarantine(dbFile: string, nowMs: number): string[] {
  let base = `${dbFile}.corrupt-${quarantineStamp(nowMs)}`;
  for (let i = 1; fs.existsSync(base); i++) base = `${dbFile}.corrupt-${quarantineStamp(nowMs)}.${i}`;
  const moved: string[] = [];
  for (const suffix of ['', '-wal', '-shm']) {
    const from = dbFile + suffix;
    if (!fs.existsSync(from)) continue;
    fs.renameSync(from, base + suffix);
    moved.push(base + suffix);
  }
  if (moved.length > 0) fsyncDir(path.dirname(dbFile));
  return moved;
}

/** True if an earlier damage left quarantined copies next to the state file. */
export function hasQuarantinedCopies(dbFile: string): boolean {
  const prefix = `${path.basename(dbFile)}.corrupt-`;
  try {
    return fs.readdirSync(path.dirname(dbFile)).some((n) => n.startsWith(prefix));
  } catch {
    return false;
  }
}

function walHasFrames(dbFile: string): boolean {
  try {
    return fs.statSync(`${dbFile}-wal`).size > 32; // 32-byte WAL header, then frames
  } catch {
    return false;
  }
}

/** The first 16 bytes of every SQLite 3 database file. */
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Cheap checks on the raw file before SQLite sees it: 'missing', 'empty' (0 bytes: SQLite would
 * silently treat it as a new database), or a reason why the header is not a database header.
 * Reads through a short-lived fd: call only while no SQLite connection of this process has the file open
 * (closing an fd drops the process's POSIX locks on the file).
 */
export function checkHeader(dbFile: string): 'missing' | 'empty' | 'ok' | { damaged: string } {
  let fd: number;
  try {
    fd = fs.openSync(dbFile, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return 'empty';
    if (size < 512) return { damaged: `file is truncated (${size} bytes)` };
    const head = Buffer.alloc(100);
    fs.readSync(fd, head, 0, 100, 0);
    if (!head.subarray(0, 16).equals(SQLITE_MAGIC)) return { damaged: 'not an SQLite database header' };
    const pageSize = head.readUInt16BE(16) === 1 ? 65536 : head.readUInt16BE(16);
    if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) return { damaged: `bad page size in header (${pageSize})` };
    if (size % pageSize !== 0) return { damaged: `file size ${size} is not a whole number of ${pageSize}-byte pages (truncated?)` };
    // The page count in the header is authoritative when its version stamp matches the change
    // counter. Only without a WAL: a crash inside a checkpoint may leave the header ahead of the
    // file, and the WAL (replayed by SQLite) then holds the missing pages.
    const pageCount = head.readUInt32BE(28);
    const headerValid = pageCount > 0 && head.readUInt32BE(24) === head.readUInt32BE(92);
    if (headerValid && !walHasFrames(dbFile) && pageCount * pageSize > size) {
      return { damaged: `file is truncated (${size} bytes, header says ${pageCount} pages of ${pageSize})` };
    }
    return 'ok';
  } finally {
    fs.closeSync(fd);
  }
}
