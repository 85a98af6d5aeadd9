/**
 * The durable InodeStore: one SQLite database in WAL mode (better-sqlite3), plus FILE.hwm (a second
 * high-water record outside the database) and FILE.lock (one daemon per state file). reserve()
 * is synchronous on the main connection; group commits run on a commit thread (commit-worker.ts).
 * openSqliteStore() (open-store.ts) opens it. docs/store.md describes the files, tables and
 * policies for operators.
 */
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { FIRST_DYNAMIC_INO, MAX_INO } from '../core/numbers.js';
import type { InodeRecord, InodeStore, NumberRange } from '../core/store.js';
import { clockCeiling, describeCause, metaChecksum, writeHwm } from './damage.js';
import type { StateLock } from './lock.js';
import { GroupCommit } from './group-commit.js';
import type { Names } from './names.js';
import { readRows } from './row-reader.js';
import type { StateWitness, WitnessDirs } from './witness.js';

/** The CLI's `--state FILE` default. */
export const DEFAULT_STATE_PATH = '/var/lib/handlefs/state.db';

/** Range sizes: grow while ranges run out within a second, shrink after a minute of quiet. */
export const DEFAULT_MIN_CHUNK = 1024;
export const DEFAULT_MAX_CHUNK = 65536;

export interface SqliteStoreOptions {
  /** State file; FILE.hwm and FILE.lock are kept next to it. Default DEFAULT_STATE_PATH. */
  readonly path?: string;
  readonly logger: Logger;
  /** Bounds of the adaptive range size (numbers granted per reserve()). */
  readonly minChunk?: number;
  readonly maxChunk?: number;
  /**
   * Check run at open before the rows are trusted: 'quick' (PRAGMA quick_check, default),
   * 'full' (PRAGMA integrity_check, also cross-checks indexes) or 'off'. Row and meta checksums
   * are always verified.
   */
  readonly integrityCheck?: 'quick' | 'full' | 'off';
  /**
   * Where a brand-new state starts when nothing shows that a state ever existed at this path
   * (no database, no FILE.hwm, no FILE.lock, no quarantined copy): 'first' (FIRST_DYNAMIC_INO,
   * default) or 'clock' (the wall-clock floor, for state kept where the whole directory may vanish).
   */
  readonly freshStart?: 'first' | 'clock';
  /** How long open() waits for a lock held by another process before refusing (default 0). */
  readonly lockWaitMs?: number;
  /** SQLite busy timeout for the state database (default 1000 ms). */
  readonly busyTimeoutMs?: number;
  /**
   * Run group commits on a worker thread (default true), so that their fsync never stalls the
   * event loop; false commits on the main thread (simpler, and what close() always does).
   */
  readonly commitThread?: boolean;
  /** Wall clock in ms (tests). */
  readonly now?: () => number;
  /**
   * Directories for the records kept outside the state directory that detect a state restored
   * from an older copy (witness.ts). None by default; the service uses /run/handlefs/states and
   * /var/lib/misc/handlefs.
   */
  readonly witness?: WitnessDirs;
}

