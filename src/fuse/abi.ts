/**
 * The FUSE kernel ABI (protocol 7.45): opcodes, flags, errno values, struct sizes and field offsets.
 *
 * Transcribed from the kernel's `include/uapi/linux/fuse.h` (7.45). The machine's
 * /usr/include/linux/fuse.h may be older (7.38 on Debian 12); spec/fuse/abi.spec.ts compiles a C
 * program against it and checks every struct that header has against the offsets below.
 *
 * All structures are little-endian on x86_64/aarch64 and padded to 8 bytes. Offsets are relative to
 * the start of the structure. Flags that live above bit 31 (the `flags2` word of INIT) are given
 * here already shifted down by 32 (`InitFlags2`), so no BigInt is ever needed.
 */

export const FUSE_KERNEL_VERSION = 7;
export const FUSE_KERNEL_MINOR_VERSION = 45;
export const FUSE_ROOT_ID = 1;
/** The kernel refuses reads of /dev/fuse with a smaller buffer. */
export const FUSE_MIN_READ_BUFFER = 8192;
/** Longest name the kernel sends or accepts in a notification. */
export const FUSE_NAME_MAX = 1024;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
  COPY_FILE_RANGE_64: 53,
  CUSE_INIT: 4096,
} as const;
export type OpcodeName = keyof typeof Opcode;

const opcodeNames: string[] = [];
for (const [name, code] of Object.entries(Opcode)) opcodeNames[code] = name;

/** "LOOKUP" for 1; "OP_999" for an opcode this table does not know. */
export function opcodeName(op: number): string {
  return (op >= 0 && op < opcodeNames.length && opcodeNames[op]) || `OP_${op}`;
}

/**
 * Opcodes that would change the filesystem. The session answers all of them with EROFS
 * (this layer only serves read-only trees).
 */
export const MUTATING_OPCODES: ReadonlySet<number> = new Set([
  Opcode.SETATTR,
  Opcode.SYMLINK,
  Opcode.MKNOD,
  Opcode.MKDIR,
  Opcode.UNLINK,
  Opcode.RMDIR,
  Opcode.RENAME,
  Opcode.LINK,
  Opcode.WRITE,
  Opcode.SETXATTR,
  Opcode.REMOVEXATTR,
  Opcode.SETLK,
  Opcode.SETLKW,
  Opcode.CREATE,
  Opcode.FALLOCATE,
  Opcode.RENAME2,
  Opcode.COPY_FILE_RANGE,
  Opcode.TMPFILE,
  Opcode.COPY_FILE_RANGE_64,
]);

/** Opcodes the kernel never expects an answer to. */
export const NO_REPLY_OPCODES: ReadonlySet<number> = new Set([
  Opcode.FORGET,
  Opcode.BATCH_FORGET,
  Opcode.NOTIFY_REPLY,
]);

export const NotifyCode = {
  POLL: 1,
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  STORE: 4,
  RETRIEVE: 5,
  DELETE: 6,
  RESEND: 7,
  INC_EPOCH: 8,
  PRUNE: 9,
} as const;

/** INIT flags, low word (`flags`). Values are unsigned 32-bit numbers. */
export const InitFlags = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  FILE_OPS: 1 << 2,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  HAS_IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  MAP_ALIGNMENT: 1 << 26,
  SUBMOUNTS: 1 << 27,
  HANDLE_KILLPRIV_V2: 1 << 28,
  SETXATTR_EXT: 1 << 29,
  INIT_EXT: 1 << 30,
  INIT_RESERVED: 0x80000000,
} as const;

/** INIT flags, high word (`flags2`): bit N here is bit N+32 of the 64-bit flag set. */
export const InitFlags2 = {
  SECURITY_CTX: 1 << 0,
  HAS_INODE_DAX: 1 << 1,
  CREATE_SUPP_GROUP: 1 << 2,
  HAS_EXPIRE_ONLY: 1 << 3,
  DIRECT_IO_ALLOW_MMAP: 1 << 4,
  PASSTHROUGH: 1 << 5,
  NO_EXPORT_SUPPORT: 1 << 6,
  HAS_RESEND: 1 << 7,
  ALLOW_IDMAP: 1 << 8,
  OVER_IO_URING: 1 << 9,
  REQUEST_TIMEOUT: 1 << 10,
} as const;

/** Names of set flags, for logs. */
export function describeInitFlags(flags: number, flags2: number): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(InitFlags)) if ((flags & v) !== 0) out.push(k);
  for (const [k, v] of Object.entries(InitFlags2)) if ((flags2 & v) !== 0) out.push(k);
  return out;
}

/** fuse_open_out.open_flags */
export const FopenFlags = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
  PASSTHROUGH: 1 << 7,
} as const;

/** fuse_setattr_in.valid */
export const FattrFlags = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

