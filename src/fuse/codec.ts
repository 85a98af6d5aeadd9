/**
 * The server's half of the wire codec: request headers and names, replies and notifications.
 * Request bodies are decoded by their rows in the opcode table (opcodes.ts); the kernel's half
 * (encoding requests, decoding replies) is src/testing/kernel-codec.ts.
 * No I/O, no allocation on the reply path (encoders write into a caller's buffer).
 *
 * Decoders never read outside [start, end) and throw only FuseDecodeError on malformed input.
 * Encoders throw RangeError when a value cannot be represented (negative, not an integer, too big);
 * the session turns that into EIO and a log line.
 *
 * u64 fields are read and written as two u32 halves (no BigInt): values are JS numbers, exact up to
 * 2^53. A u64 above that decodes to the nearest double (only offsets the kernel computes can be that
 * large; node ids and handles are the ones we gave out).
 */
import {
  AttrLayout,
  AttrOut,
  Dirent,
  DirentPlus,
  EntryOut,
  Errno,
  FUSE_COMPAT_ATTR_OUT_SIZE,
  FUSE_COMPAT_ENTRY_OUT_SIZE,
  FUSE_COMPAT_22_INIT_OUT_SIZE,
  FUSE_COMPAT_INIT_OUT_SIZE,
  FUSE_COMPAT_STATFS_SIZE,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_NAME_MAX,
  GetxattrOut,
  InHeader,
  InitOut,
  Kstatfs,
  NotifyCode,
  NotifyDeleteOut,
  NotifyInvalEntryOut,
  NotifyInvalInodeOut,
  NotifyPollWakeupOut,
  OpenOut,
  OutHeader,
  PollOut,
  S_IFMT,
  recAlign,
} from './abi.js';
import type { Attr, DirEntry, Entry, OpenReply, StatfsReply } from './types.js';

const TWO32 = 4294967296;
const MAX_U64_AS_NUMBER = Number.MAX_SAFE_INTEGER;

