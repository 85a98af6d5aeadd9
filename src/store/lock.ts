/**
 * One daemon per state file.
 *
 * The lock is a kernel lock, not a pid file: `FILE.lock` is an (empty) SQLite database on which
 * the holder keeps an open `BEGIN EXCLUSIVE` transaction for as long as the store is open.
 * SQLite takes that as a POSIX fcntl write lock, which the kernel drops the moment the holder
 * exits for any reason, SIGKILL included, so a crashed daemon never leaves the file locked and
 * there is no stale-pid guessing (no pid reuse problem, no race between two starters breaking a
 * stale lock). SQLite also refuses a second connection of the same process, so the check holds
 * in-process too. Nothing is ever written to the lock file and it is never deleted (its presence
 * also tells the store that a state existed here before). The holder's pid comes from the
 * kernel's own table, /proc/locks.
 *
 * Caveat: POSIX locks belong to a process, and closing ANY descriptor of the file drops them, so
 * nothing in this process may open FILE.lock except through SQLite (which knows about this).
 */
import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { describeCause } from './damage.js';

export class StateLockedError extends Error {
  constructor(
    readonly statePath: string,
    readonly lockPath: string,
    /** Pids holding the lock according to /proc/locks (empty if unknown). */
    readonly holders: readonly number[],
  ) {
    const who =
      holders.length === 0
        ? 'another process (pid unknown: /proc/locks unavailable)'
        : holders.map((pid) => (pid === process.pid ? `pid ${pid} (this process)` : `pid ${pid}`)).join(', ');
    super(`handlefs store: state file ${statePath} is in use by ${who}; only one daemon may use a state file (lock ${lockPath})`);
    this.name = 'StateLockedError';
  }
}

export interface StateLock {
  readonly lockPath: string;
  /** Whether FILE.lock already existed, i.e. some earlier run used this state path. */
  readonly existedBefore: boolean;
  release(): void;
  /**
   * For a refused start: releases the lock and deletes FILE.lock if this open created it, so a
   * refusal leaves nothing behind. (A starter racing this one on the same path would lock the
   * deleted file; it is refused by the same check that refused this one.)
   */
  discard(): void;
}

function lockPathFor(statePath: string): string {
  return `${statePath}.lock`;
}

function linuxDev(dev: number): { major: number; minor: number } {
  // glibc's gnu_dev_major/minor encoding of st_dev.
  const hi = Math.floor(dev / 2 ** 32);
  const lo = dev >>> 0;
  return {
    major: ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0),
    minor: (lo & 0xff) | ((lo >>> 12) & 0xfff00),
  };
}

/** Pids that hold a POSIX/flock/OFD lock on `file`, from /proc/locks (Linux). */
export function lockHolders(file: string): number[] {
  let st: fs.Stats;
  let table: string;
  try {
    st = fs.statSync(file);
    table = fs.readFileSync('/proc/locks', 'latin1');
  } catch {
    return [];
  }
  const { major, minor } = linuxDev(st.dev);
  const pids = new Set<number>();
  // "1: POSIX  ADVISORY  WRITE 6539 fe:00:2146809 1073741824 1073742335"
  for (const line of table.split('\n')) {
    const m = /^\d+:\s+(?:->\s+)?\S+\s+\S+\s+\S+\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m) continue;
    if (Number(m[4]) !== st.ino || parseInt(m[2]!, 16) !== major || parseInt(m[3]!, 16) !== minor) continue;
    const pid = Number(m[1]);
    if (pid > 0) pids.add(pid);
  }
  return [...pids].sort((a, b) => a - b);
}

/**
 * Takes the lock for `statePath` or throws StateLockedError naming the holder. `waitMs` retries
 * for that long (a restarting daemon may briefly overlap its predecessor's exit).
 */
export function acquireStateLock(statePath: string, options: { waitMs?: number } = {}): StateLock {
  const lockPath = lockPathFor(statePath);
  const existedBefore = fs.existsSync(lockPath);
  let db: Database.Database;
  try {
    // Created here, mode 0600, rather than by SQLite (which follows the umask).
    if (!existedBefore) createPrivateFile(lockPath);
    db = new Database(lockPath, { timeout: Math.max(0, options.waitMs ?? 0) });
  } catch (err) {
    throw new Error(`handlefs store: cannot open lock file ${lockPath}: ${describeCause(err)}`, { cause: err });
  }
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new StateLockedError(statePath, lockPath, lockHolders(lockPath));
    }
    throw new Error(`handlefs store: cannot lock ${lockPath}: ${describeCause(err)}`, { cause: err });
  }
  let held = true;
  return {
    lockPath,
    existedBefore,
    release() {
      if (!held) return;
      held = false;
      try {
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    },
    discard() {
      const mine = held && !existedBefore;
      if (mine) fs.rmSync(lockPath, { force: true });
      this.release();
    },
  };
}

/** Creates an empty file only its owner can read or write; an existing file is left alone. */
export function createPrivateFile(file: string): void {
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}