export const FUSE_GETATTR_FH = 1 << 0;
export const FUSE_RELEASE_FLUSH = 1 << 0;
export const FUSE_RELEASE_FLOCK_UNLOCK = 1 << 1;
export const FUSE_READ_LOCKOWNER = 1 << 1;
export const FUSE_POLL_SCHEDULE_NOTIFY = 1 << 0;
export const FUSE_EXPIRE_ONLY = 1 << 0;
/** Set in the high bit of `unique` for resent requests (only with FUSE_HAS_RESEND). */
export const FUSE_UNIQUE_RESEND_HI = 0x80000000;

/** Linux errno values (x86_64 / aarch64 / generic). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EPROTO: 71,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ECONNABORTED: 103,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ESTALE: 116,
} as const;

const errnoNames: string[] = [];
for (const [name, code] of Object.entries(Errno)) errnoNames[code] = name;

/** "ENOENT" for 2; "E123" for values this table does not know. */
export function errnoName(errno: number): string {
  return (errno > 0 && errno < errnoNames.length && errnoNames[errno]) || `E${errno}`;
}

/** File type bits of st_mode, and the dirent type (mode >> 12). */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
/** File type bits of a symbolic link. */
export const S_IFLNK = 0o120000;
/** File type bits of a regular file. */
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
/** File type bits of a directory. */
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** open(2) flags relevant to a read-only server (Linux values). */
export const O_ACCMODE = 0o3;
/** open(2) flag: read only. */
export const O_RDONLY = 0o0;
/** open(2) flag: write only (EROFS on handlefs). */
export const O_WRONLY = 0o1;
/** open(2) flag: read and write (EROFS on handlefs). */
export const O_RDWR = 0o2;
/** open(2) flag: create. */
export const O_CREAT = 0o100;
/** open(2) flag: truncate (EROFS on handlefs). */
export const O_TRUNC = 0o1000;
/** open(2) flag: append. */
export const O_APPEND = 0o2000;

/** access(2) mask bits. */
export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

/** poll(2) event bits; DEFAULT_POLLMASK is what the kernel assumes for files without a poll op. */
export const POLLIN = 0x001;
export const POLLPRI = 0x002;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLRDNORM = 0x040;
export const POLLWRNORM = 0x100;
export const DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

// ---------------------------------------------------------------------------------------------
// Struct layouts. Each object gives the byte offset of every field plus SIZE.
// ---------------------------------------------------------------------------------------------

export const InHeader = {
  len: 0, opcode: 4, unique: 8, nodeid: 16, uid: 24, gid: 28, pid: 32, total_extlen: 36, padding: 38,
  SIZE: 40,
} as const;

export const OutHeader = { len: 0, error: 4, unique: 8, SIZE: 16 } as const;

export const AttrLayout = {
  ino: 0, size: 8, blocks: 16, atime: 24, mtime: 32, ctime: 40,
  atimensec: 48, mtimensec: 52, ctimensec: 56, mode: 60, nlink: 64, uid: 68, gid: 72, rdev: 76,
  blksize: 80, flags: 84,
  SIZE: 88,
} as const;

export const EntryOut = {
  nodeid: 0, generation: 8, entry_valid: 16, attr_valid: 24, entry_valid_nsec: 32, attr_valid_nsec: 36,
  attr: 40,
  SIZE: 128,
} as const;
/** fuse_entry_out before 7.9 (no blksize/flags in attr). */
export const FUSE_COMPAT_ENTRY_OUT_SIZE = 120;

export const AttrOut = { attr_valid: 0, attr_valid_nsec: 8, dummy: 12, attr: 16, SIZE: 104 } as const;
export const FUSE_COMPAT_ATTR_OUT_SIZE = 96;

export const ForgetIn = { nlookup: 0, SIZE: 8 } as const;
export const ForgetOne = { nodeid: 0, nlookup: 8, SIZE: 16 } as const;
export const BatchForgetIn = { count: 0, dummy: 4, SIZE: 8 } as const;
export const GetattrIn = { getattr_flags: 0, dummy: 4, fh: 8, SIZE: 16 } as const;

export const SetattrIn = {
  valid: 0, padding: 4, fh: 8, size: 16, lock_owner: 24, atime: 32, mtime: 40, ctime: 48,
  atimensec: 56, mtimensec: 60, ctimensec: 64, mode: 68, unused4: 72, uid: 76, gid: 80, unused5: 84,
  SIZE: 88,
} as const;

