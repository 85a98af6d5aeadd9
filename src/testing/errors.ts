/**
 * The error the consumer kit throws: the errno a mounted handlefs would have answered.
 */
import { Errno, errnoName } from '../fuse/abi.js';
import { FuseError } from '../fuse/types.js';

/** Names of the errno values the FUSE layer knows ('ENOENT', 'EROFS', ...). */
export type ErrnoCode = keyof typeof Errno;

const DESCRIPTIONS: Partial<Record<ErrnoCode, string>> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EIO: 'i/o error',
  EBADF: 'bad file descriptor',
  EACCES: 'permission denied',
  EEXIST: 'file already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EINVAL: 'invalid argument',
  EROFS: 'read-only file system',
  ENAMETOOLONG: 'name too long',
  ENOSYS: 'function not implemented',
  ENODATA: 'no data available',
  ENOTCONN: 'transport endpoint is not connected',
  ESTALE: 'stale file handle',
  ERANGE: 'result too large',
};

/** Extra fields of an FsError: the path a path-level call was given, and the original error. */
export interface FsErrorOptions {
  /** The path the helper was given, if any. */
  path?: string;
  /** The exception behind an EIO (a handler that threw something other than a FuseError). */
  cause?: unknown;
}

/**
 * A failed filesystem operation. `errno` is the positive Linux errno the mount answers (Node's
 * fs reports the same failure as `err.errno === -errno`); `code` is its name, the same string
 * Node's fs puts in `err.code` ('ENOENT', 'ENAMETOOLONG', 'EROFS', 'ESTALE', ...); `syscall` is
 * the operation ('lookup', 'open', 'stat', ...).
 */
export class FsError extends Error {
  /** Always 'FsError'. */
  override readonly name = 'FsError';
  /** The positive Linux errno the mount answers (Node reports it negative). */
  readonly errno: number;
  /** The errno name ('ENOENT', ...), the same string as Node's err.code. */
  readonly code: ErrnoCode | `E${number}`;
  /** The call that failed ('lookup', 'stat', 'open', ...). */
  readonly syscall: string;
  /** The path given to a path-level call; undefined for node-level calls. */
  readonly path: string | undefined;

  constructor(errno: number, syscall: string, options: FsErrorOptions = {}) {
    const code = errnoName(errno) as ErrnoCode | `E${number}`;
    const what = DESCRIPTIONS[code as ErrnoCode] ?? 'error';
    super(`${code}: ${what}, ${syscall}${options.path === undefined ? '' : ` '${options.path}'`}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
    this.path = options.path;
  }

  /** The same failure, reported for a path helper. */
  withPath(syscall: string, path: string): FsError {
    return new FsError(this.errno, syscall, { path, ...(this.cause === undefined ? {} : { cause: this.cause }) });
  }
}

/** True if `err` is an FsError (with that code, if given). */
export function isFsError(err: unknown, code?: ErrnoCode): err is FsError {
  return err instanceof FsError && (code === undefined || err.code === code);
}

/**
 * What the session answers for an exception out of a handler: a FuseError's errno, anything
 * else EIO (the session logs it; the kit keeps it as the error's `cause`).
 */
export function toFsError(err: unknown, syscall: string): FsError {
  if (err instanceof FsError) return err;
  if (err instanceof FuseError) return new FsError(err.errno, syscall);
  return new FsError(Errno.EIO, syscall, { cause: err });
}
