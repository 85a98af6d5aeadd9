/**
 * The interface the layer above implements (`LowLevelFileSystem`) and the value types it trades
 * with the session. Nothing here knows about processes: a node is a number the layer above chose.
 *
 * Numbers: node ids, inode numbers, generations, file handles and directory cookies are JS numbers
 * (safe integers; written as u64 on the wire). Node id 1 is the root. Timeouts are in seconds
 * (fractional allowed); times are in milliseconds since the epoch (fractional allowed), as in
 * fs.Stats' `*Ms` fields.
 */
import { errnoName } from './abi.js';

export type MaybePromise<T> = T | Promise<T>;

/** Throw (or reject with) this from a handler to answer with an errno. */
export class FuseError extends Error {
  override readonly name = 'FuseError';
  readonly errno: number;

  constructor(errno: number, message?: string) {
    super(message ?? errnoName(errno));
    if (!Number.isInteger(errno) || errno <= 0 || errno > 4095) {
      throw new RangeError(`FuseError: errno must be an integer in 1..4095, got ${errno}`);
    }
    this.errno = errno;
  }
}

/** Attributes of a node (struct fuse_attr). */
export interface Attr {
  /** What stat() shows as st_ino. May equal the node id. */
  ino: number;
  /** Full st_mode: type bits (S_IFDIR, ...) and permission bits. */
  mode: number;
  /** Link count. */
  nlink: number;
  /** Owner uid. */
  uid: number;
  /** Owner gid. */
  gid: number;
  /** Size in bytes. */
  size: number;
  /** 512-byte blocks; default ceil(size / 512). */
  blocks?: number;
  /** Preferred I/O size; 0 lets the kernel choose. */
  blksize?: number;
  /** Device number of a device file; 0 otherwise. */
  rdev?: number;
  /** Last access, epoch milliseconds. */
  atimeMs: number;
  /** Last modification, epoch milliseconds. */
  mtimeMs: number;
  /** Last status change, epoch milliseconds. */
  ctimeMs: number;
}

/** A positive (nodeId > 0) or negative (nodeId 0, cached ENOENT) directory entry. */
export interface Entry {
  /** The kernel's handle for the node; 0 = negative entry (cache "does not exist" for entryTimeout). */
  nodeId: number;
  /** nodeId + generation must be unique over the life of the filesystem. */
  generation: number;
  attr: Attr;
  /** Seconds the kernel may cache the name → node binding. */
  entryTimeout: number;
  /** Seconds the kernel may cache the attributes. */
  attrTimeout: number;
}

/** A GETATTR answer: the attributes and how long the kernel may cache them. */
export interface AttrReply {
  attr: Attr;
  attrTimeout: number;
}

/** One directory entry of READDIR (name, inode, type) or READDIRPLUS (with its Entry). */
export interface DirEntry {
  name: string;
  /** st_ino as readdir shows it (d_ino); must agree with what lookup/getattr give as attr.ino. */
  ino: number;
  /** File type as st_mode bits (S_IFDIR, S_IFREG, ...); permission bits are ignored. */
  type: number;
  /** Cookie the kernel passes back as `offset` to continue after this entry; non-zero, unique per dir. */
  offset: number;
  /**
   * For READDIRPLUS: the entry, exactly as lookup would give it (it counts as a lookup, except for
   * "." and ".."). Absent or nodeId 0: the kernel gets the name only. Ignored for plain READDIR.
   */
  entry?: Entry;
}

/** An OPEN or OPENDIR answer: the file handle and how the kernel should cache the file. */
export interface OpenReply {
  /** The file handle the kernel passes back with READ and RELEASE. */
  fh: number;
  /** Bypass the page cache (FOPEN_DIRECT_IO): reads always reach the server. */
  directIo?: boolean;
  /** Keep cached pages from earlier opens (FOPEN_KEEP_CACHE). */
  keepCache?: boolean;
  /** The file cannot be seeked (FOPEN_NONSEEKABLE). */
  nonSeekable?: boolean;
  /** Stream-like, no file position (FOPEN_STREAM). */
  stream?: boolean;
  /** For opendir: allow the kernel to cache the directory listing (FOPEN_CACHE_DIR). */
  cacheDir?: boolean;
  /** Do not flush on close (FOPEN_NOFLUSH). */
  noFlush?: boolean;
}