export const MknodIn = { mode: 0, rdev: 4, umask: 8, padding: 12, SIZE: 16 } as const;
export const MkdirIn = { mode: 0, umask: 4, SIZE: 8 } as const;
export const RenameIn = { newdir: 0, SIZE: 8 } as const;
export const Rename2In = { newdir: 0, flags: 8, padding: 12, SIZE: 16 } as const;
export const LinkIn = { oldnodeid: 0, SIZE: 8 } as const;
export const OpenIn = { flags: 0, open_flags: 4, SIZE: 8 } as const;
export const CreateIn = { flags: 0, mode: 4, umask: 8, open_flags: 12, SIZE: 16 } as const;
export const OpenOut = { fh: 0, open_flags: 8, backing_id: 12, SIZE: 16 } as const;
export const ReleaseIn = { fh: 0, flags: 8, release_flags: 12, lock_owner: 16, SIZE: 24 } as const;
export const FlushIn = { fh: 0, unused: 8, padding: 12, lock_owner: 16, SIZE: 24 } as const;
export const ReadIn = {
  fh: 0, offset: 8, size: 16, read_flags: 20, lock_owner: 24, flags: 32, padding: 36,
  SIZE: 40,
} as const;
/** fuse_read_in before 7.9: fh, offset, size, padding. */
export const FUSE_COMPAT_READ_IN_SIZE = 24;
export const WriteIn = {
  fh: 0, offset: 8, size: 16, write_flags: 20, lock_owner: 24, flags: 32, padding: 36,
  SIZE: 40,
} as const;
export const WriteOut = { size: 0, padding: 4, SIZE: 8 } as const;

export const Kstatfs = {
  blocks: 0, bfree: 8, bavail: 16, files: 24, ffree: 32, bsize: 40, namelen: 44, frsize: 48,
  padding: 52, spare: 56,
  SIZE: 80,
} as const;
export const FUSE_COMPAT_STATFS_SIZE = 48;

export const FsyncIn = { fh: 0, fsync_flags: 8, padding: 12, SIZE: 16 } as const;
export const SetxattrIn = { size: 0, flags: 4, setxattr_flags: 8, padding: 12, SIZE: 16 } as const;
export const FUSE_COMPAT_SETXATTR_IN_SIZE = 8;
export const GetxattrIn = { size: 0, padding: 4, SIZE: 8 } as const;
export const GetxattrOut = { size: 0, padding: 4, SIZE: 8 } as const;
export const FileLock = { start: 0, end: 8, type: 16, pid: 20, SIZE: 24 } as const;
export const LkIn = { fh: 0, owner: 8, lk: 16, lk_flags: 40, padding: 44, SIZE: 48 } as const;
export const AccessIn = { mask: 0, padding: 4, SIZE: 8 } as const;

export const InitIn = {
  major: 0, minor: 4, max_readahead: 8, flags: 12, flags2: 16, unused: 20,
  SIZE: 64,
} as const;
/** What kernels before 7.36 send: major, minor, max_readahead, flags. */
export const FUSE_COMPAT_INIT_IN_SIZE = 16;

export const InitOut = {
  major: 0, minor: 4, max_readahead: 8, flags: 12, max_background: 16, congestion_threshold: 18,
  max_write: 20, time_gran: 24, max_pages: 28, map_alignment: 30, flags2: 32, max_stack_depth: 36,
  request_timeout: 40, unused: 42,
  SIZE: 64,
} as const;
export const FUSE_COMPAT_INIT_OUT_SIZE = 8;
export const FUSE_COMPAT_22_INIT_OUT_SIZE = 24;

export const InterruptIn = { unique: 0, SIZE: 8 } as const;
export const BmapIn = { block: 0, blocksize: 8, padding: 12, SIZE: 16 } as const;
export const IoctlIn = { fh: 0, flags: 8, cmd: 12, arg: 16, in_size: 24, out_size: 28, SIZE: 32 } as const;
export const PollIn = { fh: 0, kh: 8, flags: 16, events: 20, SIZE: 24 } as const;
/** fuse_poll_in before 7.21 had no events field. */
export const FUSE_COMPAT_POLL_IN_SIZE = 16;
export const PollOut = { revents: 0, padding: 4, SIZE: 8 } as const;
export const FallocateIn = { fh: 0, offset: 8, length: 16, mode: 24, padding: 28, SIZE: 32 } as const;
export const LseekIn = { fh: 0, offset: 8, whence: 16, padding: 20, SIZE: 24 } as const;
export const LseekOut = { offset: 0, SIZE: 8 } as const;
export const CopyFileRangeIn = {
  fh_in: 0, off_in: 8, nodeid_out: 16, fh_out: 24, off_out: 32, len: 40, flags: 48,
  SIZE: 56,
} as const;
export const StatxIn = { getattr_flags: 0, reserved: 4, fh: 8, sx_flags: 16, sx_mask: 20, SIZE: 24 } as const;

export const Dirent = { ino: 0, off: 8, namelen: 16, type: 20, name: 24, SIZE: 24 } as const;
export const DirentPlus = { entry_out: 0, dirent: 128, name: 152, SIZE: 152 } as const;

export const NotifyInvalInodeOut = { ino: 0, off: 8, len: 16, SIZE: 24 } as const;
export const NotifyInvalEntryOut = { parent: 0, namelen: 8, flags: 12, SIZE: 16 } as const;
export const NotifyDeleteOut = { parent: 0, child: 8, namelen: 16, padding: 20, SIZE: 24 } as const;
export const NotifyPollWakeupOut = { kh: 0, SIZE: 8 } as const;

/** Round up to the 8-byte record alignment of dirents (FUSE_REC_ALIGN). */
export function recAlign(n: number): number {
  return (n + 7) & ~7;
}
