/**
 * INIT negotiation as a pure function: the kernel's fuse_init_in and what we wish for in, the
 * reply and the negotiated parameters out. No I/O and no state, so it can be table-tested, and a
 * stored negotiation can be checked or replayed by whoever takes a connection over.
 */
import { FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, Errno, InitFlags, InitFlags2 } from './abi.js';
import type { InitReply, InitRequest } from './codec.js';
import type { ConnectionInfo } from './types.js';

/** What the server asks of a connection (SessionOptions with their defaults applied). */
export interface InitWishes {
  /** Reported in ConnectionInfo for the layer above (s). */
  entryTimeout: number;
  attrTimeout: number;
  /** READDIRPLUS: 'auto' (the kernel decides per directory), 'always', or 'off'. */
  readdirplus: 'auto' | 'always' | 'off';
  /** FUSE_EXPORT_SUPPORT: the layer above answers LOOKUP of "." and "..". */
  exportSupport: boolean;
  /** Page-cache invalidation: 'auto' (on mtime/size change) or 'explicit' (only by notification). */
  invalData: 'auto' | 'explicit';
  /** max_write announced (bytes). */
  maxWrite: number;
}

/** What to answer an INIT. */
export type InitOutcome =
  /** A major older than ours: answer this errno and serve nothing. */
  | { kind: 'refuse'; errno: number }
  /** A newer major: answer with our major only (`reply`, sized for `replyMinor`); the kernel sends INIT again. */
  | { kind: 'retry'; reply: InitReply; replyMinor: number }
  /** Agreed: answer `reply` (sized for the kernel's minor, `replyMinor`); `conn` is what holds from now on. */
  | { kind: 'accept'; reply: InitReply; replyMinor: number; conn: ConnectionInfo };

const EMPTY_REPLY: InitReply = Object.freeze({
  major: FUSE_KERNEL_VERSION,
  minor: FUSE_KERNEL_MINOR_VERSION,
  maxReadahead: 0,
  flags: 0,
  flags2: 0,
  maxBackground: 0,
  congestionThreshold: 0,
  maxWrite: 0,
  timeGran: 0,
  maxPages: 0,
});

/** The flags we ask for: the kernel grants those it offers. */
function wanted(w: InitWishes): { flags: number; flags2: number } {
  const flags =
    InitFlags.ASYNC_READ |
    InitFlags.PARALLEL_DIROPS |
    (w.exportSupport ? InitFlags.EXPORT_SUPPORT : 0) |
    (w.readdirplus !== 'off' ? InitFlags.DO_READDIRPLUS : 0) |
    (w.readdirplus === 'auto' ? InitFlags.READDIRPLUS_AUTO : 0) |
    (w.invalData === 'auto' ? InitFlags.AUTO_INVAL_DATA : InitFlags.EXPLICIT_INVAL_DATA);
  const flags2 = InitFlags2.DIRECT_IO_ALLOW_MMAP | (w.exportSupport ? 0 : InitFlags2.NO_EXPORT_SUPPORT);
  return { flags: flags >>> 0, flags2: flags2 >>> 0 };
}

export function negotiateInit(k: InitRequest, w: InitWishes): InitOutcome {
  if (k.major < FUSE_KERNEL_VERSION) return { kind: 'refuse', errno: Errno.EPROTO };
  if (k.major > FUSE_KERNEL_VERSION) return { kind: 'retry', reply: { ...EMPTY_REPLY }, replyMinor: FUSE_KERNEL_MINOR_VERSION };

  const minor = Math.min(k.minor, FUSE_KERNEL_MINOR_VERSION);
  const want = wanted(w);
  const kernelFlags = k.flags >>> 0;
  // flags2 means something only when the kernel says it sent the 7.36 structure.
  const kernelFlags2 = (kernelFlags & InitFlags.INIT_EXT) !== 0 ? k.flags2 >>> 0 : 0;
  let flags = (want.flags & kernelFlags) >>> 0;
  const flags2 = (want.flags2 & kernelFlags2) >>> 0;
  if (flags2 !== 0) flags = (flags | InitFlags.INIT_EXT) >>> 0;

  const reply: InitReply = { ...EMPTY_REPLY, minor, maxReadahead: k.maxReadahead, flags, flags2, maxWrite: w.maxWrite, timeGran: 1 };
  const has = (f: number): boolean => (flags & f) !== 0;
  const conn: ConnectionInfo = Object.freeze({
    major: FUSE_KERNEL_VERSION,
    minor,
    kernelMajor: k.major,
    kernelMinor: k.minor,
    kernelFlags,
    kernelFlags2,
    flags,
    flags2,
    maxReadahead: k.maxReadahead,
    maxWrite: w.maxWrite,
    entryTimeout: w.entryTimeout,
    attrTimeout: w.attrTimeout,
    capabilities: Object.freeze({
      readdirplus: has(InitFlags.DO_READDIRPLUS),
      readdirplusAuto: has(InitFlags.READDIRPLUS_AUTO),
      exportSupport: has(InitFlags.EXPORT_SUPPORT),
      parallelDirops: has(InitFlags.PARALLEL_DIROPS),
      asyncRead: has(InitFlags.ASYNC_READ),
      autoInvalData: has(InitFlags.AUTO_INVAL_DATA),
      explicitInvalData: has(InitFlags.EXPLICIT_INVAL_DATA),
      directIoAllowMmap: (flags2 & InitFlags2.DIRECT_IO_ALLOW_MMAP) !== 0,
      notifyInvalInode: minor >= 12,
      notifyInvalEntry: minor >= 12,
      notifyDelete: minor >= 18,
      notifyExpireOnly: (kernelFlags2 & InitFlags2.HAS_EXPIRE_ONLY) !== 0,
    }),
  });
  return { kind: 'accept', reply, replyMinor: k.minor, conn };
}