/** How the store found its state at open; for logs, the CLI's status output and tests. */
export interface StoreStartup {
  /** 'new': no earlier state; 'restart': state intact; 'recovered': damaged or missing state. */
  readonly origin: 'new' | 'restart' | 'recovered';
  readonly generation: number;
  readonly highWater: number;
  readonly rows: number;
  /** Where the high-water mark came from: 'db', 'hwm', 'clock', 'first'. */
  readonly highWaterFrom: string;
  /** Why the state was not trusted (origin 'recovered'). */
  readonly damage?: string;
  /** Paths the damaged files were moved to. */
  readonly quarantined: readonly string[];
  /** Schema migration performed at open, if any. */
  readonly migratedFrom?: number;
  /** When this state was first created (ISO-8601; part of the meta checksum). */
  readonly createdAt: string;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** What openSqliteStore() hands over: the open database and what it decided. */
export interface StoreParts {
  file: string;
  db: Database.Database;
  lock: StateLock;
  log: Logger;
  startup: StoreStartup;
  rows: InodeRecord[];
  kinds: Names;
  scopes: Names;
  options: SqliteStoreOptions;
  now: () => number;
  witness: StateWitness | undefined;
}

export class SqliteStore implements InodeStore {
  readonly path: string;
  readonly hwmPath: string;
  readonly generation: number;
  /** How the state was found at open. */
  readonly startup: StoreStartup;
  private high: number;
  /** Highest high-water mark this run tried to make durable (>= high). */
  private recordedHigh: number;
  private readonly db: Database.Database;
  private readonly lock: StateLock;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly kinds: Names;
  private readonly scopes: Names;
  /** Queued row changes and their group commits. */
  private readonly commits: GroupCommit;
  private initialRows: InodeRecord[] | undefined;
  private closed = false;
  private chunk: number;
  private readonly minChunk: number;
  private readonly maxChunk: number;
  private lastReserveAt: number | undefined;
  private failing: { failures: number; lastLogAt: number } | undefined;
  private readonly counters = { reserves: 0, commits: 0, failedCommits: 0, rowsWritten: 0, rowsDeleted: 0 };
  /** Told how long each successful group commit took, from its start to its fsync (seconds): metrics. */
  onCommit: ((seconds: number) => void) | null = null;
  private readonly setHighStmt: Database.Statement;
  private readonly witness: StateWitness | undefined;

  /** Use openSqliteStore(). */
  constructor(parts: StoreParts) {
    const { db, options } = parts;
    this.path = parts.file;
    this.hwmPath = `${parts.file}.hwm`;
    this.db = db;
    this.lock = parts.lock;
    this.log = parts.log;
    this.now = parts.now;
    this.kinds = parts.kinds;
    this.scopes = parts.scopes;
    this.startup = parts.startup;
    this.generation = parts.startup.generation;
    this.high = parts.startup.highWater;
    this.recordedHigh = this.high;
    this.witness = parts.witness;
    this.initialRows = parts.rows;
    this.minChunk = Math.max(1, Math.floor(options.minChunk ?? DEFAULT_MIN_CHUNK));
    this.maxChunk = Math.max(this.minChunk, Math.floor(options.maxChunk ?? DEFAULT_MAX_CHUNK));
    this.chunk = this.minChunk;
    this.setHighStmt = db.prepare('UPDATE meta SET high_water = ?, checksum = ? WHERE id = 1');
    this.commits = new GroupCommit({
      file: this.path,
      db,
      kinds: this.kinds,
      scopes: this.scopes,
      log: this.log,
      busyTimeoutMs: options.busyTimeoutMs ?? 1000,
      commitThread: options.commitThread ?? true,
      outcomes: {
        committed: (batch, seconds) => {
          this.recovered();
          this.counters.commits++;
          if (this.onCommit !== null && seconds !== undefined) this.onCommit(seconds);
          for (const r of batch.values()) {
            if (r === null) this.counters.rowsDeleted++;
            else this.counters.rowsWritten++;
          }
        },
        failed: (batch, err) => {
          this.counters.failedCommits++;
          const msg = `handlefs store: commit of ${batch.size} changes to ${this.path} failed: ${describeCause(err)}`;
          this.failed(msg, err, 'new numbers stay unrevealed until a commit succeeds');
          return new Error(msg, { cause: err });
        },
      },
    });
  }

  get highWater(): number {
    return this.high;
  }

  /** True while changes are queued or being committed. */
  get dirty(): boolean {
    return this.commits.dirty;
  }

