/**
 * The state's directory: created when missing (mode 0700, removed again by a refused start) and
 * proved to take a durable write before anything else is created in it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeCause } from './damage.js';

/**
 * The state cannot be written where it is asked for: a read-only filesystem, a full disk, or a
 * directory that cannot be created there (procfs, sysfs). The CLI maps it to its own exit code.
 */
export class StateNotWritableError extends Error {
  constructor(
    message: string,
    /** The errno of the cause (EROFS, ENOSPC, EPERM, ...). */
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StateNotWritableError';
  }
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Creates the missing directories of `dir` one level at a time, mode 0700, and returns those it
 * created (deepest last), so that a refused start can remove them again. (Not fs.mkdirSync's
 * recursive mode: on procfs it spins forever on ENOENT.)
 */
function makeStateDirectory(dir: string): string[] {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) {
    if (d === path.dirname(d)) break;
    missing.unshift(d);
  }
  const created: string[] = [];
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      removeDirectories(created);
      throw new StateNotWritableError(
        `handlefs store: cannot create the state directory ${dir}: ${describeCause(err)}`,
        errnoCode(err),
        { cause: err },
      );
    }
    created.push(d);
  }
  return created;
}

/** Removes directories created by makeStateDirectory, deepest first, if they are still empty. */
export function removeDirectories(created: readonly string[]): void {
  for (const d of [...created].reverse()) {
    try {
      fs.rmdirSync(d);
    } catch {
      return; // not empty (or gone): leave it and its parents
    }
  }
}

/**
 * Creates the directory if needed and proves it takes a durable write (read-only fs, full disk).
 * Returns the directories it created.
 */
export function probeDirectory(file: string): string[] {
  const dir = path.dirname(file);
  const created = makeStateDirectory(dir);
  const probe = `${file}.probe`;
  try {
    const fd = fs.openSync(probe, 'w', 0o600);
    try {
      fs.writeSync(fd, Buffer.alloc(4096));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.unlinkSync(probe);
  } catch (err) {
    try {
      fs.unlinkSync(probe);
    } catch {
      // ignore: the probe may not exist
    }
    removeDirectories(created);
    throw new StateNotWritableError(`handlefs store: state directory ${dir} is not writable, cannot open ${file}: ${describeCause(err)}`, errnoCode(err), { cause: err });
  }
  return created;
}
