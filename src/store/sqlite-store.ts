/**
 * The durable InodeStore: one SQLite database in WAL mode (better-sqlite3), plus FILE.hwm (a second
 * high-water record outside the database) and FILE.lock (one daemon per state file). reserve()
 * is synchronous on the main connection; group commits run on a commit thread (commit-worker.ts).
 * docs/store.md describes the files, tables and policies for operators.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { FIRST_DYNAMIC_INO, MAX_INO } from '../core/numbers.js';
import type { InodeRecord, InodeStore, NumberRange } from '../core/store.js';
import {
  StoreDamageError,
  checkHeader,
  clockCeiling,
  clockGeneration,
  describeCause,
  hasQuarantinedCopies,
  metaChecksum,
  nameChecksum,
  plausibleHighWater,
  quarantine,
  readHwm,
  rowChecksum,
  writeHwm,
  fsyncDir,
  type HwmRead,
} from './damage.js';
import { CommitWorker, DELETE_ROW, INSERT_KIND, INSERT_SCOPE, UPSERT_ROW, replyError, type CommitReply, type EncodedBatch } from './commit-worker.js';
import { acquireStateLock, createPrivateFile, type StateLock } from './lock.js';
import { NotOurStateError, classifyStateFile, type StateFileKind } from './ownership.js';
import { StateWitness, type WitnessDirs } from './witness.js';
import { SchemaError, checkSchema, migrate, schemaInfo, verifySchema } from './schema.js';

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

interface MetaRow {
  generation: number;
  high_water: number;
  created_at: string;
  checksum: string;
}

interface Inspection {
  readonly state: 'missing' | 'empty' | 'ok' | 'older' | 'damaged';
  readonly damage?: string;
  /** Meta row with a valid checksum. */
  readonly meta?: MetaRow;
  /** Meta values read from a damaged file whose checksum failed (used only as a lower bound). */
  readonly unverified?: { highWater?: number; generation?: number };
  readonly rows?: InodeRecord[];
  readonly maxIno?: number;
}

