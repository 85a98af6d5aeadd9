/**
 * Lazy loader for the N-API helper built from native/handlefs_native.c (see docs/sources.md).
 * Nothing loads it until a real source needs a pidfd or a namespace ioctl, so the fakes and
 * everything else work without it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type NsIoctlFdOp = 'NS_GET_USERNS' | 'NS_GET_PARENT';
export type NsIoctlIntOp = 'NS_GET_NSTYPE' | 'NS_GET_OWNER_UID';
export type NsIoctlIdOp = 'NS_GET_ID' | 'NS_GET_MNTNS_ID';

declare const fdWatchBrand: unique symbol;
/** Opaque handle returned by watchFd. */
export type FdWatch = { readonly [fdWatchBrand]: true };

export interface NativeHelper {
  /** pidfd_open(2). Throws with .code 'ESRCH' if no such process, 'EINVAL' for a non-leader thread. */
  pidfdOpen(pid: number): number;
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
}

/** An Error from the helper: .code is the errno name ('ESRCH', 'EACCES', 'ENOTTY', ...). */
export interface NativeError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
}

export const NATIVE_FILE = join('build', 'Release', 'handlefs_native.node');
export const NATIVE_MISSING_MESSAGE = 'handlefs native helper not built: run `npm run build:native`';

export class NativeHelperMissingError extends Error {
  readonly code = 'ERR_HANDLEFS_NATIVE_MISSING';
  constructor(readonly searched: readonly string[], cause?: unknown) {
    super(`${NATIVE_MISSING_MESSAGE} (looked for ${searched.join(', ')})`, { cause });
    this.name = 'NativeHelperMissingError';
  }
}

function candidatePaths(): string[] {
  const env = process.env['HANDLEFS_NATIVE'];
  if (env) return [env];
  // src/sources/native.ts in development, dist/<chunk>.js once bundled: walk up to the package root.
  const out: string[] = [];
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    out.push(join(dir, NATIVE_FILE));
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return out;
}

let cached: NativeHelper | null = null;
let cachedError: NativeHelperMissingError | null = null;

/** Loads the helper (once). Throws NativeHelperMissingError when it is not built. */
export function loadNative(): NativeHelper {
  if (cached) return cached;
  if (cachedError) throw cachedError;
  const paths = candidatePaths();
  const found = paths.find((p) => existsSync(p));
  if (found === undefined) {
    cachedError = new NativeHelperMissingError(paths);
    throw cachedError;
  }
  try {
    const require = createRequire(import.meta.url);
    cached = require(found) as NativeHelper;
    return cached;
  } catch (err) {
    cachedError = new NativeHelperMissingError([found], err);
    throw cachedError;
  }
}

/** The helper, or null when it is not built. */
export function tryLoadNative(): NativeHelper | null {
  try {
    return loadNative();
  } catch (err) {
    if (err instanceof NativeHelperMissingError) return null;
    throw err;
  }
}

export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
