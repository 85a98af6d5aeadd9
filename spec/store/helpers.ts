/** Shared helpers for the store specs (not a spec file itself). */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import type { InodeRecord } from '../../src/core/store.js';
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from '../../src/store/index.js';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

const created: string[] = [];

/** A fresh directory under the OS temp dir, removed by removeTempDirs(). */
export function tempDir(prefix = 'handlefs-store-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Register with `test.after.always(removeTempDirs)`. */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A pino logger that records every line (parsed) in `lines`. */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

export const quiet = (): Logger => pino({ level: 'silent' });

export function open(file: string, extra: Partial<SqliteStoreOptions> = {}): SqliteStore {
  return openSqliteStore({ path: file, logger: quiet(), ...extra });
}

export function record(ino: number, generation: number, key: number, extra: Partial<InodeRecord> = {}): InodeRecord {
  return { ino, generation, kind: 'process', key, incarnation: key * 7 + 1, scope: 'boot-a', ...extra };
}

/** Opens, grants and stores `n` rows, closes. Returns what was written and the final high-water mark. */
export async function populate(file: string, n: number): Promise<{ rows: InodeRecord[]; highWater: number; generation: number }> {
  const store = open(file);
  const rows: InodeRecord[] = [];
  let next = 0;
  let end = 0;
  for (let i = 0; i < n; i++) {
    if (next >= end) ({ start: next, end } = store.reserve(1));
    const r = record(next++, store.generation, 10_000 + i, { kind: i % 3 === 0 ? 'namespace' : 'process' });
    store.put(r);
    rows.push(r);
  }
  await store.flush();
  const result = { rows, highWater: store.highWater, generation: store.generation };
  store.close();
  return result;
}

// ---- child processes ------------------------------------------------------------------------

/** Starts `node --import tsx fixtures/<name> ...args` with piped stdio. */
export function spawnFixture(name: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(FIXTURES, name), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Calls `onLine` for each complete stdout line of `child`. */
export function onLines(child: ChildProcess, onLine: (line: string) => void): void {
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; stderr: ${stderr}`)), timeoutMs);
    onLines(child, (line) => {
      const m = pattern.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}) before ${pattern}; stderr: ${stderr}`));
    });
  });
}

// ---- tmpfs mounts (root only) ---------------------------------------------------------------

export interface Tmpfs {
  readonly dir: string;
  remount(mode: 'ro' | 'rw'): void;
  /** Unmounts and removes the mount point; safe to call twice. */
  cleanup(): void;
}

/** Mounts a tmpfs of `size` (e.g. '2m') on a fresh directory; throws if that is not permitted. */
export function mountTmpfs(size: string): Tmpfs {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-store-mnt-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmdirSync(dir);
    throw err;
  }
  let mounted = true;
  return {
    dir,
    remount(mode) {
      execFileSync('mount', ['-o', `remount,${mode}`, dir], { stdio: 'pipe' });
    },
    cleanup() {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      fs.rmdirSync(dir);
    },
  };
}

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN); the reason if not. */
export function canMountTmpfs(): true | string {
  try {
    mountTmpfs('64k').cleanup();
    return true;
  } catch (err) {
    return `cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`;
  }
}

/** Writes zeros into `file` until the filesystem is full. */
export function fillDisk(file: string): void {
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) {
      try {
        fs.writeSync(fd, block);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        break;
      }
    }
    // Fill the last partial block too.
    for (let size = 4096; size >= 1; size >>= 1) {
      try {
        while (true) fs.writeSync(fd, block.subarray(0, size));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