type Deferred = { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function isDamageCode(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * A dictionary table (kinds, scopes): rows store small ids, the strings live here once. Ids are
 * assigned by the store (max + 1); names added inside a transaction are staged and become visible
 * only if it commits.
 */
class Names {
  private byName = new Map<string, number>();
  private byId: (string | undefined)[] = [];
  private readonly staged = new Map<string, number>();
  private nextId = 1;

  constructor(
    readonly table: 'kinds' | 'scopes',
    private readonly column: 'kind' | 'scope',
  ) {}

  /** (Re)reads the table, verifying checksums (throws StoreDamageError). */
  load(db: Database.Database): this {
    this.byName = new Map();
    this.byId = [];
    this.staged.clear();
    this.nextId = 1;
    for (const raw of db.prepare(`SELECT id, ${this.column}, checksum FROM ${this.table}`).raw(true).iterate() as IterableIterator<unknown[]>) {
      const [id, name, sum] = raw;
      if (typeof id !== 'number' || typeof name !== 'string' || nameChecksum(id, name) !== sum) {
        throw new StoreDamageError(`${this.table} row ${String(id)} checksum mismatch`);
      }
      this.byName.set(name, id);
      this.byId[id] = name;
      if (id >= this.nextId) this.nextId = id + 1;
    }
    return this;
  }

  name(id: unknown): string | undefined {
    return typeof id === 'number' ? this.byId[id] : undefined;
  }

  id(name: string): number | undefined {
    return this.byName.get(name);
  }

  /** The id of `name`; a new name gets the next id, staged until the batch carrying it commits. */
  stage(name: string): number {
    let id = this.byName.get(name) ?? this.staged.get(name);
    if (id === undefined) {
      id = this.nextId + this.staged.size;
      this.staged.set(name, id);
    }
    return id;
  }

  /** Rows to insert for the staged names. */
  stagedRows(out: EncodedBatch['names']): void {
    for (const [name, id] of this.staged) out.push([this.table, id, name, nameChecksum(id, name)]);
  }

  settle(committed: boolean): void {
    if (this.staged.size === 0) return;
    if (committed) {
      for (const [name, id] of this.staged) {
        this.byName.set(name, id);
        this.byId[id] = name;
      }
      this.nextId += this.staged.size;
    }
    this.staged.clear();
  }
}

const ROW_COLUMNS = 'SELECT ino, generation, kind_id, key, incarnation, scope_id, checksum FROM inodes';
/** Rows fetched per statement: all() in pages is ~15 % faster than iterate() and keeps the garbage bounded. */
const PAGE_ROWS = 16384;

/** Reads every row, verifying types, references and row checksums (throws StoreDamageError). */
function readRows(db: Database.Database, kinds: Names, scopes: Names): { rows: InodeRecord[]; maxIno: number } {
  const rows: InodeRecord[] = [];
  let maxIno = 0;
  let last = 0; // the last number read: the next page starts after it
  const first = db.prepare(`${ROW_COLUMNS} ORDER BY ino LIMIT ?`).raw(true);
  const next = db.prepare(`${ROW_COLUMNS} WHERE ino > ? ORDER BY ino LIMIT ?`).raw(true);
  for (let page = first.all(PAGE_ROWS) as unknown[][]; ; page = next.all(last, PAGE_ROWS) as unknown[][]) {
    for (const raw of page) {
      const ino = raw[0];
      const generation = raw[1];
      const key = raw[3];
      const incarnation = raw[4];
      const kind = kinds.name(raw[2]);
      const scope = scopes.name(raw[5]);
      if (
        typeof ino !== 'number' ||
        typeof generation !== 'number' ||
        typeof key !== 'number' ||
        typeof incarnation !== 'number' ||
        kind === undefined ||
        scope === undefined ||
        rowChecksum(ino, generation, raw[2] as number, key, incarnation, raw[5] as number) !== raw[6]
      ) {
        throw new StoreDamageError(`inodes row ${String(ino)} fails its checksum`);
      }
      // Pages continue after the last number read: it must be exact and increasing.
      if (!Number.isSafeInteger(ino) || (rows.length > 0 && ino <= last)) throw new StoreDamageError(`inodes row ${String(ino)} is out of range`);
      last = ino;
      if (ino > maxIno) maxIno = ino;
      rows.push({ ino, generation, kind, key, incarnation, scope });
    }
    if (page.length < PAGE_ROWS) break;
  }
  return { rows, maxIno };
}

/** Reads the meta row and checks its checksum; `unverified` carries what a bad row said. */
function readMeta(db: Database.Database): { meta?: MetaRow; unverified?: { highWater?: number; generation?: number }; problem?: string } {
  const row = db.prepare('SELECT generation, high_water, created_at, checksum FROM meta WHERE id = 1').get() as MetaRow | undefined;
  if (!row) return { problem: 'meta row missing' };
  if (
    typeof row.generation === 'number' &&
    typeof row.high_water === 'number' &&
    typeof row.created_at === 'string' &&
    metaChecksum(row.generation, row.high_water, row.created_at) === row.checksum
  ) {
    return { meta: row };
  }
  return {
    problem: 'meta row checksum mismatch',
    unverified: {
      ...(typeof row.high_water === 'number' ? { highWater: row.high_water } : {}),
      ...(typeof row.generation === 'number' ? { generation: row.generation } : {}),
    },
  };
}

/**
 * Opens the file read-only and decides whether it can be trusted. Damage is returned; anything
 * else (I/O errors, a foreign or newer file) is thrown. A read-only connection never checkpoints,
 * so inspecting a damaged file does not alter it.
 */
function inspect(file: string, integrityCheck: 'quick' | 'full' | 'off'): Inspection {
  const header = checkHeader(file);
  if (header === 'missing') return { state: 'missing' };
  if (header === 'empty') return { state: 'empty' };
  if (header !== 'ok') return { state: 'damaged', damage: header.damaged };

  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 1000 });
  } catch (err) {
    if (isDamageCode(err)) return { state: 'damaged', damage: describeCause(err) };
    throw err;
  }
  let metaRead: ReturnType<typeof readMeta> | undefined;
  try {
    db.pragma('cell_size_check = ON');
    const schema = checkSchema(schemaInfo(db), file);
    if (schema === 'uninitialised') return { state: 'empty' };
    if (integrityCheck !== 'off') {
      const pragma = integrityCheck === 'full' ? 'integrity_check(20)' : 'quick_check(20)';
      const result = db.pragma(pragma, { simple: false }) as Record<string, string>[];
      const lines = result.map((r) => Object.values(r)[0]);
      if (lines.length !== 1 || lines[0] !== 'ok') {
        throw new StoreDamageError(`${integrityCheck === 'full' ? 'integrity_check' : 'quick_check'}: ${lines.slice(0, 3).join('; ')}`);
      }
    }
    if (schema === 'current') {
      const schemaProblem = verifySchema(db);
      if (schemaProblem) throw new StoreDamageError(schemaProblem);
    }
    metaRead = readMeta(db);
    if (!metaRead.meta) throw new StoreDamageError(metaRead.problem ?? 'meta row unreadable');
    if (schema === 'older') return { state: 'older', meta: metaRead.meta };
    const { rows, maxIno } = readRows(db, new Names('kinds', 'kind').load(db), new Names('scopes', 'scope').load(db));
    return { state: 'ok', meta: metaRead.meta, rows, maxIno };
  } catch (err) {
    if (!(err instanceof StoreDamageError) && !isDamageCode(err)) throw err;
    const damage = err instanceof StoreDamageError ? err.reason : describeCause(err);
    // Salvage what can still be read, for the high-water decision only.
    if (!metaRead) {
      try {
        metaRead = readMeta(db);
      } catch {
        metaRead = undefined;
      }
    }
    let maxIno: number | undefined;
    try {
      const r = db.prepare('SELECT max(ino) AS m FROM inodes').get() as { m: unknown } | undefined;
      if (typeof r?.m === 'number') maxIno = r.m;
    } catch {
      maxIno = undefined;
    }
    return {
      state: 'damaged',
      damage,
      ...(metaRead?.meta ? { meta: metaRead.meta } : {}),
      ...(metaRead?.unverified ? { unverified: metaRead.unverified } : {}),
      ...(maxIno !== undefined ? { maxIno } : {}),
    };
  } finally {
    db.close();
  }
}

