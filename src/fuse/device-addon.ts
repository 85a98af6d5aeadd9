/**
 * The FUSE device helper (native/fuse_device.c, built into build/Release/handlefs_fuse.node):
 * reads /dev/fuse on the event loop and writes replies without Node's per-call overheads.
 * Optional: without it the channel falls back to a libuv pipe handle (docs/fuse.md).
 */
import { addonLoader } from '../util/addon.js';

declare const readerBrand: unique symbol;
/** Opaque handle returned by startReader. */
export type NativeReaderHandle = { readonly [readerBrand]: true };

export interface FuseDeviceAddon {
  /**
   * Watches fd (made non-blocking) on the event loop; on each wake-up reads the queued requests
   * into `buf` one by one (up to 64), calling onRequest(n) for each; onRequest(-errno) once on a
   * fatal read error (0 bytes read reports ENODEV), after which the reader is stopped.
   * onRequest returning false stops it.
   */
  startReader(fd: number, buf: Uint8Array, onRequest: (n: number) => boolean): NativeReaderHandle;
  /** Stops the reader; true if it was active. Idempotent; may be called from onRequest. */
  stopReader(reader: NativeReaderHandle): boolean;
  /** One write(2): bytes written, or -errno. */
  write(fd: number, buf: Uint8Array, len: number): number;
  /** One writev(2) of at most WRITEV_MAX_PIECES pieces: bytes written, or -errno. */
  writev(fd: number, bufs: readonly Uint8Array[]): number;
  /** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two connected descriptors. */
  socketpair(): [number, number];
  /** One descriptor received with SCM_RIGHTS (close-on-exec), without waiting; or -errno (-EAGAIN: none yet). */
  recvFd(sock: number): number;
}

/** The most pieces the helper's writev takes (its iovec array in native/fuse_device.c). */
export const WRITEV_MAX_PIECES = 64;

export const fuseDeviceAddon = addonLoader<FuseDeviceAddon>({
  file: 'handlefs_fuse.node',
  envVar: 'HANDLEFS_FUSE_NATIVE',
  label: 'handlefs FUSE device helper',
});
