/**
 * The kernel's half of the FUSE wire codec: encoding requests and decoding replies and
 * notifications, as /dev/fuse's other end does. The server never runs this (its half is
 * src/fuse/codec.ts); the consumer kit, the specs and the benchmarks play the kernel with it.
 */
import {
  AccessIn,
  AttrLayout,
  AttrOut,
  BatchForgetIn,
  Dirent,
  DirentPlus,
  EntryOut,
  Errno,
  FUSE_GETATTR_FH,
  FUSE_KERNEL_MINOR_VERSION,
  FlushIn,
  ForgetIn,
  ForgetOne,
  GetattrIn,
  GetxattrIn,
  GetxattrOut,
  InHeader,
  InitFlags,
  InitFlags2,
  InitIn,
  InitOut,
  InterruptIn,
  Kstatfs,
  NotifyCode,
  NotifyDeleteOut,
  NotifyInvalEntryOut,
  NotifyInvalInodeOut,
  NotifyPollWakeupOut,
  OpenIn,
  OpenOut,
  OutHeader,
  PollIn,
  PollOut,
  ReadIn,
  ReleaseIn,
} from '../fuse/abi.js';
import {
  FuseDecodeError,
  type ForgetItem,
  type InitReply,
  type ReadRequest,
  direntSize,
  readI64,
  readTimeMs,
  readTimeout,
  readU64,
  readUnique,
  writeU64,
  writeUnique,
} from '../fuse/codec.js';
import type { Attr, Entry, OpenReply, StatfsReply } from '../fuse/types.js';

/** What a 6.18 kernel (protocol 7.45) offers in INIT: bits 0..30 except FILE_OPS, MAP_ALIGNMENT and SUBMOUNTS. */
export const KERNEL_FLAGS_745 = (0x7fffffff & ~(InitFlags.FILE_OPS | InitFlags.MAP_ALIGNMENT | InitFlags.SUBMOUNTS)) >>> 0;
/** The second word of a 6.18 kernel's INIT flags. */
export const KERNEL_FLAGS2_745 =
  InitFlags2.SECURITY_CTX |
  InitFlags2.CREATE_SUPP_GROUP |
  InitFlags2.HAS_EXPIRE_ONLY |
  InitFlags2.DIRECT_IO_ALLOW_MMAP |
  InitFlags2.PASSTHROUGH |
  InitFlags2.NO_EXPORT_SUPPORT |
  InitFlags2.HAS_RESEND |
  InitFlags2.ALLOW_IDMAP |
  InitFlags2.REQUEST_TIMEOUT;

export interface RequestHeaderSpec {
  opcode: number;
  unique: number;
  nodeId?: number;
  uid?: number;
  gid?: number;
  pid?: number;
  /** Override the len field (to build malformed requests). */
  len?: number;
}

/** A whole request: header + body. */
export function encodeRequest(h: RequestHeaderSpec, body: Buffer = Buffer.alloc(0)): Buffer {
  const buf = Buffer.alloc(InHeader.SIZE + body.length);
  buf.writeUInt32LE(h.len ?? buf.length, InHeader.len);
  buf.writeUInt32LE(h.opcode, InHeader.opcode);
  writeUnique(buf, InHeader.unique, h.unique);
  writeU64(buf, InHeader.nodeid, h.nodeId ?? 0);
  buf.writeUInt32LE(h.uid ?? 0, InHeader.uid);
  buf.writeUInt32LE(h.gid ?? 0, InHeader.gid);
  buf.writeUInt32LE(h.pid ?? 0, InHeader.pid);
  body.copy(buf, InHeader.SIZE);
  return buf;
}

function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

