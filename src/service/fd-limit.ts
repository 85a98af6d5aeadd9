/**
 * The service's descriptor limit. Every process handle the kernel references holds a pidfd (its
 * exit watch) and every held namespace a descriptor, so a busy host needs far more than the
 * usual 1024. Node raises the soft limit to the hard one by itself; as root we also raise the
 * hard limit (up to fs.nr_open) with prlimit(1), so EMFILE stays the exception. Running out is
 * never taken for an exit (see HostReadError), but it does make requests answer EIO.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

/** Share of the limit in use above which the service warns (and below which, again, it says so). */
export const FD_WARN_SHARE = 0.8;
export const FD_CLEAR_SHARE = 0.7;

/**
 * The next state of the descriptor warning: 'high' once `used` passes FD_WARN_SHARE of `limit`,
 * 'ok' again only below FD_CLEAR_SHARE (a count that hovers at the line says it once).
 */
export function fdPressure(prev: 'ok' | 'high', used: number, limit: number): 'ok' | 'high' {
  if (!Number.isFinite(limit) || limit <= 0) return 'ok';
  if (prev === 'ok') return used >= limit * FD_WARN_SHARE ? 'high' : 'ok';
  return used < limit * FD_CLEAR_SHARE ? 'ok' : 'high';
}

/** Descriptors this process has open (entries of /proc/self/fd). */
export function countOpenFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * Checks every `intervalMs` how many descriptors are open and warns before the limit is reached:
 * past it, new handles get no pidfd and requests answer EIO, and nothing else would say why
 * beforehand. Returns the stop function.
 */
export function watchFdPressure(log: Logger, limit: number, intervalMs = 10_000, count: () => number = countOpenFds): () => void {
  let state: 'ok' | 'high' = 'ok';
  const check = (): void => {
    let used: number;
    try {
      used = count();
    } catch {
      return;
    }
    const next = fdPressure(state, used, limit);
    if (next === state) return;
    state = next;
    if (next === 'high') {
      log.warn({ used, limit }, `${used} of ${limit} descriptors in use: past the limit new handles get no pidfd and requests answer EIO (one descriptor per watched process and per held namespace; raise RLIMIT_NOFILE)`);
    } else {
      log.info({ used, limit }, `${used} of ${limit} descriptors in use: below the warning line again`);
    }
  };
  check();
  const timer = setInterval(check, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
