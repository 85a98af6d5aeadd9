/**
 * Tells when a process (pid, startTime) exits, within milliseconds.
 *
 * With the native helper: one pidfd per watched process (shared by every watcher of the same
 * process), polled readable by libuv; a pidfd becomes readable when the process exits (turns
 * zombie), so the callback runs about a millisecond after the exit. Pid reuse race: the pidfd
 * is opened first, then /proc/PID/stat is read again; a different start time means the pidfd
 * names a newer process, so ours has already exited.
 *
 * Without the helper (not built), or when pidfd_open fails for lack of descriptors, a shared
 * timer re-reads /proc/PID/stat of each such process every `pollIntervalMs` instead.
 */
import { closeSync, fstatSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { errnoCode, tryLoadNative, type FdWatch, type NativeHelper } from './native.js';
import { classifyProcError, parseStat, type StatFields } from './parse.js';

export interface ExitWatcherOptions {
  logger: Logger;
  procRoot?: string;
  /** Default: the built helper if present, else null (polling). */
  native?: NativeHelper | null;
  /** Polling period of the fallback, ms. Default 10. */
  pollIntervalMs?: number;
}

interface Listener {
  fn: () => void;
  active: boolean;
}

interface Entry {
  key: string;
  pid: number;
  startTime: number;
  /** The pidfs inode number of the watched process, when known: checked on the watch's own pidfd. */
  pidfsIno: number | undefined;
  listeners: Set<Listener>;
  done: boolean;
  fd: number | null;
  watch: FdWatch | null;
  polled: boolean;
}

/** Reads /proc/PID/stat; null when the process is gone (or the file unparsable). */
export async function readStat(procRoot: string, pid: number): Promise<StatFields | null> {
  try {
    return parseStat(await readFile(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch (err) {
    if (classifyProcError(err) === 'gone') return null;
    throw err;
  }
}

export class ExitWatcher {
  private readonly logger: Logger;
  private readonly procRoot: string;
  private readonly native: NativeHelper | null;
  private readonly pollIntervalMs: number;
  private readonly entries = new Map<string, Entry>();
  private readonly polled = new Set<Entry>();
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private warnedFallback = false;
  private closed = false;

  constructor(options: ExitWatcherOptions) {
    this.logger = options.logger;
    this.procRoot = options.procRoot ?? '/proc';
    this.native = options.native === undefined ? tryLoadNative() : options.native;
    this.pollIntervalMs = options.pollIntervalMs ?? 10;
    if (!this.native) this.warnFallback('native helper not built');
  }

  /** Number of processes being watched. */
  get size(): number {
    return this.entries.size;
  }

  /** True when exits are detected through pidfds rather than polling. */
  get usesPidfd(): boolean {
    return this.native !== null;
  }

  /** See ProcessSource.watchExit. */
  watch(pid: number, startTime: number, onExit: () => void, pidfsIno?: number): () => void {
    if (this.closed) throw new Error('ExitWatcher is closed');
    const key = `${pid}:${startTime}:${pidfsIno ?? ''}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = {
        key,
        pid,
        startTime,
        pidfsIno,
        listeners: new Set(),
        done: false,
        fd: null,
        watch: null,
        polled: false,
      };
      this.entries.set(key, entry);
      this.arm(entry);
    }
    const listener: Listener = { fn: onExit, active: true };
    entry.listeners.add(listener);
    const e = entry;
    return () => {
      if (!listener.active) return;
      listener.active = false;
      e.listeners.delete(listener);
      if (e.listeners.size === 0 && !e.done) {
        e.done = true;
        this.release(e);
      }
    };
  }

  /** Stops every watch; no callback fires afterwards. */
  close(): void {
    this.closed = true;
    for (const entry of [...this.entries.values()]) {
      entry.done = true;
      for (const l of entry.listeners) l.active = false;
      this.release(entry);
    }
  }

  private arm(entry: Entry): void {
    const native = this.native;
    if (!native || !Number.isSafeInteger(entry.pid) || entry.pid <= 0) {
      if (native) queueMicrotask(() => this.fire(entry));
      else this.startPolling(entry);
      return;
    }
    let fd: number;
    try {
      fd = native.pidfdOpen(entry.pid);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ESRCH' || code === 'EINVAL') {
        // No such process, or the pid now names a non-leader thread: ours is gone.
        queueMicrotask(() => this.fire(entry));
      } else {
        this.warnFallback(`pidfd_open failed: ${code ?? String(err)}`);
        this.startPolling(entry);
      }
      return;
    }
    entry.fd = fd;
    try {
      entry.watch = native.watchFd(fd, () => {
        entry.watch = null; // one-shot: already stopped
        this.fire(entry);
      });
    } catch (err) {
      closeSync(fd);
      entry.fd = null;
      this.warnFallback(`watching a pidfd failed: ${errnoCode(err) ?? String(err)}`);
      this.startPolling(entry);
      return;
    }
    // The pidfd may name a process that reused the pid: check its pidfs inode (one fstat) when
    // known, else the start time after opening.
    if (entry.pidfsIno === undefined) {
      void this.verify(entry);
      return;
    }
    let ino: number | undefined;
    try {
      ino = fstatSync(fd).ino;
    } catch (err) {
      this.logger.debug({ pid: entry.pid, err }, 'exit watcher: fstat of a pidfd failed; checking the start time');
      void this.verify(entry);
      return;
    }
    if (ino !== entry.pidfsIno) queueMicrotask(() => this.fire(entry));
  }

  private async verify(entry: Entry): Promise<void> {
    let stat: StatFields | null;
    try {
      stat = await readStat(this.procRoot, entry.pid);
    } catch (err) {
      this.logger.debug({ pid: entry.pid, err }, 'exit watcher: stat unreadable; relying on pidfd');
      return;
    }
    if (stat === null || stat.startTime !== entry.startTime) this.fire(entry);
  }

  private fire(entry: Entry): void {
    if (entry.done) return;
    entry.done = true;
    this.release(entry);
    for (const l of [...entry.listeners]) {
      if (!l.active) continue;
      l.active = false;
      try {
        l.fn();
      } catch (err) {
        this.logger.error({ err, pid: entry.pid, startTime: entry.startTime }, 'exit callback threw');
      }
    }
    entry.listeners.clear();
  }

  /** Frees the descriptor / polling slot of an entry that is done. */
  private release(entry: Entry): void {
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    if (entry.watch && this.native) this.native.unwatch(entry.watch);
    entry.watch = null;
    if (entry.fd !== null) {
      try {
        closeSync(entry.fd);
      } catch (err) {
        this.logger.warn({ err, fd: entry.fd }, 'closing pidfd failed');
      }
      entry.fd = null;
    }
    if (entry.polled) {
      entry.polled = false;
      this.polled.delete(entry);
      if (this.polled.size === 0 && this.pollTimer) {
        clearInterval(this.pollTimer);
        this.pollTimer = null;
      }
    }
  }

  private warnFallback(reason: string): void {
    if (this.warnedFallback) return;
    this.warnedFallback = true;
    this.logger.warn(
      { reason, pollIntervalMs: this.pollIntervalMs },
      'exit watcher falls back to polling /proc/PID/stat',
    );
  }

  private startPolling(entry: Entry): void {
    entry.polled = true;
    this.polled.add(entry);
    if (!this.pollTimer) this.pollTimer = setInterval(() => void this.pollOnce(), this.pollIntervalMs);
    void this.checkPolled(entry);
  }

  private async pollOnce(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await Promise.all([...this.polled].map((e) => this.checkPolled(e)));
    } finally {
      this.polling = false;
    }
  }

  private async checkPolled(entry: Entry): Promise<void> {
    let stat: StatFields | null;
    try {
      stat = await readStat(this.procRoot, entry.pid);
    } catch {
      return; // unreadable for now; try again next tick
    }
    if (stat === null || stat.startTime !== entry.startTime || stat.state === 'Z' || stat.state === 'X') {
      this.fire(entry);
    }
  }
}