  /** Current range size; adapts between minChunk and maxChunk. */
  get chunkSize(): number {
    return this.chunk;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Disk work done since open: durable reserves, group commits and the rows they carried. */
  get stats(): Readonly<{ reserves: number; commits: number; failedCommits: number; rowsWritten: number; rowsDeleted: number }> {
    return { ...this.counters };
  }

  /**
   * Grants [highWater, highWater + max(count, chunk)) after making its end durable twice: the meta
   * row (autocommit, synchronous=FULL: the WAL is fsync'd before run() returns) and FILE.hwm
   * (temp, fsync, rename, fsync dir). Throws, granting nothing, if either fails.
   */
  reserve(count: number): NumberRange {
    this.assertOpen();
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`reserve: bad count ${count}`);
    const t = performance.now();
    if (this.lastReserveAt !== undefined) {
      const dt = t - this.lastReserveAt;
      if (dt < 1000) this.chunk = Math.min(this.chunk * 2, this.maxChunk);
      else if (dt > 60_000) this.chunk = Math.max(Math.floor(this.chunk / 2), this.minChunk);
    }
    const start = this.high;
    if (start > MAX_INO || count > MAX_INO - start + 1) throw new RangeError('inode numbers exhausted (2^53 - 1 reached)');
    // The wall-clock bound (see clockCeiling) only ever binds right after a clock recovery.
    let ceiling = clockCeiling(this.now());
    for (let waited = 0; start + count > ceiling; waited += 5) {
      if (waited >= 50) {
        throw new Error(
          `handlefs store: cannot grant ${count} numbers: high-water ${start} is ahead of the wall-clock bound ${ceiling} (allocating faster than 1M/s, or the clock stepped back)`,
        );
      }
      sleepSync(5);
      ceiling = clockCeiling(this.now());
    }
    const size = Math.max(count, Math.min(this.chunk, ceiling - start, MAX_INO + 1 - start));
    const end = start + size;
    // The records never go down, even after a failed attempt that may have half-landed (db
    // committed, hwm file not): write the highest value ever attempted.
    const record = Math.max(end, this.recordedHigh);
    this.recordedHigh = record;
    try {
      this.setHighStmt.run(record, metaChecksum(this.generation, record, this.startup.createdAt));
      writeHwm(this.hwmPath, { highWater: record, generation: this.generation });
    } catch (err) {
      const msg = `handlefs store: cannot make high-water mark ${record} durable in ${this.path}: ${describeCause(err)}`;
      this.failed(msg, err, 'no new numbers can be granted until it succeeds');
      throw new Error(msg, { cause: err });
    }
    this.recovered();
    this.witness?.granted(record, this.generation);
    this.high = end;
    this.lastReserveAt = t;
    this.counters.reserves++;
    return { start, end };
  }

  /** The stored rows (read and verified at open), with queued changes applied. */
  load(): Iterable<InodeRecord> {
    this.assertOpen();
    const rows = this.initialRows ?? readRows(this.db, this.kinds, this.scopes).rows;
    this.initialRows = undefined; // the caller owns them now; a later load() reads the database
    return this.commits.overlay(rows);
  }

  /**
   * Start-up helper: queues the deletion of every stored row for which `pred` is true and returns
   * how many (durable after the next flush()). Never lowers the high-water mark.
   */
  pruneWhere(pred: (record: InodeRecord) => boolean): number {
    this.assertOpen();
    const rows = this.commits.overlay(this.initialRows ?? readRows(this.db, this.kinds, this.scopes).rows);
    const kept: InodeRecord[] = [];
    for (const r of rows) {
      if (pred(r)) this.commits.set(r.ino, null);
      else kept.push(r);
    }
    if (this.initialRows) this.initialRows = kept;
    return rows.length - kept.length;
  }

  /**
   * Start-up helper: deletes, in one durable transaction, every stored row whose scope is not
   * `keep` (rows of another boot: their objects can no longer exist) and returns how many.
   * Cheaper than loading them to delete them one by one. Never lowers the high-water mark.
   */
  pruneOtherScopes(keep: string): number {
    this.assertOpen();
    let changes: number;
    try {
      changes = this.db.prepare('DELETE FROM inodes WHERE scope_id IS NOT ?').run(this.scopes.id(keep) ?? null).changes;
    } catch (err) {
      throw new Error(`handlefs store: cannot prune rows of other scopes in ${this.path}: ${describeCause(err)}`, { cause: err });
    }
    if (this.initialRows) this.initialRows = this.initialRows.filter((r) => r.scope === keep);
    return changes;
  }

