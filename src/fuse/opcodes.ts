/**
 * The opcode table: one row per request the session serves, with everything that differs between
 * opcodes — how its body decodes, what it calls (and what it answers when the filesystem lacks the
 * method), how the result is written back, and how it reads in a debug log. The session's fast and
 * general paths both serve through it, so a new opcode is one row here (and its handler in
 * LowLevelFileSystem). Requests the session answers itself (INIT, INTERRUPT, DESTROY, FORGET) are
 * rows too, with a `session` column instead of call/reply. Model: go-fuse's fuse/opcode.go.
 */
import {
  AccessIn,
  BatchForgetIn,
  DEFAULT_POLLMASK,
  Errno,
  FUSE_COMPAT_POLL_IN_SIZE,
  FUSE_COMPAT_READ_IN_SIZE,
  FUSE_GETATTR_FH,
  FUSE_POLL_SCHEDULE_NOTIFY,
  FlushIn,
  ForgetIn,
  ForgetOne,
  GetattrIn,
  GetxattrIn,
  InHeader,
  InitFlags,
  InitIn,
  InterruptIn,
  MUTATING_OPCODES,
  O_ACCMODE,
  O_RDONLY,
  O_TRUNC,
  OpenIn,
  Opcode,
  OutHeader,
  PollIn,
  ReadIn,
  ReleaseIn,
  W_OK,
  describeInitFlags,
  opcodeName,
} from './abi.js';
import {
  FuseDecodeError,
  decodeInHeader,
  decodeName,
  readU64,
  readUnique,
  type ForgetItem,
  type InitRequest,
  type ReadRequest,
  type RequestHeader,
} from './codec.js';
import { OUT_BUFFER_SIZE, type ReplyFn } from './replies.js';
import type { Ctx } from './request-context.js';
import { FuseError, type AttrReply, type DirEntry, type Entry, type LowLevelFileSystem, type OpenReply, type StatfsReply } from './types.js';

/** Reads a request's body [b, e) into its arguments; throws FuseDecodeError (with `unique`, so it can be answered). */
type Decode<A> = (buf: Buffer, b: number, e: number, unique: number, opcode: number) => A;