/** An Error whose single-line message names the state file and the cause. */
function openError(file: string, what: string, err: unknown): Error {
  return new Error(`handlefs store: ${what} ${file}: ${describeCause(err)}`, { cause: err });
}

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
function removeDirectories(created: readonly string[]): void {
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
function probeDirectory(file: string): string[] {
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

/** Throws NotOurStateError unless the file at `file` is missing or provably handlefs's. */
function refuseForeign(file: string): void {
  let kind: StateFileKind;
  try {
    kind = classifyStateFile(file);
  } catch (err) {
    throw openError(file, 'cannot read state file', err);
  }
  if (kind.kind === 'foreign') throw new NotOurStateError(file, kind.reason);
  // A WAL without its database is replayed by SQLite onto whatever is created next: it must be
  // ours to be moved aside.
  if (kind.kind === 'missing' && fs.existsSync(`${file}-wal`) && !fs.existsSync(`${file}.hwm`)) {
    throw new NotOurStateError(`${file}-wal`, `a write-ahead log without its database, and no ${file}.hwm says handlefs wrote it`);
  }
}

/**
 * Creates a new, complete state database at `file`: built under `FILE.init` (schema and
 * application_id written in one transaction), made durable, then renamed into place. So whatever
 * is found at FILE later either carries handlefs's application_id or is not handlefs's.
 */
function createDatabase(file: string): void {
  const tmp = `${file}.init`;
  const leftovers = [tmp, `${tmp}-journal`, `${tmp}-wal`, `${tmp}-shm`];
  if (fs.existsSync(tmp)) {
    // Only ever created here, under the lock: a leftover of a crash during a first start, if it
    // is empty or carries our application_id.
    const kind = classifyStateFile(tmp);
    if (kind.kind === 'foreign' && fs.statSync(tmp).size > 0) throw new NotOurStateError(tmp, kind.reason);
    for (const f of leftovers) fs.rmSync(f, { force: true });
  }
  createPrivateFile(tmp); // mode 0600; SQLite gives its -wal and -shm the same mode
  const db = new Database(tmp);
  try {
    migrate(db, tmp);
    db.pragma('journal_mode = WAL');
  } finally {
    db.close(); // checkpoints: everything is in the file itself
  }
  const fd = fs.openSync(tmp, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/**
 * Opens (creating, migrating or recovering as needed) the state file at `options.path`.
 * Throws StateLockedError if another store holds it, or an Error with a one-line message naming
 * the path and the cause if it cannot be made durable (read-only or full filesystem, ...).
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const file = path.resolve(options.path ?? DEFAULT_STATE_PATH);
  const log = options.logger;
  const now = options.now ?? Date.now;
  // Refuse a file that is not ours before creating anything (probe, lock, directory).
  refuseForeign(file);
  const createdDirs = probeDirectory(file);
  let lock: StateLock;
  try {
    lock = acquireStateLock(file, options.lockWaitMs !== undefined ? { waitMs: options.lockWaitMs } : {});
  } catch (err) {
    removeDirectories(createdDirs);
    throw err;
  }
  let db: Database.Database | undefined;
  try {
    refuseForeign(file); // again, now that no other store can be changing it
    const hwmFile = `${file}.hwm`;
    const hwm: HwmRead = readHwm(hwmFile);
    let insp: Inspection;
    try {
      insp = inspect(file, options.integrityCheck ?? 'quick');
    } catch (err) {
      if (err instanceof SchemaError) throw new Error(`handlefs store: ${err.message}`, { cause: err });
      throw openError(file, 'cannot read state file', err);
    }
    const nowMs = now();
    const hwmRec = hwm.state === 'ok' ? hwm.record : undefined;
    let origin: StoreStartup['origin'];
    let highWater: number;
    let generation: number;
    let highWaterFrom: string;
    let damage: string | undefined;
    let quarantined: string[] = [];
    let createdAt = new Date(nowMs).toISOString();

    if (insp.state === 'ok' || insp.state === 'older') {
      const meta = insp.meta!;
      origin = 'restart';
      createdAt = meta.created_at;
      highWater = meta.high_water;
      highWaterFrom = 'db';
      generation = meta.generation;
      if (hwmRec) {
        if (hwmRec.highWater > highWater || hwmRec.generation > generation) {
          log.warn(
            { file, db: { highWater, generation }, hwm: hwmRec },
            `state file ${file} is older than ${hwmFile} (restored from a copy?); continuing above both`,
          );
        }
        if (hwmRec.highWater > highWater) {
          highWater = hwmRec.highWater;
          highWaterFrom = 'hwm';
        }
        generation = Math.max(generation, hwmRec.generation);
      } else {
        log.warn({ file, hwmFile, hwm: hwm.state }, `high-water file ${hwmFile} is ${hwm.state === 'missing' ? 'missing' : `unreadable (${hwm.state === 'corrupt' ? hwm.reason : ''})`}; rewriting it from the state file`);
      }
      if (options.witness) {
        // Records outside the state directory: has this host issued more from this state than
        // the state remembers (restored from an older copy)?
        const seen = new StateWitness(options.witness, createdAt, log, now).read();
        const bound = seen.perBoot ?? seen.machine;
        if (bound) {
          const restored = bound.generation > generation || (seen.perBoot !== undefined && seen.perBoot.highWater > highWater);
          if (restored) {
            log.warn(
              { file, state: { highWater, generation }, record: bound, from: seen.perBoot ? 'boot' : 'machine' },
              `state file ${file} is older than what this host has issued from it (restored from a backup?): it says high-water ${highWater}, generation ${generation}; the ${seen.perBoot ? 'per-boot' : 'machine-wide'} record says ${bound.highWater}, generation ${bound.generation}; continuing above the record so that no number is issued twice`,
            );
          }
          if (bound.highWater > highWater) {
            highWater = bound.highWater;
            highWaterFrom = seen.perBoot ? 'boot record' : 'machine record';
          }
          generation = Math.max(generation, bound.generation);
        }
      }
      if (insp.maxIno !== undefined && insp.maxIno >= highWater) {
        log.warn({ file, maxIno: insp.maxIno, highWater }, `state file ${file} holds ino ${insp.maxIno} at or above its high-water mark ${highWater}; raising the mark`);
        highWater = insp.maxIno + 1;
      }
      generation += 1;
    } else {
      const evidence =
        insp.state !== 'missing' || hwm.state !== 'missing' || lock.existedBefore || hasQuarantinedCopies(file);
      if (insp.state === 'damaged') damage = insp.damage ?? 'damaged';
      else if (insp.state === 'empty' && evidence) damage = 'state file is empty (truncated or never initialised)';
      else if (insp.state === 'missing' && evidence) damage = 'state file is missing';

      if (insp.state === 'damaged' || insp.state === 'empty' || (insp.state === 'missing' && fs.existsSync(`${file}-wal`))) {
        // A WAL without its database must not be replayed onto a new one: move it aside too.
        try {
          quarantined = quarantine(file, nowMs);
        } catch (err) {
          throw openError(file, 'cannot move aside damaged state file', err);
        }
      }
      if (!evidence && (options.freshStart ?? 'first') === 'first') {
        origin = 'new';
        highWater = FIRST_DYNAMIC_INO;
        generation = 1;
        highWaterFrom = 'first';
      } else {
        origin = evidence ? 'recovered' : 'new';
        const verified: { hw: number; gen: number; from: string }[] = [];
        if (insp.meta) verified.push({ hw: insp.meta.high_water, gen: insp.meta.generation, from: 'db' });
        if (hwmRec) verified.push({ hw: hwmRec.highWater, gen: hwmRec.generation, from: 'hwm' });
        const lowerBounds: number[] = [];
        const unverifiedHigh = insp.unverified?.highWater;
        if (plausibleHighWater(unverifiedHigh, nowMs)) lowerBounds.push(unverifiedHigh);
        const afterMaxIno = insp.maxIno === undefined ? undefined : insp.maxIno + 1;
        if (plausibleHighWater(afterMaxIno, nowMs)) lowerBounds.push(afterMaxIno);
        if (verified.length > 0) {
          const best = verified.reduce((a, b) => (b.hw > a.hw ? b : a));
          highWater = Math.max(best.hw, ...lowerBounds, FIRST_DYNAMIC_INO);
          highWaterFrom = best.from;
          generation = Math.max(...verified.map((v) => v.gen)) + 1;
        } else {
          // Nothing verifiable survives: the wall clock bounds everything ever granted.
          highWater = Math.max(clockCeiling(nowMs), ...lowerBounds);
          highWaterFrom = 'clock';
          generation = clockGeneration(nowMs);
          const g = insp.unverified?.generation;
          if (typeof g === 'number' && Number.isSafeInteger(g) && g < clockGeneration(nowMs) * 2) generation = Math.max(generation, g + 1);
        }
      }
      if (damage !== undefined) {
        log.error(
          { file, damage, quarantined, highWater, generation, highWaterFrom, hwm: hwm.state },
          `state file ${file} damaged (${damage})${quarantined.length ? `; moved to ${quarantined[0]}` : ''}; mappings lost, restarting at high-water ${highWater} from ${highWaterFrom === 'clock' ? 'the wall-clock floor' : highWaterFrom === 'hwm' ? hwmFile : 'the damaged file'}, generation ${generation}`,
        );
      }
    }
    if (highWater > clockCeiling(nowMs)) {
      log.warn({ file, highWater, ceiling: clockCeiling(nowMs) }, 'the wall clock is behind the state high-water mark (clock stepped back?); new ranges will wait for it');
    }

    // Open for writing, migrate, and make the new generation and high-water mark durable.
    let migratedFrom: number | undefined;
    try {
      if (!fs.existsSync(file)) createDatabase(file);
      db = new Database(file, { timeout: options.busyTimeoutMs ?? 1000 });
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, WAL unavailable`);
      // better-sqlite3 is built with SQLITE_DEFAULT_WAL_SYNCHRONOUS=1: a database already in WAL
      // mode opens with synchronous=NORMAL, whose commits are not fsync'd. FULL fsyncs the WAL
      // in every commit before it returns (spec/store/fsync.spec.ts checks the system calls).
      db.pragma('synchronous = FULL');
      db.pragma('cell_size_check = ON');
      db.pragma('journal_size_limit = 67108864');
      const m = migrate(db, file);
      if (m.from !== m.to && m.from !== 0) migratedFrom = m.from;
      const meta = metaChecksum(generation, highWater, createdAt);
      const dbw = db;
      dbw
        .transaction(() => {
          dbw
            .prepare(
              `INSERT INTO meta (id, generation, high_water, created_at, checksum) VALUES (1, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET generation = excluded.generation, high_water = excluded.high_water,
                 created_at = excluded.created_at, checksum = excluded.checksum`,
            )
            .run(generation, highWater, createdAt, meta);
          dbw
            .prepare('INSERT OR REPLACE INTO runs (generation, opened_at, closed_at, pid, high_water, origin, note) VALUES (?, ?, NULL, ?, ?, ?, ?)')
            .run(generation, new Date(nowMs).toISOString(), process.pid, highWater, origin, damage ?? null);
        })
        .immediate();
    } catch (err) {
      if (err instanceof NotOurStateError) throw err;
      if (err instanceof SchemaError) throw new Error(`handlefs store: ${err.message}`, { cause: err });
      throw openError(file, 'cannot write state file', err);
    }
    try {
      writeHwm(hwmFile, { highWater, generation });
    } catch (err) {
      throw openError(file, `cannot write high-water file ${hwmFile} for`, err);
    }
    const witness = options.witness ? new StateWitness(options.witness, createdAt, log, now) : undefined;
    witness?.granted(highWater, generation);
    const kinds = new Names('kinds', 'kind').load(db);
    const scopes = new Names('scopes', 'scope').load(db);
    let rows = insp.rows;
    if (!rows) rows = origin === 'restart' ? readRows(db, kinds, scopes).rows : [];
    const startup: StoreStartup = {
      origin,
      generation,
      highWater,
      rows: rows.length,
      highWaterFrom,
      ...(damage !== undefined ? { damage } : {}),
      quarantined,
      ...(migratedFrom !== undefined ? { migratedFrom } : {}),
      createdAt,
    };
    if (origin !== 'recovered') {
      log.info({ file, ...startup }, `state file ${file} opened (${origin}): generation ${generation}, high-water ${highWater}, ${rows.length} mappings`);
    }
    return new SqliteStore({ file, db, lock, log, startup, rows, kinds, scopes, options, now, witness });
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing
    }
    if (err instanceof NotOurStateError || (err as Error).cause instanceof SchemaError) {
      // Refused: leave nothing behind (the lock file and directories this attempt created).
      lock.discard();
      removeDirectories(createdDirs);
    } else {
      lock.release();
    }
    throw err;
  }
}

interface StoreParts {
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

interface InFlight {
  readonly seq: number;
  readonly batch: Map<number, InodeRecord | null>;
  readonly deferred: Deferred;
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
  private readonly busyTimeoutMs: number;
  /** Pending changes by number: a row to write, or null to delete it. */
  private readonly queue = new Map<number, InodeRecord | null>();
  /** Waiters for the commit that will carry what is queued now. */
  private next: Deferred | undefined;
  private scheduled: NodeJS.Immediate | undefined;
  /** The commit the worker is running (at most one at a time). */
  private inFlight: InFlight | undefined;
  private useWorker: boolean;
  private worker: CommitWorker | undefined;
  private seq = 0;
  private initialRows: InodeRecord[] | undefined;
  private closed = false;
  private chunk: number;
  private readonly minChunk: number;
  private readonly maxChunk: number;
  private lastReserveAt: number | undefined;
  private failing: { failures: number; lastLogAt: number } | undefined;
  private readonly counters = { reserves: 0, commits: 0, failedCommits: 0, rowsWritten: 0, rowsDeleted: 0 };
  /** When the commit in flight started (one commit runs at a time). */
  private commitStartedAt = 0;
  /** Told how long each successful group commit took, from its start to its fsync (seconds): metrics. */
  onCommit: ((seconds: number) => void) | null = null;
  private readonly setHighStmt: Database.Statement;
  private readonly witness: StateWitness | undefined;
  private readonly commitOnMainThread: (batch: EncodedBatch) => void;

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
    this.busyTimeoutMs = options.busyTimeoutMs ?? 1000;
    this.useWorker = options.commitThread ?? true;
    this.minChunk = Math.max(1, Math.floor(options.minChunk ?? DEFAULT_MIN_CHUNK));
    this.maxChunk = Math.max(this.minChunk, Math.floor(options.maxChunk ?? DEFAULT_MAX_CHUNK));
    this.chunk = this.minChunk;
    this.setHighStmt = db.prepare('UPDATE meta SET high_water = ?, checksum = ? WHERE id = 1');
    const insert = { kinds: db.prepare(INSERT_KIND), scopes: db.prepare(INSERT_SCOPE) };
    const upsert = db.prepare(UPSERT_ROW);
    const remove = db.prepare(DELETE_ROW);
    const tx = db.transaction((b: EncodedBatch) => {
      for (const [table, id, name, sum] of b.names) insert[table].run(id, name, sum);
      const u = b.upserts;
      for (let i = 0; i < u.length; i += 7) upsert.run(u[i], u[i + 1], u[i + 2], u[i + 3], u[i + 4], u[i + 5], u[i + 6]);
      for (const ino of b.deletes) remove.run(ino);
    });
    this.commitOnMainThread = (b) => tx.immediate(b);
  }

  get highWater(): number {
    return this.high;
  }

  /** True while changes are queued or being committed. */
  get dirty(): boolean {
    return this.queue.size > 0 || this.inFlight !== undefined;
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
    return this.withQueue(rows);
  }

  /**
   * Start-up helper: queues the deletion of every stored row for which `pred` is true and returns
   * how many (durable after the next flush()). Never lowers the high-water mark.
   */
  pruneWhere(pred: (record: InodeRecord) => boolean): number {
    this.assertOpen();
    const rows = this.withQueue(this.initialRows ?? readRows(this.db, this.kinds, this.scopes).rows);
    const kept: InodeRecord[] = [];
    for (const r of rows) {
      if (pred(r)) this.queue.set(r.ino, null);
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

  private withQueue(rows: InodeRecord[]): InodeRecord[] {
    if (this.queue.size === 0 && this.inFlight === undefined) return rows;
    const byIno = new Map<number, InodeRecord>();
    for (const r of rows) byIno.set(r.ino, r);
    for (const changes of [this.inFlight?.batch, this.queue]) {
      for (const [ino, r] of changes ?? []) {
        if (r === null) byIno.delete(ino);
        else byIno.set(ino, r);
      }
    }
    return [...byIno.values()];
  }

  put(record: InodeRecord): void {
    this.assertOpen();
    const { ino, generation, kind, key, incarnation, scope } = record;
    if (!Number.isSafeInteger(ino) || ino < FIRST_DYNAMIC_INO || ino >= this.high) {
      throw new RangeError(`put: ino ${ino} was never granted (granted numbers are ${FIRST_DYNAMIC_INO} <= ino < ${this.high})`);
    }
    if (typeof generation !== 'number' || typeof key !== 'number' || typeof incarnation !== 'number' || typeof kind !== 'string' || typeof scope !== 'string') {
      throw new TypeError(`put: malformed record for ino ${ino}`);
    }
    this.queue.set(ino, record);
  }

  delete(ino: number): void {
    this.assertOpen();
    this.queue.set(ino, null);
  }

  /**
   * The flush the row of `ino` waits for: the next commit while it is queued, the one in flight
   * while that carries it, none once it is durable. A row committed long ago never waits for
   * another row's fsync.
   */
  whenDurable(ino: number): Promise<void> | undefined {
    if (this.queue.has(ino)) return this.flush();
    const f = this.inFlight;
    if (f !== undefined && f.batch.has(ino)) return f.deferred.promise;
    return undefined;
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
    if (this.queue.size === 0) return this.inFlight ? this.inFlight.deferred.promise : Promise.resolve();
    if (!this.next) {
      this.next = deferred();
      this.schedule();
    }
    return this.next.promise;
  }

  private schedule(): void {
    if (this.scheduled === undefined && this.inFlight === undefined) this.scheduled = setImmediate(() => this.startCommit());
  }

  private startCommit(): void {
    this.scheduled = undefined;
    const d = this.next;
    this.next = undefined;
    if (!d) return;
    if (this.queue.size === 0) {
      d.resolve();
      return;
    }
    const batch = new Map(this.queue);
    this.queue.clear();
    const encoded = this.encode(batch);
    this.commitStartedAt = performance.now();
    if (this.useWorker && !this.worker) {
      try {
        this.worker = new CommitWorker(this.path, this.busyTimeoutMs, (r) => this.onReply(r), (err) => this.onWorkerFailure(err));
      } catch (err) {
        this.useWorker = false;
        this.log.warn({ file: this.path, err: describeCause(err) }, `cannot start the commit thread (${describeCause(err)}); committing on the main thread`);
      }
    }
    if (this.worker) {
      const seq = ++this.seq;
      this.inFlight = { seq, batch, deferred: d };
      this.worker.send(seq, encoded);
      return;
    }
    try {
      this.commitOnMainThread(encoded);
    } catch (err) {
      d.reject(this.commitFailed(batch, err));
      return;
    }
    this.committed(batch);
    d.resolve();
  }

  private encode(batch: Map<number, InodeRecord | null>): EncodedBatch {
    const upserts: number[] = [];
    const deletes: number[] = [];
    for (const [ino, r] of batch) {
      if (r === null) {
        deletes.push(ino);
        continue;
      }
      const kindId = this.kinds.stage(r.kind);
      const scopeId = this.scopes.stage(r.scope);
      upserts.push(ino, r.generation, kindId, r.key, r.incarnation, scopeId, rowChecksum(ino, r.generation, kindId, r.key, r.incarnation, scopeId));
    }
    const names: EncodedBatch['names'] = [];
    this.kinds.stagedRows(names);
    this.scopes.stagedRows(names);
    return { names, upserts, deletes };
  }

  private onReply(r: CommitReply): void {
    const f = this.inFlight;
    if (!f || f.seq !== r.seq) return;
    this.inFlight = undefined;
    if (r.ok) {
      this.committed(f.batch);
      f.deferred.resolve();
    } else {
      f.deferred.reject(this.commitFailed(f.batch, replyError(r)));
    }
    if (this.next) this.schedule();
  }

  /** The commit thread died: whatever it was doing may or may not have committed. */
  private onWorkerFailure(err: Error): void {
    this.worker = undefined;
    this.useWorker = false;
    this.log.error({ file: this.path, err: describeCause(err) }, `commit thread failed (${describeCause(err)}); committing on the main thread from now on`);
    const f = this.inFlight;
    this.inFlight = undefined;
    if (f) f.deferred.reject(this.outcomeUnknown(f.batch, err));
    if (this.next) this.schedule();
  }

  /**
   * A batch whose commit may or may not have landed: re-read the dictionaries from the database
   * (ids the batch may have created) and queue its changes again (rewriting a row is idempotent).
   */
  private outcomeUnknown(batch: Map<number, InodeRecord | null>, err: unknown): Error {
    this.kinds.settle(false);
    this.scopes.settle(false);
    try {
      this.kinds.load(this.db);
      this.scopes.load(this.db);
    } catch (loadErr) {
      this.log.error({ file: this.path, err: describeCause(loadErr) }, `cannot re-read the dictionaries of ${this.path}`);
    }
    for (const [ino, r] of batch) if (!this.queue.has(ino)) this.queue.set(ino, r);
    return new Error(`handlefs store: commit of ${batch.size} changes to ${this.path} did not complete: ${describeCause(err)}`, { cause: err });
  }

  private committed(batch: Map<number, InodeRecord | null>): void {
    this.kinds.settle(true);
    this.scopes.settle(true);
    this.recovered();
    this.counters.commits++;
    if (this.onCommit !== null && this.commitStartedAt > 0) this.onCommit((performance.now() - this.commitStartedAt) / 1000);
    this.commitStartedAt = 0;
    for (const r of batch.values()) {
      if (r === null) this.counters.rowsDeleted++;
      else this.counters.rowsWritten++;
    }
  }

  /** A commit failed and was rolled back: its changes go back in the queue. Returns the error to reject with. */
  private commitFailed(batch: Map<number, InodeRecord | null>, err: unknown): Error {
    this.kinds.settle(false);
    this.scopes.settle(false);
    this.counters.failedCommits++;
    for (const [ino, r] of batch) if (!this.queue.has(ino)) this.queue.set(ino, r);
    const msg = `handlefs store: commit of ${batch.size} changes to ${this.path} failed: ${describeCause(err)}`;
    this.failed(msg, err, 'new numbers stay unrevealed until a commit succeeds');
    return new Error(msg, { cause: err });
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
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const waiters: Deferred[] = [];
    const f = this.inFlight;
    this.inFlight = undefined;
    if (f && this.worker) {
      const ok = this.worker.waitSync(f.seq, 30_000);
      if (ok === true) {
        this.committed(f.batch);
        f.deferred.resolve();
      } else {
        if (ok === undefined) this.outcomeUnknown(f.batch, new Error('commit thread did not finish within 30 s'));
        else this.commitFailed(f.batch, new Error('commit failed on the commit thread'));
        waiters.push(f.deferred);
      }
    }
    if (this.worker) {
      if (!this.worker.close()) this.log.warn({ file: this.path }, 'the commit thread did not close its connection within 5 s');
      this.worker = undefined;
    }
    if (this.next) waiters.push(this.next);
    this.next = undefined;
    let error: unknown;
    if (this.queue.size > 0) {
      const batch = new Map(this.queue);
      this.queue.clear();
      try {
        this.commitOnMainThread(this.encode(batch));
        this.committed(batch);
      } catch (err) {
        error = this.commitFailed(batch, err);
      }
    }
    for (const d of waiters) {
      if (error === undefined) d.resolve();
      else d.reject(error);
    }
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