/** A request that cannot be decoded. `unique` is set when the header was readable (reply possible). */
export class FuseDecodeError extends Error {
  override readonly name = 'FuseDecodeError';
  readonly code = 'EFUSEDECODE';
  constructor(
    message: string,
    readonly errno: number = Errno.EINVAL,
    readonly unique?: number,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------------------------

// One-entry DataView caches: the session decodes from one static read buffer and encodes into one
// reply buffer, so these almost always hit; DataView accesses compile to single loads/stores.
let rBuf: Uint8Array | undefined;
let rView: DataView = new DataView(new ArrayBuffer(8));
let wBuf: Uint8Array | undefined;
let wView: DataView = new DataView(new ArrayBuffer(8));

/** A DataView over `buf` for reading. */
export function readView(buf: Uint8Array): DataView {
  if (buf !== rBuf) {
    rBuf = buf;
    rView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return rView;
}

/** A DataView over `buf` for writing. */
export function writeView(buf: Uint8Array): DataView {
  if (buf !== wBuf) {
    wBuf = buf;
    wView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return wView;
}

/** u64 at `off` as a number (exact below 2^53). Throws RangeError past the end of `buf`. */
export function readU64(buf: Buffer, off: number): number {
  const dv = readView(buf);
  return dv.getUint32(off + 4, true) * TWO32 + dv.getUint32(off, true);
}

/**
 * A request's `unique` in JS: bit 63 (FUSE_UNIQUE_RESEND, set on requests the kernel resends after
 * FUSE_NOTIFY_RESEND) becomes RESENT_UNIQUE (2^52), so the number stays exact and a reply echoes
 * the very bits the kernel sent. The kernel's counter steps by 2 per request: 2^52 is centuries away.
 */
export const RESENT_UNIQUE = 2 ** 52;
const RESEND_HI = 0x80000000;
const HI_BELOW_FLAG = 0x100000; // 2^52 / 2^32

export function readUnique(buf: Buffer, off: number): number {
  const dv = readView(buf);
  const hi = dv.getUint32(off + 4, true);
  const lo = dv.getUint32(off, true);
  if (hi < RESEND_HI) return hi * TWO32 + lo;
  return RESENT_UNIQUE + ((hi - RESEND_HI) % HI_BELOW_FLAG) * TWO32 + lo;
}

/** Writes a unique read by readUnique (RESENT_UNIQUE back to bit 63). */
export function writeUnique(buf: Buffer, off: number, v: number): void {
  if (v < RESENT_UNIQUE) return writeU64(buf, off, v);
  writeU64(buf, off, v - RESENT_UNIQUE);
  const dv = writeView(buf);
  dv.setUint32(off + 4, (dv.getUint32(off + 4, true) | RESEND_HI) >>> 0, true);
}

/** Whether a unique (as readUnique returns it) is of a resent request. */
export function isResent(unique: number): boolean {
  return unique >= RESENT_UNIQUE;
}

/** i64 at `off` as a number (exact within ±2^53). */
export function readI64(buf: Buffer, off: number): number {
  const dv = readView(buf);
  return dv.getInt32(off + 4, true) * TWO32 + dv.getUint32(off, true);
}

/** Writes a non-negative safe integer as u64. */
export function writeU64(buf: Buffer, off: number, v: number): void {
  const dv = writeView(buf);
  if (v >>> 0 === v) {
    dv.setUint32(off, v, true);
    dv.setUint32(off + 4, 0, true);
    return;
  }
  if (!(v >= 0 && v <= MAX_U64_AS_NUMBER) || !Number.isInteger(v)) {
    throw new RangeError(`u64 field: ${v} is not a non-negative safe integer`);
  }
  const lo = v % TWO32;
  dv.setUint32(off, lo, true);
  dv.setUint32(off + 4, (v - lo) / TWO32, true);
}

/** Writes a safe integer (possibly negative) as i64. */
export function writeI64(buf: Buffer, off: number, v: number): void {
  const dv = writeView(buf);
  if (v >>> 0 === v) {
    dv.setUint32(off, v, true);
    dv.setUint32(off + 4, 0, true);
    return;
  }
  if (!Number.isSafeInteger(v)) throw new RangeError(`i64 field: ${v} is not a safe integer`);
  const hi = Math.floor(v / TWO32);
  dv.setUint32(off, v - hi * TWO32, true);
  dv.setInt32(off + 4, hi, true);
}

/** Writes a u32 field; throws RangeError for anything that is not an integer in 0..2^32-1. */
function u32(dv: DataView, off: number, v: number): void {
  if (v >>> 0 !== v) throw new RangeError(`u32 field: ${v} is not an integer in 0..4294967295`);
  dv.setUint32(off, v, true);
}

/**
 * Writes a timeout in seconds (fractional) as u64 seconds at `secOff` and u32 nanoseconds at
 * `nsecOff`. Negative/NaN → 0; beyond 2^53 s → clamped.
 */
function writeTimeout(buf: Buffer, secOff: number, nsecOff: number, t: number): void {
  let sec = 0;
  let ns = 0;
  if (t >>> 0 === t) sec = t;
  else if (t >= MAX_U64_AS_NUMBER) sec = MAX_U64_AS_NUMBER;
  else if (t > 0) {
    sec = Math.floor(t);
    ns = Math.round((t - sec) * 1e9);
    if (ns >= 1e9) {
      sec += 1;
      ns = 0;
    }
  }
  writeU64(buf, secOff, sec);
  writeView(buf).setUint32(nsecOff, ns, true);
}

// Scratch for splitTimeMs (no allocation on the hot path).
let tSec = 0;
let tNsec = 0;

/** Milliseconds (fractional, possibly negative) → tSec (floor) + tNsec (0..999999999). */
function splitTimeMs(ms: number): void {
  if (!Number.isFinite(ms)) ms = 0;
  let sec = Math.floor(ms / 1000);
  let nsec = Math.round((ms - sec * 1000) * 1e6);
  if (nsec >= 1e9) {
    sec += 1;
    nsec -= 1e9;
  } else if (nsec < 0) nsec = 0;
  tSec = sec;
  tNsec = nsec;
}

function writeTimeMs(buf: Buffer, secOff: number, nsecOff: number, ms: number): void {
  splitTimeMs(ms);
  writeI64(buf, secOff, tSec);
  writeView(buf).setUint32(nsecOff, tNsec, true);
}

/** A timeout in seconds as writeTimeout() wrote it (u64 seconds + u32 nanoseconds). */
export function readTimeout(buf: Buffer, secOff: number, nsecOff: number): number {
  return readU64(buf, secOff) + buf.readUInt32LE(nsecOff) / 1e9;
}

export function readTimeMs(buf: Buffer, secOff: number, nsecOff: number): number {
  return readI64(buf, secOff) * 1000 + buf.readUInt32LE(nsecOff) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

export interface RequestHeader {
  /** Total length of the request, header included. */
  len: number;
  opcode: number;
  unique: number;
  nodeId: number;
  uid: number;
  gid: number;
  pid: number;
  /** Length of the extension area at the end of the request, in bytes. */
  extLen: number;
}

/**
 * Reads the fixed header at `start`. Checks that the header fits, that `len` covers at least the
 * header and at most `end - start`, and that the extension area fits.
 */
export function decodeInHeader(buf: Buffer, start = 0, end = buf.length): RequestHeader {
  const avail = end - start;
  if (!(start >= 0 && end <= buf.length && avail >= InHeader.SIZE)) {
    throw new FuseDecodeError(`request too short for a header: ${avail < 0 ? 0 : avail} bytes`, Errno.EIO);
  }
  const dv = readView(buf);
  const len = dv.getUint32(start + InHeader.len, true);
  const unique = readUnique(buf, start + InHeader.unique);
  if (len < InHeader.SIZE) {
    throw new FuseDecodeError(`request length ${len} is shorter than its header`, Errno.EIO, unique);
  }
  if (len > avail) {
    throw new FuseDecodeError(`request length ${len} exceeds the ${avail} bytes read`, Errno.EIO, unique);
  }
  const extLen = dv.getUint16(start + InHeader.total_extlen, true) * 8;
  if (extLen > len - InHeader.SIZE) {
    throw new FuseDecodeError(`extension length ${extLen} exceeds the request body`, Errno.EIO, unique);
  }
  return {
    len,
    opcode: dv.getUint32(start + InHeader.opcode, true),
    unique,
    nodeId: readU64(buf, start + InHeader.nodeid),
    uid: dv.getUint32(start + InHeader.uid, true),
    gid: dv.getUint32(start + InHeader.gid, true),
    pid: dv.getUint32(start + InHeader.pid, true),
    extLen,
  };
}

type Utf8Sliceable = Buffer & { utf8Slice?: (start: number, end: number) => string };
/** buf.toString('utf8', s, e) without its encoding dispatch (Buffer#utf8Slice when present). */
function utf8(buf: Buffer, s: number, e: number): string {
  const b = buf as Utf8Sliceable;
  return b.utf8Slice !== undefined ? b.utf8Slice(s, e) : buf.toString('utf8', s, e);
}

/** A NUL-terminated name in [off, end): non-empty, no '/', at most FUSE_NAME_MAX bytes. */
export function decodeName(buf: Buffer, off: number, end: number, unique?: number): string {
  const lim = end - off > FUSE_NAME_MAX + 1 ? off + FUSE_NAME_MAX + 1 : end;
  let i = off;
  let bits = 0;
  for (; i < lim; i++) {
    const c = buf[i]!;
    if (c === 0) break;
    if (c === 0x2f) throw new FuseDecodeError('name contains "/"', Errno.EINVAL, unique);
    bits |= c;
  }
  if (i >= lim) {
    throw new FuseDecodeError(
      end - off > FUSE_NAME_MAX ? 'name too long' : 'name is not NUL-terminated',
      end - off > FUSE_NAME_MAX ? Errno.ENAMETOOLONG : Errno.EINVAL,
      unique,
    );
  }
  if (i === off) throw new FuseDecodeError('empty name', Errno.EINVAL, unique);
  if (bits < 0x80 && i - off <= 24) {
    // Short ASCII (the common case: "pid", "1234", "status"): cheaper in JS than a native call.
    let name = '';
    for (let j = off; j < i; j++) name += String.fromCharCode(buf[j]!);
    return name;
  }
  return utf8(buf, off, i);
}

export interface InitRequest {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  /** 0 unless the kernel set FUSE_INIT_EXT and sent the 7.36+ structure. */
  flags2: number;
}

export interface ReadRequest {
  fh: number;
  offset: number;
  size: number;
  readFlags: number;
  lockOwner: number;
  flags: number;
}

export interface ForgetItem {
  nodeId: number;
  nlookup: number;
}

// ---------------------------------------------------------------------------------------------
// Replies. Each encoder writes at `off` and returns the number of bytes written.
// ---------------------------------------------------------------------------------------------

/** fuse_out_header. `errno` is positive (0 = success); it is sent negated. */
export function encodeOutHeader(buf: Buffer, off: number, len: number, errno: number, unique: number): number {
  const dv = writeView(buf);
  dv.setUint32(off + OutHeader.len, len, true);
  dv.setInt32(off + OutHeader.error, errno === 0 ? 0 : -errno, true);
  writeUnique(buf, off + OutHeader.unique, unique);
  return OutHeader.SIZE;
}

/** A complete error reply (header only). */
export function encodeErrorReply(buf: Buffer, off: number, unique: number, errno: number): number {
  return encodeOutHeader(buf, off, OutHeader.SIZE, errno, unique);
}

/** struct fuse_attr (88 bytes; the last 8, blksize and flags, are dropped before 7.9). */
export function encodeAttr(buf: Buffer, off: number, a: Attr): void {
  const dv = writeView(buf);
  writeU64(buf, off + AttrLayout.ino, a.ino);
  writeU64(buf, off + AttrLayout.size, a.size);
  writeU64(buf, off + AttrLayout.blocks, a.blocks ?? Math.ceil(a.size / 512));
  if (a.atimeMs === a.mtimeMs && a.mtimeMs === a.ctimeMs) {
    // Often all three are one time: split it once.
    splitTimeMs(a.mtimeMs);
    writeI64(buf, off + AttrLayout.atime, tSec);
    writeI64(buf, off + AttrLayout.mtime, tSec);
    writeI64(buf, off + AttrLayout.ctime, tSec);
    dv.setUint32(off + AttrLayout.atimensec, tNsec, true);
    dv.setUint32(off + AttrLayout.mtimensec, tNsec, true);
    dv.setUint32(off + AttrLayout.ctimensec, tNsec, true);
  } else {
    writeTimeMs(buf, off + AttrLayout.atime, off + AttrLayout.atimensec, a.atimeMs);
    writeTimeMs(buf, off + AttrLayout.mtime, off + AttrLayout.mtimensec, a.mtimeMs);
    writeTimeMs(buf, off + AttrLayout.ctime, off + AttrLayout.ctimensec, a.ctimeMs);
  }
  u32(dv, off + AttrLayout.mode, a.mode);
  u32(dv, off + AttrLayout.nlink, a.nlink);
  u32(dv, off + AttrLayout.uid, a.uid);
  u32(dv, off + AttrLayout.gid, a.gid);
  u32(dv, off + AttrLayout.rdev, a.rdev ?? 0);
  u32(dv, off + AttrLayout.blksize, a.blksize ?? 0);
  dv.setUint32(off + AttrLayout.flags, 0, true);
}

/** Size of fuse_entry_out for a protocol minor version. */
export function entryOutSize(minor: number): number {
  return minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : EntryOut.SIZE;
}

export function attrOutSize(minor: number): number {
  return minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE : AttrOut.SIZE;
}

/** struct fuse_entry_out. A negative entry (nodeId 0) is written with a zeroed attr. */
export function encodeEntryOut(buf: Buffer, off: number, e: Entry, minor = FUSE_KERNEL_MINOR_VERSION): number {
  writeU64(buf, off + EntryOut.nodeid, e.nodeId);
  writeU64(buf, off + EntryOut.generation, e.generation);
  writeTimeout(buf, off + EntryOut.entry_valid, off + EntryOut.entry_valid_nsec, e.entryTimeout);
  writeTimeout(buf, off + EntryOut.attr_valid, off + EntryOut.attr_valid_nsec, e.attrTimeout);
  if (e.nodeId === 0) buf.fill(0, off + EntryOut.attr, off + EntryOut.SIZE);
  else encodeAttr(buf, off + EntryOut.attr, e.attr);
  return entryOutSize(minor);
}

/** struct fuse_attr_out. */
export function encodeAttrOut(buf: Buffer, off: number, a: Attr, attrTimeout: number, minor = FUSE_KERNEL_MINOR_VERSION): number {
  writeTimeout(buf, off + AttrOut.attr_valid, off + AttrOut.attr_valid_nsec, attrTimeout);
  writeView(buf).setUint32(off + AttrOut.dummy, 0, true);
  encodeAttr(buf, off + AttrOut.attr, a);
  return attrOutSize(minor);
}

export interface InitReply {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  flags2: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
}

/** Size of fuse_init_out the kernel of minor `kernelMinor` expects. */
export function initOutSize(kernelMinor: number): number {
  if (kernelMinor < 5) return FUSE_COMPAT_INIT_OUT_SIZE;
  if (kernelMinor < 23) return FUSE_COMPAT_22_INIT_OUT_SIZE;
  return InitOut.SIZE;
}

export function encodeInitOut(buf: Buffer, off: number, r: InitReply, kernelMinor: number): number {
  const size = initOutSize(kernelMinor);
  buf.fill(0, off, off + size);
  buf.writeUInt32LE(r.major, off + InitOut.major);
  buf.writeUInt32LE(r.minor, off + InitOut.minor);
  if (size > FUSE_COMPAT_INIT_OUT_SIZE) {
    buf.writeUInt32LE(r.maxReadahead, off + InitOut.max_readahead);
    buf.writeUInt32LE(r.flags >>> 0, off + InitOut.flags);
    buf.writeUInt16LE(r.maxBackground, off + InitOut.max_background);
    buf.writeUInt16LE(r.congestionThreshold, off + InitOut.congestion_threshold);
    buf.writeUInt32LE(r.maxWrite, off + InitOut.max_write);
  }
  if (size >= InitOut.SIZE) {
    buf.writeUInt32LE(r.timeGran, off + InitOut.time_gran);
    buf.writeUInt16LE(r.maxPages, off + InitOut.max_pages);
    buf.writeUInt32LE(r.flags2 >>> 0, off + InitOut.flags2);
  }
  return size;
}

export function openFlagsOf(r: OpenReply): number {
  let f = 0;
  if (r.directIo) f |= 1 << 0;
  if (r.keepCache) f |= 1 << 1;
  if (r.nonSeekable) f |= 1 << 2;
  if (r.cacheDir) f |= 1 << 3;
  if (r.stream) f |= 1 << 4;
  if (r.noFlush) f |= 1 << 5;
  return f;
}

export function encodeOpenOut(buf: Buffer, off: number, r: OpenReply): number {
  writeU64(buf, off + OpenOut.fh, r.fh);
  buf.writeUInt32LE(openFlagsOf(r), off + OpenOut.open_flags);
  buf.writeInt32LE(0, off + OpenOut.backing_id);
  return OpenOut.SIZE;
}

export function encodeStatfsOut(buf: Buffer, off: number, s: StatfsReply, minor = FUSE_KERNEL_MINOR_VERSION): number {
  buf.fill(0, off, off + Kstatfs.SIZE);
  writeU64(buf, off + Kstatfs.blocks, s.blocks);
  writeU64(buf, off + Kstatfs.bfree, s.bfree);
  writeU64(buf, off + Kstatfs.bavail, s.bavail);
  writeU64(buf, off + Kstatfs.files, s.files);
  writeU64(buf, off + Kstatfs.ffree, s.ffree);
  const dv = writeView(buf);
  u32(dv, off + Kstatfs.bsize, s.bsize);
  u32(dv, off + Kstatfs.namelen, s.namelen);
  u32(dv, off + Kstatfs.frsize, s.frsize);
  return minor < 4 ? FUSE_COMPAT_STATFS_SIZE : Kstatfs.SIZE;
}

export function encodeGetxattrOut(buf: Buffer, off: number, size: number): number {
  buf.writeUInt32LE(size, off + GetxattrOut.size);
  buf.writeUInt32LE(0, off + GetxattrOut.padding);
  return GetxattrOut.SIZE;
}

export function encodePollOut(buf: Buffer, off: number, revents: number): number {
  buf.writeUInt32LE(revents >>> 0, off + PollOut.revents);
  buf.writeUInt32LE(0, off + PollOut.padding);
  return PollOut.SIZE;
}

/** Bytes a dirent for `nameBytes` takes (aligned). */
export function direntSize(nameBytes: number, plus: boolean): number {
  return recAlign((plus ? DirentPlus.name : Dirent.name) + nameBytes);
}

/**
 * Appends one fuse_dirent (plus=false) or fuse_direntplus (plus=true) at `off` if it fits before
 * `limit`. Returns the new offset, or -1 if it does not fit (nothing written). Padding is zeroed.
 */
export function encodeDirent(
  buf: Buffer,
  off: number,
  limit: number,
  d: DirEntry,
  plus: boolean,
  minor = FUSE_KERNEL_MINOR_VERSION,
): number {
  const nameLen = Buffer.byteLength(d.name, 'utf8');
  if (nameLen === 0 || nameLen > FUSE_NAME_MAX) throw new RangeError(`dirent name length ${nameLen}`);
  const total = direntSize(nameLen, plus);
  if (off + total > limit) return -1;
  let p = off;
  if (plus) {
    const e = d.entry;
    if (e !== undefined && e.nodeId !== 0) encodeEntryOut(buf, p, e, minor);
    else buf.fill(0, p, p + EntryOut.SIZE);
    p += DirentPlus.dirent;
  }
  writeU64(buf, p + Dirent.ino, d.ino);
  writeU64(buf, p + Dirent.off, d.offset);
  buf.writeUInt32LE(nameLen, p + Dirent.namelen);
  buf.writeUInt32LE((d.type & S_IFMT) >>> 12, p + Dirent.type);
  buf.write(d.name, p + Dirent.name, nameLen, 'utf8');
  buf.fill(0, p + Dirent.name + nameLen, off + total);
  return off + total;
}

// ---------------------------------------------------------------------------------------------
// Notifications (unsolicited writes: unique 0, the notify code in the error field).
// ---------------------------------------------------------------------------------------------

function notifyHeader(buf: Buffer, len: number, code: number): void {
  buf.writeUInt32LE(len, OutHeader.len);
  buf.writeInt32LE(code, OutHeader.error);
  buf.writeUInt32LE(0, OutHeader.unique);
  buf.writeUInt32LE(0, OutHeader.unique + 4);
}

export function encodeNotifyInvalInode(nodeId: number, off: number, len: number): Buffer {
  const size = OutHeader.SIZE + NotifyInvalInodeOut.SIZE;
  const buf = Buffer.alloc(size);
  notifyHeader(buf, size, NotifyCode.INVAL_INODE);
  writeU64(buf, OutHeader.SIZE + NotifyInvalInodeOut.ino, nodeId);
  writeI64(buf, OutHeader.SIZE + NotifyInvalInodeOut.off, off);
  writeI64(buf, OutHeader.SIZE + NotifyInvalInodeOut.len, len);
  return buf;
}

/** FUSE_NOTIFY_POLL: wake the pollers of the file whose poll handle is `kh`. */
export function encodeNotifyPollWakeup(kh: number): Buffer {
  const size = OutHeader.SIZE + NotifyPollWakeupOut.SIZE;
  const buf = Buffer.alloc(size);
  notifyHeader(buf, size, NotifyCode.POLL);
  writeU64(buf, OutHeader.SIZE + NotifyPollWakeupOut.kh, kh);
  return buf;
}

function nameBytes(name: string): Buffer {
  const b = Buffer.from(name, 'utf8');
  if (b.length === 0 || b.length > FUSE_NAME_MAX || b.includes(0) || b.includes(0x2f)) {
    throw new RangeError(`invalid name for notification: ${JSON.stringify(name)}`);
  }
  return b;
}

export function encodeNotifyInvalEntry(parent: number, name: string, flags: number): Buffer {
  const nb = nameBytes(name);
  const size = OutHeader.SIZE + NotifyInvalEntryOut.SIZE + nb.length + 1;
  const buf = Buffer.alloc(size);
  notifyHeader(buf, size, NotifyCode.INVAL_ENTRY);
  const o = OutHeader.SIZE;
  writeU64(buf, o + NotifyInvalEntryOut.parent, parent);
  buf.writeUInt32LE(nb.length, o + NotifyInvalEntryOut.namelen);
  buf.writeUInt32LE(flags, o + NotifyInvalEntryOut.flags);
  nb.copy(buf, o + NotifyInvalEntryOut.SIZE);
  return buf;
}

/** A notification without a body: RESEND (7.40), INC_EPOCH (7.44). */
export function encodeNotifyBare(code: number): Buffer {
  const buf = Buffer.alloc(OutHeader.SIZE);
  notifyHeader(buf, OutHeader.SIZE, code);
  return buf;
}

export function encodeNotifyDelete(parent: number, child: number, name: string): Buffer {
  const nb = nameBytes(name);
  const size = OutHeader.SIZE + NotifyDeleteOut.SIZE + nb.length + 1;
  const buf = Buffer.alloc(size);
  notifyHeader(buf, size, NotifyCode.DELETE);
  const o = OutHeader.SIZE;
  writeU64(buf, o + NotifyDeleteOut.parent, parent);
  writeU64(buf, o + NotifyDeleteOut.child, child);
  buf.writeUInt32LE(nb.length, o + NotifyDeleteOut.namelen);
  nb.copy(buf, o + NotifyDeleteOut.SIZE);
  return buf;
}
