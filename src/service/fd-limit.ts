/**
 * The service's descriptor limit. Every process handle the kernel references holds a pidfd (its
 * exit watch) and every held namespace a descriptor, so a busy host needs far more than the
 * usual 1024. Node raises the soft limit to the hard one by itself; as root we also raise the
 * hard limit (up to fs.nr_open) with prlimit(1), so EMFILE stays the exception. Running out is
 * never taken for an exit (see HostReadError), but it does make requests answer EIO.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';

/** What we ask for: enough for a million handles, capped by the kernel's fs.nr_open. */
export const WANTED_FD_LIMIT = 1 << 20;
/** Below this a busy host can run out: say so as a warning (above it, an info line). */
export const LOW_FD_LIMIT = 65536;

export interface FdLimit {
  soft: number;
  hard: number;
}

/** The current RLIMIT_NOFILE of this process, from /proc/self/limits. */
export function readFdLimit(): FdLimit {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line ?? '').split(/\s{2,}/).slice(1, 3).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft: soft ?? NaN, hard: hard ?? NaN };
}

function nrOpen(): number {
  try {
    return Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()) || WANTED_FD_LIMIT;
  } catch {
    return WANTED_FD_LIMIT;
  }
}

/** Raises RLIMIT_NOFILE towards WANTED_FD_LIMIT where it can; returns the limit in force. */
export function raiseFdLimit(log: Logger): FdLimit {
  const before = readFdLimit();
  const want = Math.min(WANTED_FD_LIMIT, nrOpen());
  if (before.soft >= want) return before;
  const target = Math.max(want, before.soft);
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${Math.max(target, before.hard)}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  const after = readFdLimit();
  if (after.soft < want) {
    log[after.soft < LOW_FD_LIMIT ? 'warn' : 'info'](
      { limit: after.soft, wanted: want, why: r.error?.message ?? (r.stderr.trim() || undefined) },
      'descriptor limit could not be raised: past it, requests answer EIO (one descriptor per watched process and per held namespace)',
    );
  } else {
    log.debug({ before: before.soft, limit: after.soft }, 'descriptor limit raised');
  }
  return after;
}