  put(record: InodeRecord, stateOnly = false): void {
    this.assertOpen();
    const { ino, generation, kind, key, incarnation, scope } = record;
    if (!Number.isSafeInteger(ino) || ino < FIRST_DYNAMIC_INO || ino >= this.high) {
      throw new RangeError(`put: ino ${ino} was never granted (granted numbers are ${FIRST_DYNAMIC_INO} <= ino < ${this.high})`);
    }
    const state = record.state ?? null;
    if (typeof generation !== 'number' || typeof key !== 'number' || typeof incarnation !== 'number' || typeof kind !== 'string' || typeof scope !== 'string' || (state !== null && typeof state !== 'string')) {
      throw new TypeError(`put: malformed record for ino ${ino}`);
    }
    this.commits.set(ino, record, stateOnly);
  }

  /**
   * A row whose state alone changes (InodeStore.putState): committed with the next batch, but
   * whenDurable(ino) waits only for what it waited for before (a new row still queued or in flight).
   */
  putState(record: InodeRecord): void {
    this.put(record, true);
  }

  delete(ino: number): void {
    this.assertOpen();
    this.commits.set(ino, null);
  }

  /**
   * The flush the row of `ino` waits for: the next commit while it is queued, the one in flight
   * while that carries it, none once it is durable. A row committed long ago never waits for
   * another row's fsync.
   */
  whenDurable(ino: number): Promise<void> | undefined {
    return this.commits.isQueued(ino) ? this.flush() : this.commits.carrying(ino);
  }

  /**
   * Group commit. Every flush() of one event-loop turn shares one transaction, started from
   * setImmediate, i.e. after the poll phase has handled every request that was ready; while a
   * commit runs (on the commit thread), new flush() calls wait for the next one, which then
   * carries everything queued meanwhile. Resolves once the WAL holding the changes is fsync'd.
   * Rejects if the commit fails: the changes stay queued and go with the next flush(), so the
   * store works again once the disk does.
   */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`handlefs store: ${this.path} is closed`));
    return this.commits.flush();
  }

  /**
   * Logs a failed write: the first of an episode at error level, then at most one line per
   * 10 s (a full disk fails every commit and every reserve until it recovers).
   */
  private failed(msg: string, err: unknown, consequence: string): void {
    const t = this.now();
    if (!this.failing) {
      this.failing = { failures: 1, lastLogAt: t };
      this.log.error({ file: this.path, err: describeCause(err) }, `${msg}; ${consequence}`);
    } else if (++this.failing.failures && t - this.failing.lastLogAt >= 10_000) {
      this.failing.lastLogAt = t;
      this.log.error({ file: this.path, err: describeCause(err), failures: this.failing.failures }, `${msg} (${this.failing.failures} failed writes so far)`);
    }
  }

  private recovered(): void {
    if (!this.failing) return;
    this.log.warn({ file: this.path, failures: this.failing.failures }, `writes to ${this.path} succeed again after ${this.failing.failures} failures`);
    this.failing = undefined;
  }

  /**
   * Waits for a commit in flight, commits what is queued on this thread, records a clean
   * shutdown, closes the database and releases the lock. Throws if the last commit fails.
   */
  close(): void {
    if (this.closed) return;
    const error = this.commits.drain();
    this.closed = true;
    try {
      this.db.prepare('UPDATE runs SET closed_at = ? WHERE generation = ?').run(new Date(this.now()).toISOString(), this.generation);
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      this.log.warn({ file: this.path, err: describeCause(err) }, `could not record the clean shutdown in ${this.path}`);
    }
    try {
      this.db.close();
    } finally {
      this.lock.release();
    }
    if (error !== undefined) throw error;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`handlefs store: ${this.path} is closed`);
  }
}