/** Request bodies, byte-exact to the kernel's structures. */
export const requestBody = {
  lookup: (name: string): Buffer => cstr(name),
  forget: (nlookup: number): Buffer => {
    const b = Buffer.alloc(ForgetIn.SIZE);
    writeU64(b, 0, nlookup);
    return b;
  },
  batchForget: (items: ForgetItem[], count = items.length): Buffer => {
    const b = Buffer.alloc(BatchForgetIn.SIZE + items.length * ForgetOne.SIZE);
    b.writeUInt32LE(count >>> 0, BatchForgetIn.count);
    items.forEach((it, i) => {
      writeU64(b, BatchForgetIn.SIZE + i * ForgetOne.SIZE + ForgetOne.nodeid, it.nodeId);
      writeU64(b, BatchForgetIn.SIZE + i * ForgetOne.SIZE + ForgetOne.nlookup, it.nlookup);
    });
    return b;
  },
  getattr: (fh?: number): Buffer => {
    const b = Buffer.alloc(GetattrIn.SIZE);
    if (fh !== undefined) {
      b.writeUInt32LE(FUSE_GETATTR_FH, GetattrIn.getattr_flags);
      writeU64(b, GetattrIn.fh, fh);
    }
    return b;
  },
  init: (r: { major?: number; minor?: number; maxReadahead?: number; flags?: number; flags2?: number }): Buffer => {
    const b = Buffer.alloc(InitIn.SIZE);
    b.writeUInt32LE(r.major ?? 7, InitIn.major);
    b.writeUInt32LE(r.minor ?? FUSE_KERNEL_MINOR_VERSION, InitIn.minor);
    b.writeUInt32LE(r.maxReadahead ?? 131072, InitIn.max_readahead);
    b.writeUInt32LE((r.flags ?? 0) >>> 0, InitIn.flags);
    b.writeUInt32LE((r.flags2 ?? 0) >>> 0, InitIn.flags2);
    return b;
  },
  open: (flags: number, openFlags = 0): Buffer => {
    const b = Buffer.alloc(OpenIn.SIZE);
    b.writeUInt32LE(flags >>> 0, OpenIn.flags);
    b.writeUInt32LE(openFlags >>> 0, OpenIn.open_flags);
    return b;
  },
  read: (r: Partial<ReadRequest> & { size: number }): Buffer => {
    const b = Buffer.alloc(ReadIn.SIZE);
    writeU64(b, ReadIn.fh, r.fh ?? 0);
    writeU64(b, ReadIn.offset, r.offset ?? 0);
    b.writeUInt32LE(r.size, ReadIn.size);
    b.writeUInt32LE(r.readFlags ?? 0, ReadIn.read_flags);
    writeU64(b, ReadIn.lock_owner, r.lockOwner ?? 0);
    b.writeUInt32LE(r.flags ?? 0, ReadIn.flags);
    return b;
  },
  release: (fh: number, flags = 0, releaseFlags = 0, lockOwner = 0): Buffer => {
    const b = Buffer.alloc(ReleaseIn.SIZE);
    writeU64(b, ReleaseIn.fh, fh);
    b.writeUInt32LE(flags, ReleaseIn.flags);
    b.writeUInt32LE(releaseFlags, ReleaseIn.release_flags);
    writeU64(b, ReleaseIn.lock_owner, lockOwner);
    return b;
  },
  flush: (fh: number, lockOwner = 0): Buffer => {
    const b = Buffer.alloc(FlushIn.SIZE);
    writeU64(b, FlushIn.fh, fh);
    writeU64(b, FlushIn.lock_owner, lockOwner);
    return b;
  },
  getxattr: (size: number, name: string): Buffer => {
    const b = Buffer.alloc(GetxattrIn.SIZE);
    b.writeUInt32LE(size, GetxattrIn.size);
    return Buffer.concat([b, cstr(name)]);
  },
  listxattr: (size: number): Buffer => {
    const b = Buffer.alloc(GetxattrIn.SIZE);
    b.writeUInt32LE(size, GetxattrIn.size);
    return b;
  },
  access: (mask: number): Buffer => {
    const b = Buffer.alloc(AccessIn.SIZE);
    b.writeUInt32LE(mask, AccessIn.mask);
    return b;
  },
  interrupt: (target: number): Buffer => {
    const b = Buffer.alloc(InterruptIn.SIZE);
    writeUnique(b, InterruptIn.unique, target);
    return b;
  },
  poll: (fh: number, kh: number, flags: number, events: number): Buffer => {
    const b = Buffer.alloc(PollIn.SIZE);
    writeU64(b, PollIn.fh, fh);
    writeU64(b, PollIn.kh, kh);
    b.writeUInt32LE(flags, PollIn.flags);
    b.writeUInt32LE(events, PollIn.events);
    return b;
  },
};