/** A STATFS answer. */
export interface StatfsReply {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** Who asked, and whether they stopped waiting. Valid for the duration of the handler call. */
export interface RequestContext {
  readonly unique: number;
  readonly opcode: number;
  readonly nodeId: number;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Aborted when the kernel sends INTERRUPT for this request; the handler may then throw EINTR. */
  readonly signal: AbortSignal;
}

/** What INIT negotiated. Flags are the 64-bit INIT flag set split into two unsigned 32-bit words. */
export interface ConnectionInfo {
  /** Protocol in use: 7.min(kernel, ours). */
  readonly major: number;
  readonly minor: number;
  /** What the kernel announced. */
  readonly kernelMajor: number;
  readonly kernelMinor: number;
  readonly kernelFlags: number;
  readonly kernelFlags2: number;
  /** What we enabled (a subset of the kernel's offer). */
  readonly flags: number;
  readonly flags2: number;
  readonly maxReadahead: number;
  readonly maxWrite: number;
  /** Timeouts (seconds) the mount was configured with; the layer above puts them in its entries. */
  readonly entryTimeout: number;
  readonly attrTimeout: number;
  readonly capabilities: Readonly<{
    readdirplus: boolean;
    readdirplusAuto: boolean;
    exportSupport: boolean;
    parallelDirops: boolean;
    asyncRead: boolean;
    autoInvalData: boolean;
    explicitInvalData: boolean;
    directIoAllowMmap: boolean;
    notifyInvalInode: boolean;
    notifyInvalEntry: boolean;
    notifyDelete: boolean;
    notifyExpireOnly: boolean;
  }>;
}

/** Which notifications this connection accepts. */
export interface NotifySupport {
  readonly invalInode: boolean;
  readonly invalEntry: boolean;
  readonly delete: boolean;
  readonly expireOnly: boolean;
}

/**
 * Kernel-cache invalidation. Every method is asynchronous: the message is written after the reply
 * being produced (if called from a handler) and after every in-flight request on the same node has
 * been answered, on a thread of its own, so it can never deadlock the read loop. Do not *await*
 * a notification inside a handler for the same node (libfuse has the same rule).
 *
 * Resolves true when the kernel took it (an ENOENT answer, "not cached", counts as taken), false
 * when the connection is gone. Throws NotifyNotSupportedError synchronously when INIT did not
 * negotiate that notification (check `supports` first).
 */
export interface Notifier {
  readonly supports: NotifySupport;
  /** Drop the cached name `name` in directory `parent` (and its dentry's negative/positive entry). */
  invalEntry(parent: number, name: string): Promise<boolean>;
  /** Like invalEntry but only marks the entry expired (FUSE_EXPIRE_ONLY); needs supports.expireOnly. */
  expireEntry(parent: number, name: string): Promise<boolean>;
  /**
   * Invalidate cached attributes of `nodeId` and its cached data in [off, off+len)
   * (len 0 = to the end; off < 0 = attributes only). Defaults: off 0, len 0.
   */
  invalInode(nodeId: number, off?: number, len?: number): Promise<boolean>;
  /** `name` in `parent`, which was `child`, is gone: drop the dentry (and fail its open dirs). */
  delete(parent: number, child: number, name: string): Promise<boolean>;
  /**
   * FUSE_NOTIFY_POLL: the file whose poll handle is `kh` (given to poll()) may be ready now; the
   * kernel wakes its pollers, which ask poll() again. Every protocol this session speaks has it.
   */
  pollWakeup?(kh: number): Promise<boolean>;
}

export class NotifyNotSupportedError extends Error {
  override readonly name = 'NotifyNotSupportedError';
  readonly code = 'ENOTSUP';
  constructor(what: string, why: string) {
    super(`FUSE notification ${what} is not supported on this connection: ${why}`);
  }
}

/**
 * The low-level filesystem a FuseSession serves. Handlers may return a value or a Promise; throw
 * (or reject with) FuseError(errno) to answer with an error. Any other exception answers EIO and
 * is logged.
 *
 * Lookup counts: every positive Entry the layer above returns from lookup, and every DirEntry with
 * a positive `entry` from readdir with plus=true (except "." and ".."), is one kernel reference the
 * layer above must count. The kernel gives them back through forget(). If the session cannot
 * deliver such a reply (interrupted request, dead connection, or a READDIRPLUS entry that did not
 * fit in the kernel's buffer), it calls forget(nodeId, 1) for each undelivered reference itself.
 */
export interface LowLevelFileSystem {
  /**
   * Allow OPEN with write access / O_TRUNC to reach open() instead of EROFS (default false).
   * Every other mutating request is answered EROFS regardless.
   */
  readonly allowWriteOpen?: boolean;

