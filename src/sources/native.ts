/**
 * Lazy loader for the N-API helper built from native/handlefs_native.c (see docs/sources.md).
 * Nothing loads it until a real source needs a pidfd or a namespace ioctl, so the fakes and
 * everything else work without it.
 */
import { join } from 'node:path';
import { addonLoader, missingHelperMessage, NativeHelperMissingError } from '../util/addon.js';

export type NsIoctlFdOp = 'NS_GET_USERNS' | 'NS_GET_PARENT';
export type NsIoctlIntOp = 'NS_GET_NSTYPE' | 'NS_GET_OWNER_UID';
export type NsIoctlIdOp = 'NS_GET_ID' | 'NS_GET_MNTNS_ID';

declare const fdWatchBrand: unique symbol;
/** Opaque handle returned by watchFd. */
export type FdWatch = { readonly [fdWatchBrand]: true };

export interface NativeHelper {
  /** pidfd_open(2). Throws with .code 'ESRCH' if no such process, 'EINVAL' for a non-leader thread. */
  pidfdOpen(pid: number): number;
  /**
   * open_by_handle_at(FD_PIDFS_ROOT) of a pidfs file handle (6.17): a pidfd of the process whose
   * pidfs inode number is `pidfsIno`, live or zombie. Throws with .code 'ESTALE' once it is reaped.
   * Absent from helpers built before it existed.
   */
  pidfdOpenByHandle?(pidfsIno: number): number;
  /** NS_GET_USERNS / NS_GET_PARENT return a new fd the caller must close. */
  nsIoctl(fd: number, op: NsIoctlFdOp | NsIoctlIntOp): number;
  /** NS_GET_ID (6.18) / NS_GET_MNTNS_ID (6.11, mnt only); 'ENOTTY' on older kernels. */
  nsIoctl(fd: number, op: NsIoctlIdOp): bigint;
  /**
   * One-shot: calls callback on the event loop the first time fd is readable, then stops.
   * Stop it (unwatch) before closing fd. The watch keeps the event loop alive while active.
   */
  watchFd(fd: number, callback: () => void): FdWatch;
  /** Stops a watch; true if it was still active. Idempotent. */
  unwatch(handle: FdWatch): boolean;
  /**
   * One process's /proc files in one synchronous call: [stat, pidfsIno, status, cgroup, ...the
   * readlink of dir/ns/<link> per link, stat again]. A file is its text, or its errno (a positive
   * number). pidfsIno: inode of a pidfd of the pid when wantIno (else 0), -errno on failure. The
   * array stops after a failed first stat (1 element) or a failed pidfsIno (2). Absent from
   * helpers built before it existed.
   */
  readProc?(dir: string, wantIno: boolean, links: readonly string[]): Array<string | number>;
  /**
   * PIDFD_GET_INFO asking for PID, CREDS and EXIT. -1 for what the answer's mask lacks: a live or
   * zombie process has pid and uids, a reaped one (6.15+) its exitStatus (wait-status form).
   */
  pidfdInfo(fd: number): PidfdInfo;
  /** pidfd_send_signal(2). 'ESRCH' once the process has exited. */
  pidfdSendSignal(fd: number, signal: number): void;
  /** SO_PEERCRED of a connected unix socket (uid: effective); ruid through SO_PEERPIDFD, else uid. */
  peerCred(fd: number): PeerCred;
}

export interface PidfdInfo {
  mask: number;
  pid: number;
  ruid: number;
  euid: number;
  suid: number;
  exitStatus: number;
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
  ruid: number;
}

/** An Error from the helper: .code is the errno name ('ESRCH', 'EACCES', 'ENOTTY', ...). */
export interface NativeError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
}

const SPEC = { file: 'handlefs_native.node', envVar: 'HANDLEFS_NATIVE', label: 'handlefs native helper' };
export const NATIVE_FILE = join('build', 'Release', SPEC.file);
export const NATIVE_MISSING_MESSAGE = missingHelperMessage(SPEC.label);
export { NativeHelperMissingError };

const loader = addonLoader<NativeHelper>(SPEC);

/** Loads the helper (once). Throws NativeHelperMissingError when it is not built. */
export function loadNative(): NativeHelper {
  return loader.load();
}

/** The helper, or null when it is not built. */
export function tryLoadNative(): NativeHelper | null {
  return loader.tryLoad();
}

export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