export interface OutHeaderFields {
  len: number;
  /** Positive errno (0 = success); for notifications, the negated notify code. */
  errno: number;
  /** Raw error field as written (negative errno or positive notify code). */
  error: number;
  unique: number;
}

export function decodeOutHeader(buf: Buffer, off = 0): OutHeaderFields {
  if (buf.length - off < OutHeader.SIZE) throw new FuseDecodeError('reply shorter than its header', Errno.EIO);
  const error = buf.readInt32LE(off + OutHeader.error);
  return {
    len: buf.readUInt32LE(off + OutHeader.len),
    errno: error === 0 ? 0 : -error,
    error,
    unique: readUnique(buf, off + OutHeader.unique),
  };
}

export function decodeAttr(buf: Buffer, off: number): Required<Attr> {
  return {
    ino: readU64(buf, off + AttrLayout.ino),
    size: readU64(buf, off + AttrLayout.size),
    blocks: readU64(buf, off + AttrLayout.blocks),
    atimeMs: readTimeMs(buf, off + AttrLayout.atime, off + AttrLayout.atimensec),
    mtimeMs: readTimeMs(buf, off + AttrLayout.mtime, off + AttrLayout.mtimensec),
    ctimeMs: readTimeMs(buf, off + AttrLayout.ctime, off + AttrLayout.ctimensec),
    mode: buf.readUInt32LE(off + AttrLayout.mode),
    nlink: buf.readUInt32LE(off + AttrLayout.nlink),
    uid: buf.readUInt32LE(off + AttrLayout.uid),
    gid: buf.readUInt32LE(off + AttrLayout.gid),
    rdev: buf.readUInt32LE(off + AttrLayout.rdev),
    blksize: buf.readUInt32LE(off + AttrLayout.blksize),
  };
}

export function decodeEntryOut(buf: Buffer, off: number): Entry & { attr: Required<Attr> } {
  return {
    nodeId: readU64(buf, off + EntryOut.nodeid),
    generation: readU64(buf, off + EntryOut.generation),
    entryTimeout: readTimeout(buf, off + EntryOut.entry_valid, off + EntryOut.entry_valid_nsec),
    attrTimeout: readTimeout(buf, off + EntryOut.attr_valid, off + EntryOut.attr_valid_nsec),
    attr: decodeAttr(buf, off + EntryOut.attr),
  };
}

export function decodeAttrOut(buf: Buffer, off: number): { attr: Required<Attr>; attrTimeout: number } {
  return {
    attrTimeout: readTimeout(buf, off + AttrOut.attr_valid, off + AttrOut.attr_valid_nsec),
    attr: decodeAttr(buf, off + AttrOut.attr),
  };
}

export function decodeInitOut(buf: Buffer, off: number): InitReply {
  return {
    major: buf.readUInt32LE(off + InitOut.major),
    minor: buf.readUInt32LE(off + InitOut.minor),
    maxReadahead: buf.readUInt32LE(off + InitOut.max_readahead),
    flags: buf.readUInt32LE(off + InitOut.flags),
    maxBackground: buf.readUInt16LE(off + InitOut.max_background),
    congestionThreshold: buf.readUInt16LE(off + InitOut.congestion_threshold),
    maxWrite: buf.readUInt32LE(off + InitOut.max_write),
    timeGran: buf.readUInt32LE(off + InitOut.time_gran),
    maxPages: buf.readUInt16LE(off + InitOut.max_pages),
    flags2: buf.readUInt32LE(off + InitOut.flags2),
  };
}

export function decodeOpenOut(buf: Buffer, off: number): { fh: number; openFlags: number } {
  return { fh: readU64(buf, off + OpenOut.fh), openFlags: buf.readUInt32LE(off + OpenOut.open_flags) };
}

/** fuse_getxattr_out: the size a GETXATTR/LISTXATTR of size 0 asked for. */
export function decodeGetxattrOut(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + GetxattrOut.size);
}

/** fuse_poll_out: the ready events. */
export function decodePollOut(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + PollOut.revents);
}