  init?(conn: ConnectionInfo, notifier: Notifier): void;
  destroy?(): void | Promise<void>;

  lookup(ctx: RequestContext, parent: number, name: string): MaybePromise<Entry>;
  /** FORGET and each BATCH_FORGET item. Never answered; must not throw (a throw is only logged). */
  forget(nodeId: number, nlookup: number): void;
  getattr(ctx: RequestContext, nodeId: number, fh?: number): MaybePromise<AttrReply>;

  readlink?(ctx: RequestContext, nodeId: number): MaybePromise<string | Buffer>;
  /** Default: fh 0. `flags` are the open(2) flags. */
  open?(ctx: RequestContext, nodeId: number, flags: number): MaybePromise<OpenReply>;
  /** Return at most `size` bytes (more is cut); fewer means end of file. Default: ENOSYS. */
  read?(ctx: RequestContext, nodeId: number, fh: number, offset: number, size: number): MaybePromise<Buffer>;
  release?(ctx: RequestContext, nodeId: number, fh: number, flags: number): MaybePromise<void>;
  flush?(ctx: RequestContext, nodeId: number, fh: number, lockOwner: number): MaybePromise<void>;
  /** Default: fh 0. */
  opendir?(ctx: RequestContext, nodeId: number, flags: number): MaybePromise<OpenReply>;
  /**
   * Entries after cookie `offset` (0 = from the start), as many as fit in `size` bytes; the
   * session sends those that fit and gives back the references of the rest. Default: ENOSYS.
   */
  readdir?(
    ctx: RequestContext,
    nodeId: number,
    fh: number,
    offset: number,
    size: number,
    plus: boolean,
  ): MaybePromise<DirEntry[]>;
  releasedir?(ctx: RequestContext, nodeId: number, fh: number): MaybePromise<void>;
  /** Default: all zeros with namelen 255 and bsize 4096. */
  statfs?(ctx: RequestContext, nodeId: number): MaybePromise<StatfsReply>;
  /** Default: 0 (allowed), EROFS when `mask` asks for write access. */
  access?(ctx: RequestContext, nodeId: number, mask: number): MaybePromise<void>;
  /** Return the whole value; the session handles size probes and ERANGE. Default: ENOSYS (the kernel stops asking). */
  getxattr?(ctx: RequestContext, nodeId: number, name: string): MaybePromise<Buffer>;
  /** Return the attribute names; the session encodes them. Default: ENOSYS, as getxattr. */
  listxattr?(ctx: RequestContext, nodeId: number): MaybePromise<string[]>;
  /**
   * Return the ready events (POLLIN...). Default: DEFAULT_POLLMASK (always ready). `kh` is given
   * when the kernel has pollers waiting (FUSE_POLL_SCHEDULE_NOTIFY): if nothing asked for is ready,
   * call notifier.pollWakeup(kh) once something may be (the kernel then polls again).
   */
  poll?(ctx: RequestContext, nodeId: number, fh: number, events: number, kh?: number): MaybePromise<number>;
}
