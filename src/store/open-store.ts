/**
 * Opening the state: refuse what is not ours, prepare the directory, take the lock, gather the
 * evidence (state-inspection.ts, FILE.hwm, witness records, companion files), decide from it
 * (recovery-plan.ts), and carry the plan out: move aside, create or migrate, make the new
 * generation and high-water mark durable. Hands the open database to SqliteStore.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { describeCause, fsyncDir, hasQuarantinedCopies, metaChecksum, quarantine, readHwm, writeHwm } from './damage.js';
import { acquireStateLock, createPrivateFile, type StateLock } from './lock.js';
import { loadNames } from './names.js';
import { NotOurStateError, classifyStateFile, type StateFileKind } from './ownership.js';
import { damageMessage, planStartup, refusal } from './recovery-plan.js';
import { readRows } from './row-reader.js';
import { SchemaError, migrate } from './schema.js';
import { DEFAULT_STATE_PATH, SqliteStore, type SqliteStoreOptions, type StoreStartup } from './sqlite-store.js';
import { probeDirectory, removeDirectories } from './state-directory.js';
import { inspect, type Inspection } from './state-inspection.js';
import { StateWitness } from './witness.js';

/** An Error whose single-line message names the state file and the cause. */
function openError(file: string, what: string, err: unknown): Error {
  return new Error(`handlefs store: ${what} ${file}: ${describeCause(err)}`, { cause: err });
}

/** Throws NotOurStateError unless the file at `file` is missing or provably handlefs's. */
function refuseForeign(file: string): void {
  let kind: StateFileKind;
  try {
    kind = classifyStateFile(file);
  } catch (err) {
    throw openError(file, 'cannot read state file', err);
  }
  const refused = refusal(file, kind, { wal: fs.existsSync(`${file}-wal`), hwm: fs.existsSync(`${file}.hwm`) });
  if (refused) throw refused;
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
    const hwm = readHwm(hwmFile);
    let insp: Inspection;
    try {
      insp = inspect(file, options.integrityCheck ?? 'quick');
    } catch (err) {
      if (err instanceof SchemaError) throw new Error(`handlefs store: ${err.message}`, { cause: err });
      throw openError(file, 'cannot read state file', err);
    }
    const nowMs = now();
    // The records outside the state directory are found by the state's creation time.
    const intact = insp.state === 'ok' || insp.state === 'older';
    const witnessReading = intact && options.witness ? new StateWitness(options.witness, insp.meta!.created_at, log, now).read() : undefined;
    const plan = planStartup({
      file,
      database: insp,
      hwm,
      ...(witnessReading ? { witness: witnessReading } : {}),
      walExists: fs.existsSync(`${file}-wal`),
      lockExistedBefore: lock.existedBefore,
      quarantinedCopies: hasQuarantinedCopies(file),
      freshStart: options.freshStart ?? 'first',
      nowMs,
    });
    const { origin, highWater, generation, highWaterFrom, createdAt, damage } = plan;
    let quarantined: string[] = [];
    if (plan.moveAside) {
      try {
        quarantined = quarantine(file, nowMs);
      } catch (err) {
        throw openError(file, 'cannot move aside damaged state file', err);
      }
    }
    if (damage !== undefined) {
      log.error({ file, damage, quarantined, highWater, generation, highWaterFrom, hwm: hwm.state }, damageMessage(file, plan, quarantined));
    }
    for (const w of plan.warnings) log.warn(w.fields, w.msg);

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
    const { kinds, scopes } = loadNames(db);
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
