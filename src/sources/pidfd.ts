/**
 * A pidfd held for exactly one process (src/sources/types.ts ProcessPidfd): the kernel's
 * guarantee that signals and exit information through it never reach another process.
 *
 * How it ended: a reaped process answers PIDFD_GET_INFO with PIDFD_INFO_EXIT (Linux 6.15+, only
 * through a pidfd opened before the exit). A zombie is not reaped yet and has no exit info there;
 * its wait status is field 52 of /proc/PID/stat, which is read between two PIDFD_GET_INFO calls
 * that both name the pid: the pid cannot be reused while the process is unreaped, so the file read
 * in between is that process's.
 */
import { closeSync, fstatSync, readFileSync } from 'node:fs';
import { errnoCode, type NativeHelper } from './native.js';
import { endingOfWaitStatus, type ProcessEnding, type ProcessPidfd, type ProcessUids } from './types.js';

const PIDFD_INFO_PID = 1 << 0;
const PIDFD_INFO_EXIT = 1 << 3;

/** Closes descriptors of pidfds dropped without close(). */
const leaked = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
});

/** Field 52 (exit_code) of /proc/PID/stat, or null when absent or unreadable. */
export function statExitStatus(text: string): number | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 2).trim().split(' ');
  // fields[0] is field 3 (state); field 52 is fields[49]
  const v = fields[49];
  return v === undefined || !/^\d+$/.test(v) ? null : Number(v);
}

export class NativePidfd implements ProcessPidfd {
  private fd: number;
  /** Exit listeners, and the one poll of the descriptor they share (stopped before it closes). */
  private readonly listeners = new Set<{ fn: () => void; active: boolean }>();
  private watch: ReturnType<NativeHelper['watchFd']> | null = null;
  /** The descriptor turned readable: the process has exited. */
  private exited = false;

  private constructor(
    private readonly native: NativeHelper,
    fd: number,
    readonly pidfsIno: number,
    private readonly procRoot: string,
  ) {
    this.fd = fd;
    leaked.register(this, fd, this);
  }

  /**
   * A pidfd for the process now under `pid` if its pidfs inode is `incarnation` and it has not
   * exited; null otherwise.
   */
  static open(native: NativeHelper, pid: number, incarnation: number, procRoot = '/proc'): NativePidfd | null {
    let fd: number;
    try {
      fd = native.pidfdOpen(pid);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ESRCH' || code === 'EINVAL' || code === 'ENOENT') return null;
      throw err;
    }
    let keep = false;
    try {
      const ino = fstatSync(fd).ino;
      if (ino !== incarnation) return null;
      keep = true;
      return new NativePidfd(native, fd, ino, procRoot);
    } finally {
      if (!keep) closeSync(fd);
    }
  }

  /**
   * A pidfd reopened from a pidfs inode number through a pidfs file handle; null when the process
   * was reaped (ESTALE) or the kernel cannot decode pidfs handles (before 6.17: EBADF, EINVAL, ...).
   */
  static reopen(native: NativeHelper, pidfsIno: number, procRoot = '/proc'): NativePidfd | null {
    if (native.pidfdOpenByHandle === undefined || !Number.isSafeInteger(pidfsIno) || pidfsIno <= 0) return null;
    let fd: number;
    try {
      fd = native.pidfdOpenByHandle(pidfsIno);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EMFILE' || code === 'ENFILE' || code === 'ENOMEM') throw err; // not evidence of anything
      return null;
    }
    let keep = false;
    try {
      const ino = fstatSync(fd).ino;
      if (ino !== pidfsIno) return null;
      keep = true;
      return new NativePidfd(native, fd, ino, procRoot);
    } finally {
      if (!keep) closeSync(fd);
    }
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  ending(): ProcessEnding {
    if (this.fd < 0) return { state: 'unknown' };
    const first = this.info();
    if (first === null) return { state: 'unknown' };
    if ((first.mask & PIDFD_INFO_PID) === 0) {
      return (first.mask & PIDFD_INFO_EXIT) !== 0 ? endingOfWaitStatus(first.exitStatus) : { state: 'unknown' };
    }
    // Not reaped: alive, or a zombie whose status only /proc/PID/stat shows.
    let text: string;
    try {
      text = readFileSync(`${this.procRoot}/${first.pid}/stat`, 'utf8');
    } catch {
      return this.ending(); // reaped meanwhile: ask again
    }
    const again = this.info();
    if (again === null || (again.mask & PIDFD_INFO_PID) === 0 || again.pid !== first.pid) return this.ending();
    const close = text.lastIndexOf(')');
    const state = close < 0 ? '' : text.charAt(close + 2);
    if (state !== 'Z' && state !== 'X') return { state: 'running' };
    const status = statExitStatus(text);
    return status === null ? { state: 'unknown' } : endingOfWaitStatus(status);
  }

  uids(): ProcessUids | null {
    const i = this.fd < 0 ? null : this.info();
    if (i === null || (i.mask & PIDFD_INFO_PID) === 0 || i.ruid < 0) return null;
    return { real: i.ruid, effective: i.euid, saved: i.suid };
  }

  signal(signal: number): void {
    if (this.fd < 0) throw Object.assign(new Error('the pidfd is closed'), { code: 'ESRCH' });
    this.native.pidfdSendSignal(this.fd, signal);
  }

  watchExit(onExit: () => void): () => void {
    const listener = { fn: onExit, active: true };
    const dispose = (): void => {
      if (!listener.active) return;
      listener.active = false;
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.watch !== null) {
        this.native.unwatch(this.watch);
        this.watch = null;
      }
    };
    if (this.fd < 0 || this.exited) {
      queueMicrotask(() => {
        if (listener.active) {
          listener.active = false;
          onExit();
        }
      });
      return dispose;
    }
    this.listeners.add(listener);
    // One poll per descriptor (libuv allows no more), shared by every listener.
    this.watch ??= this.native.watchFd(this.fd, () => {
      this.watch = null; // one-shot: already stopped
      this.exited = true;
      const all = [...this.listeners];
      this.listeners.clear();
      for (const l of all) {
        if (!l.active) continue;
        l.active = false;
        l.fn();
      }
    });
    return dispose;
  }

  close(): void {
    if (this.fd < 0) return;
    for (const l of this.listeners) l.active = false;
    this.listeners.clear();
    if (this.watch !== null) this.native.unwatch(this.watch);
    this.watch = null;
    const fd = this.fd;
    this.fd = -1;
    leaked.unregister(this);
    closeSync(fd);
  }

  private info(): ReturnType<NativeHelper['pidfdInfo']> | null {
    try {
      return this.native.pidfdInfo(this.fd);
    } catch (err) {
      // ESRCH: reaped on a kernel without PIDFD_INFO_EXIT (before 6.15); ENOTTY: before 6.13.
      const code = errnoCode(err);
      if (code === 'ESRCH' || code === 'ENOTTY' || code === 'EINVAL') return null;
      throw err;
    }
  }
}