/** What the session offers the rows it serves itself. */
export interface SessionOps {
  init(unique: number, init: InitRequest): void;
  interrupt(unique: number, target: number): void;
  destroy(h: RequestHeader): void;
  forget(nodeId: number, nlookup: number): void;
  /** Answers an errno (nothing for opcodes that take no reply). */
  refuse(h: RequestHeader, errno: number): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

interface RowBase<A> {
  readonly opcode: number;
  readonly decode: Decode<A>;
  /** The debug line after the opcode's name; default `n<node>`. */
  readonly describe?: (h: RequestHeader, a: A) => string;
}

/** A request the filesystem answers. */
export interface FsRow<A, R> extends RowBase<A> {
  /** Served in the turn it arrives without a header object (the stat path), when debug logging is off. */
  readonly fast?: true;
  /** Calls the filesystem; its default, or a thrown FuseError, where the filesystem lacks the method. */
  readonly call: (fs: LowLevelFileSystem, ctx: Ctx, a: A) => R | PromiseLike<R>;
  readonly reply: ReplyFn<R>;
}

/** A request the session answers itself. */
export interface SessionRow<A> extends RowBase<A> {
  readonly session: (s: SessionOps, h: RequestHeader, a: A) => void;
  /** Served before INIT (INIT only); everything else is EIO until then. */
  readonly beforeInit?: true;
  /** Served after DESTROY (the references the kernel drops, INTERRUPT); everything else is ENODEV. */
  readonly afterDestroy?: true;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type OpcodeRow = FsRow<any, any> | SessionRow<any>;

const fsRow = <A, R>(r: FsRow<A, R>): FsRow<A, R> => r;
const sessionRow = <A>(r: SessionRow<A>): SessionRow<A> => r;

function need(opcode: number, unique: number, bodyLen: number, want: number): void {
  if (bodyLen < want) throw new FuseDecodeError(`${opcodeName(opcode)}: body of ${bodyLen} bytes, need ${want}`, Errno.EINVAL, unique);
}

function enosys(): never {
  throw new FuseError(Errno.ENOSYS);
}

const DEFAULT_STATFS: StatfsReply = {
  blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 512, namelen: 255, frsize: 0,
};
const NO_HANDLE: OpenReply = { fh: 0 };

// ---- bodies shared by several opcodes --------------------------------------------------------

const noBody: Decode<Record<never, never>> = () => ({});

const openIn: Decode<{ flags: number; openFlags: number }> = (buf, b, e, unique, opcode) => {
  need(opcode, unique, e - b, OpenIn.SIZE);
  return { flags: buf.readUInt32LE(b + OpenIn.flags), openFlags: buf.readUInt32LE(b + OpenIn.open_flags) };
};

const readIn: Decode<{ read: ReadRequest }> = (buf, b, e, unique, opcode) => {
  const n = e - b;
  need(opcode, unique, n, FUSE_COMPAT_READ_IN_SIZE);
  const full = n >= ReadIn.SIZE;
  return {
    read: {
      fh: readU64(buf, b + ReadIn.fh),
      offset: readU64(buf, b + ReadIn.offset),
      size: buf.readUInt32LE(b + ReadIn.size),
      readFlags: full ? buf.readUInt32LE(b + ReadIn.read_flags) : 0,
      lockOwner: full ? readU64(buf, b + ReadIn.lock_owner) : 0,
      flags: full ? buf.readUInt32LE(b + ReadIn.flags) : 0,
    },
  };
};

const releaseIn: Decode<{ fh: number; flags: number; releaseFlags: number; lockOwner: number }> = (buf, b, e, unique, opcode) => {
  const n = e - b;
  need(opcode, unique, n, 16);
  return {
    fh: readU64(buf, b + ReleaseIn.fh),
    flags: buf.readUInt32LE(b + ReleaseIn.flags),
    releaseFlags: buf.readUInt32LE(b + ReleaseIn.release_flags),
    lockOwner: n >= ReleaseIn.SIZE ? readU64(buf, b + ReleaseIn.lock_owner) : 0,
  };
};

const sizeIn: Decode<{ size: number }> = (buf, b, e, unique, opcode) => {
  need(opcode, unique, e - b, GetxattrIn.SIZE);
  return { size: buf.readUInt32LE(b + GetxattrIn.size) };
};

const describeRead = (h: RequestHeader, a: { read: ReadRequest }): string => `n${h.nodeId} fh${a.read.fh} off${a.read.offset} size${a.read.size}`;
const describeOpen = (h: RequestHeader, a: { flags: number }): string => `n${h.nodeId} flags 0x${a.flags.toString(16)}`;
const describeFh = (h: RequestHeader, a: { fh: number }): string => `n${h.nodeId} fh${a.fh}`;

// ---- replies ----------------------------------------------------------------------------------

const entry: ReplyFn<Entry> = (w, ctx, v) => w.entry(ctx, v);
const attr: ReplyFn<AttrReply> = (w, ctx, v) => w.attr(ctx, v);
const empty: ReplyFn<unknown> = (w, ctx) => w.empty(ctx);
const readdir: ReplyFn<DirEntry[]> = (w, ctx, v) => w.readdir(ctx, v);

/** READDIR and READDIRPLUS: one handler, entries with or without their lookups. */
function readdirRow(opcode: number, plus: boolean): FsRow<{ read: ReadRequest }, DirEntry[]> {
  return {
    opcode,
    decode: readIn,
    call: (fs, ctx, { read: r }) => {
      // What one reply can carry, whatever the kernel asks.
      ctx.size = Math.min(r.size, OUT_BUFFER_SIZE - OutHeader.SIZE);
      ctx.plus = plus;
      return fs.readdir ? fs.readdir(ctx, ctx.nodeId, r.fh, r.offset, ctx.size, plus) : enosys();
    },
    reply: readdir,
    describe: describeRead,
  };
}

// ---- the table --------------------------------------------------------------------------------

export const OPCODES = {
  LOOKUP: fsRow({
    opcode: Opcode.LOOKUP,
    fast: true,
    decode: (buf, b, e, unique) => ({ name: decodeName(buf, b, e, unique) }),
    call: (fs, ctx, a) => fs.lookup(ctx, ctx.nodeId, a.name),
    reply: entry,
    describe: (h, a) => `n${h.nodeId} [${JSON.stringify(a.name)}]`,
  }),
  GETATTR: fsRow({
    opcode: Opcode.GETATTR,
    fast: true,
    decode: (buf, b, e) => {
      // Kernels before 7.9 sent no fuse_getattr_in.
      if (e - b < GetattrIn.SIZE) return { getattrFlags: 0, fh: undefined as number | undefined };
      const getattrFlags = buf.readUInt32LE(b + GetattrIn.getattr_flags);
      return { getattrFlags, fh: (getattrFlags & FUSE_GETATTR_FH) !== 0 ? readU64(buf, b + GetattrIn.fh) : undefined };
    },
    call: (fs, ctx, a) => fs.getattr(ctx, ctx.nodeId, a.fh),
    reply: attr,
    describe: (h, a) => `n${h.nodeId}${a.fh !== undefined ? ` fh${a.fh}` : ''}`,
  }),
  FORGET: sessionRow({
    opcode: Opcode.FORGET,
    afterDestroy: true,
    decode: (buf, b, e, unique, opcode) => {
      need(opcode, unique, e - b, ForgetIn.SIZE);
      return { nlookup: readU64(buf, b + ForgetIn.nlookup) };
    },
    session: (s, h, a) => s.forget(h.nodeId, a.nlookup),
    describe: (h, a) => `n${h.nodeId} x${a.nlookup}`,
  }),
  BATCH_FORGET: sessionRow({
    opcode: Opcode.BATCH_FORGET,
    afterDestroy: true,
    decode: (buf, b, e, unique, opcode) => {
      const n = e - b;
      need(opcode, unique, n, BatchForgetIn.SIZE);
      // The count the kernel claimed; the items are clamped to what the payload holds.
      const declaredCount = buf.readUInt32LE(b + BatchForgetIn.count);
      const fits = Math.floor((n - BatchForgetIn.SIZE) / ForgetOne.SIZE);
      const count = declaredCount < fits ? declaredCount : fits;
      const items: ForgetItem[] = new Array(count);
      let p = b + BatchForgetIn.SIZE;
      for (let i = 0; i < count; i++, p += ForgetOne.SIZE) {
        items[i] = { nodeId: readU64(buf, p + ForgetOne.nodeid), nlookup: readU64(buf, p + ForgetOne.nlookup) };
      }
      return { declaredCount, items };
    },
    session: (s, _h, a) => {
      if (a.declaredCount !== a.items.length) s.warn({ declared: a.declaredCount, held: a.items.length }, 'BATCH_FORGET count exceeds its payload; clamped');
      for (const it of a.items) s.forget(it.nodeId, it.nlookup);
    },
    describe: (_h, a) => {
      const shown = a.items.slice(0, 8).map((i) => `n${i.nodeId}x${i.nlookup}`);
      if (a.items.length > 8) shown.push(`+${a.items.length - 8}`);
      return `${a.items.length} [${shown.join(' ')}]`;
    },
  }),
  INIT: sessionRow({
    opcode: Opcode.INIT,
    beforeInit: true,
    decode: (buf, b, e, unique, opcode): { init: InitRequest } => {
      const n = e - b;
      need(opcode, unique, n, 8);
      const flags = n >= 16 ? buf.readUInt32LE(b + InitIn.flags) : 0;
      return {
        init: {
          major: buf.readUInt32LE(b + InitIn.major),
          minor: buf.readUInt32LE(b + InitIn.minor),
          maxReadahead: n >= 12 ? buf.readUInt32LE(b + InitIn.max_readahead) : 0,
          flags,
          flags2: n >= 20 && (flags & InitFlags.INIT_EXT) !== 0 ? buf.readUInt32LE(b + InitIn.flags2) : 0,
        },
      };
    },
    session: (s, h, a) => s.init(h.unique, a.init),
    describe: (_h, { init: i }) => `${i.major}.${i.minor} ra${i.maxReadahead} [${describeInitFlags(i.flags, i.flags2).join(' ')}]`,
  }),
  INTERRUPT: sessionRow({
    opcode: Opcode.INTERRUPT,
    afterDestroy: true,
    decode: (buf, b, e, unique, opcode) => {
      need(opcode, unique, e - b, InterruptIn.SIZE);
      return { target: readUnique(buf, b + InterruptIn.unique) };
    },
    session: (s, h, a) => s.interrupt(h.unique, a.target),
    describe: (_h, a) => `u${a.target}`,
  }),
  DESTROY: sessionRow({ opcode: Opcode.DESTROY, decode: noBody, session: (s, h) => s.destroy(h) }),
  READLINK: fsRow({
    opcode: Opcode.READLINK,
    decode: noBody,
    call: (fs, ctx) => (fs.readlink ? fs.readlink(ctx, ctx.nodeId) : enosys()),
    reply: (w, ctx, v: string | Buffer) => w.readlink(ctx, v),
  }),
  OPEN: fsRow({
    opcode: Opcode.OPEN,
    decode: openIn,
    call: (fs, ctx, a) => {
      ctx.flags = a.flags;
      // Read-only: write access or O_TRUNC is refused before the filesystem is asked.
      if (((a.flags & O_ACCMODE) !== O_RDONLY || (a.flags & O_TRUNC) !== 0) && !fs.allowWriteOpen) throw new FuseError(Errno.EROFS);
      return fs.open ? fs.open(ctx, ctx.nodeId, a.flags) : NO_HANDLE;
    },
    reply: (w, ctx, v: OpenReply) => w.open(ctx, v, false),
    describe: describeOpen,
  }),
  OPENDIR: fsRow({
    opcode: Opcode.OPENDIR,
    decode: openIn,
    call: (fs, ctx, a) => {
      ctx.flags = a.flags;
      return fs.opendir ? fs.opendir(ctx, ctx.nodeId, a.flags) : NO_HANDLE;
    },
    reply: (w, ctx, v: OpenReply) => w.open(ctx, v, true),
    describe: describeOpen,
  }),
  READ: fsRow({
    opcode: Opcode.READ,
    decode: readIn,
    call: (fs, ctx, { read: r }) => {
      ctx.size = r.size;
      return fs.read ? fs.read(ctx, ctx.nodeId, r.fh, r.offset, r.size) : enosys();
    },
    reply: (w, ctx, v: unknown) => w.read(ctx, v),
    describe: describeRead,
  }),
  READDIR: readdirRow(Opcode.READDIR, false),
  READDIRPLUS: readdirRow(Opcode.READDIRPLUS, true),
  RELEASE: fsRow({
    opcode: Opcode.RELEASE,
    decode: releaseIn,
    call: (fs, ctx, a) => fs.release?.(ctx, ctx.nodeId, a.fh, a.flags),
    reply: empty,
    describe: describeFh,
  }),
  RELEASEDIR: fsRow({
    opcode: Opcode.RELEASEDIR,
    decode: releaseIn,
    call: (fs, ctx, a) => fs.releasedir?.(ctx, ctx.nodeId, a.fh),
    reply: empty,
    describe: describeFh,
  }),
  FLUSH: fsRow({
    opcode: Opcode.FLUSH,
    decode: (buf, b, e, unique, opcode) => {
      need(opcode, unique, e - b, FlushIn.SIZE);
      return { fh: readU64(buf, b + FlushIn.fh), lockOwner: readU64(buf, b + FlushIn.lock_owner) };
    },
    // Without a flush of its own the filesystem answers ENOSYS, as libfuse does: the kernel then
    // stops sending FLUSH on this connection (one round trip fewer for every close(2)).
    call: (fs, ctx, a) => (fs.flush ? fs.flush(ctx, ctx.nodeId, a.fh, a.lockOwner) : enosys()),
    reply: empty,
    describe: describeFh,
  }),
  STATFS: fsRow({
    opcode: Opcode.STATFS,
    decode: noBody,
    call: (fs, ctx) => (fs.statfs ? fs.statfs(ctx, ctx.nodeId) : DEFAULT_STATFS),
    reply: (w, ctx, v: StatfsReply) => w.statfs(ctx, v),
  }),
  ACCESS: fsRow({
    opcode: Opcode.ACCESS,
    decode: (buf, b, e, unique, opcode) => {
      need(opcode, unique, e - b, AccessIn.SIZE);
      return { mask: buf.readUInt32LE(b + AccessIn.mask) };
    },
    call: (fs, ctx, a) => {
      if (fs.access) return fs.access(ctx, ctx.nodeId, a.mask);
      if ((a.mask & W_OK) !== 0) throw new FuseError(Errno.EROFS);
      return undefined;
    },
    reply: empty,
    describe: (h, a) => `n${h.nodeId} mask${a.mask}`,
  }),
  GETXATTR: fsRow({
    opcode: Opcode.GETXATTR,
    decode: (buf, b, e, unique, opcode) => {
      need(opcode, unique, e - b, GetxattrIn.SIZE + 1);
      return { size: buf.readUInt32LE(b + GetxattrIn.size), name: decodeName(buf, b + GetxattrIn.SIZE, e, unique) };
    },
    call: (fs, ctx, a) => {
      ctx.size = a.size;
      // ENOSYS makes the kernel stop asking (fc->no_getxattr; callers get EOPNOTSUPP): ENODATA
      // would bring one GETXATTR per entry of every `ls -l`.
      return fs.getxattr ? fs.getxattr(ctx, ctx.nodeId, a.name) : enosys();
    },
    reply: (w, ctx, v: Buffer) => w.getxattr(ctx, v),
    describe: (h, a) => `n${h.nodeId} [${JSON.stringify(a.name)}] size${a.size}`,
  }),
  LISTXATTR: fsRow({
    opcode: Opcode.LISTXATTR,
    decode: sizeIn,
    call: (fs, ctx, a) => {
      ctx.size = a.size;
      return fs.listxattr ? fs.listxattr(ctx, ctx.nodeId) : enosys();
    },
    reply: (w, ctx, v: string[]) => w.listxattr(ctx, v),
    describe: (h, a) => `n${h.nodeId} size${a.size}`,
  }),
  POLL: fsRow({
    opcode: Opcode.POLL,
    decode: (buf, b, e, unique, opcode) => {
      const n = e - b;
      need(opcode, unique, n, FUSE_COMPAT_POLL_IN_SIZE);
      return {
        fh: readU64(buf, b + PollIn.fh),
        kh: readU64(buf, b + PollIn.kh),
        pollFlags: n >= PollIn.SIZE ? buf.readUInt32LE(b + PollIn.flags) : 0,
        events: n >= PollIn.SIZE ? buf.readUInt32LE(b + PollIn.events) : 0,
      };
    },
    call: (fs, ctx, a) => {
      // Without a poll op a file is always ready, as the kernel assumes.
      if (!fs.poll) return DEFAULT_POLLMASK;
      const kh = (a.pollFlags & FUSE_POLL_SCHEDULE_NOTIFY) !== 0 ? a.kh : undefined;
      return fs.poll(ctx, ctx.nodeId, a.fh, a.events, kh);
    },
    reply: (w, ctx, v: number) => w.poll(ctx, v),
    describe: (h, a) => `n${h.nodeId} fh${a.fh} events 0x${a.events.toString(16)}`,
  }),
};

/** Every other opcode (mutating, unknown, unsupported): the body is not interpreted. */
export const OTHER = sessionRow({
  opcode: -1,
  decode: (_buf, b, e) => ({ bodyLength: e - b }),
  session: (s, h) => {
    if (h.opcode === Opcode.NOTIFY_REPLY) return; // we never send RETRIEVE; nothing to answer
    s.refuse(h, MUTATING_OPCODES.has(h.opcode) ? Errno.EROFS : Errno.ENOSYS);
  },
  describe: (h, a) => `n${h.nodeId} (${a.bodyLength} bytes)`,
});

type Rows = typeof OPCODES;
type Kind = keyof Rows;

const BY_OPCODE: Array<OpcodeRow | undefined> = [];
const FAST: Array<FsRow<unknown, unknown> | undefined> = [];
const NAMES: string[] = [];
for (const [name, row] of Object.entries(OPCODES) as Array<[Kind, OpcodeRow]>) {
  BY_OPCODE[row.opcode] = row;
  if (isFsRow(row) && row.fast === true) FAST[row.opcode] = row;
  NAMES[row.opcode] = name;
}

/** The row serving `opcode` on the fast path, if it is one of those (LOOKUP, GETATTR). */
export function fastRow(opcode: number): FsRow<unknown, unknown> | undefined {
  return FAST[opcode];
}

/** The row serving `opcode` (OTHER for those the session does not serve). */
export function opcodeRow(opcode: number): OpcodeRow {
  return BY_OPCODE[opcode] ?? OTHER;
}

/** True for rows the filesystem answers (they have call and reply). */
export function isFsRow(row: OpcodeRow): row is FsRow<unknown, unknown> {
  return 'call' in row;
}

/** A decoded request: the header plus the opcode's arguments, as its row decodes them. */
export type FuseRequest =
  | { [K in Kind]: { kind: K; h: RequestHeader } & ReturnType<Rows[K]['decode']> }[Kind]
  | ({ kind: 'OTHER'; h: RequestHeader } & ReturnType<typeof OTHER.decode>);

/**
 * Decodes one request occupying [start, start + header.len). `end` bounds what may be read (the
 * bytes actually read from the device). Never reads outside that range; throws FuseDecodeError.
 */
export function decodeRequest(buf: Buffer, start = 0, end = buf.length): FuseRequest {
  const h = decodeInHeader(buf, start, end);
  const b = start + InHeader.SIZE;
  const row = opcodeRow(h.opcode);
  const args = row.decode(buf, b, start + h.len - h.extLen, h.unique, h.opcode) as object;
  return { kind: NAMES[h.opcode] ?? 'OTHER', h, ...args } as FuseRequest;
}

/** One-line description of a request for debug logs: `LOOKUP n1 ["x"]`. */
export function describeRequest(h: RequestHeader, row: OpcodeRow, args: unknown): string {
  return `${opcodeName(h.opcode)} ${row.describe ? row.describe(h, args) : `n${h.nodeId}`}`;
}