/** fuse_open_out as the OpenReply it was encoded from (the inverse of openFlagsOf). */
export function decodeOpenReply(buf: Buffer, off: number): OpenReply {
  const { fh, openFlags: f } = decodeOpenOut(buf, off);
  const r: OpenReply = { fh };
  if (f & (1 << 0)) r.directIo = true;
  if (f & (1 << 1)) r.keepCache = true;
  if (f & (1 << 2)) r.nonSeekable = true;
  if (f & (1 << 3)) r.cacheDir = true;
  if (f & (1 << 4)) r.stream = true;
  if (f & (1 << 5)) r.noFlush = true;
  return r;
}

export function decodeStatfsOut(buf: Buffer, off: number): StatfsReply {
  return {
    blocks: readU64(buf, off + Kstatfs.blocks),
    bfree: readU64(buf, off + Kstatfs.bfree),
    bavail: readU64(buf, off + Kstatfs.bavail),
    files: readU64(buf, off + Kstatfs.files),
    ffree: readU64(buf, off + Kstatfs.ffree),
    bsize: buf.readUInt32LE(off + Kstatfs.bsize),
    namelen: buf.readUInt32LE(off + Kstatfs.namelen),
    frsize: buf.readUInt32LE(off + Kstatfs.frsize),
  };
}

export interface DecodedDirent {
  ino: number;
  offset: number;
  type: number;
  name: string;
  entry?: Entry;
}

/** Parses a READDIR / READDIRPLUS reply body. */
export function decodeDirents(buf: Buffer, off: number, end: number, plus: boolean): DecodedDirent[] {
  const out: DecodedDirent[] = [];
  let p = off;
  while (p < end) {
    const d = plus ? p + DirentPlus.dirent : p;
    if (d + Dirent.SIZE > end) throw new FuseDecodeError('truncated dirent', Errno.EIO);
    const namelen = buf.readUInt32LE(d + Dirent.namelen);
    const total = direntSize(namelen, plus);
    if (p + total > end) throw new FuseDecodeError('truncated dirent name', Errno.EIO);
    const ent: DecodedDirent = {
      ino: readU64(buf, d + Dirent.ino),
      offset: readU64(buf, d + Dirent.off),
      type: buf.readUInt32LE(d + Dirent.type),
      name: buf.toString('utf8', d + Dirent.name, d + Dirent.name + namelen),
    };
    if (plus) ent.entry = decodeEntryOut(buf, p);
    out.push(ent);
    p += total;
  }
  return out;
}

export interface DecodedNotification {
  code: number;
  parent?: number;
  child?: number;
  nodeId?: number;
  off?: number;
  len?: number;
  name?: string;
  flags?: number;
  kh?: number;
}

/** Parses a notification written by the session (as the kernel would). */
export function decodeNotification(buf: Buffer): DecodedNotification {
  const h = decodeOutHeader(buf);
  const o = OutHeader.SIZE;
  switch (h.error) {
    case NotifyCode.INVAL_INODE:
      return {
        code: h.error,
        nodeId: readU64(buf, o + NotifyInvalInodeOut.ino),
        off: readI64(buf, o + NotifyInvalInodeOut.off),
        len: readI64(buf, o + NotifyInvalInodeOut.len),
      };
    case NotifyCode.INVAL_ENTRY: {
      const namelen = buf.readUInt32LE(o + NotifyInvalEntryOut.namelen);
      const s = o + NotifyInvalEntryOut.SIZE;
      return {
        code: h.error,
        parent: readU64(buf, o + NotifyInvalEntryOut.parent),
        flags: buf.readUInt32LE(o + NotifyInvalEntryOut.flags),
        name: buf.toString('utf8', s, s + namelen),
      };
    }
    case NotifyCode.DELETE: {
      const namelen = buf.readUInt32LE(o + NotifyDeleteOut.namelen);
      const s = o + NotifyDeleteOut.SIZE;
      return {
        code: h.error,
        parent: readU64(buf, o + NotifyDeleteOut.parent),
        child: readU64(buf, o + NotifyDeleteOut.child),
        name: buf.toString('utf8', s, s + namelen),
      };
    }
    case NotifyCode.POLL:
      return { code: h.error, kh: readU64(buf, o + NotifyPollWakeupOut.kh) };
    default:
      return { code: h.error };
  }
}
