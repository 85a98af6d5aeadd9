/**
 * Looks at the state file read-only and reports what it found: the evidence the start-up plan
 * (recovery-plan.ts) decides from. A read-only connection never checkpoints, so inspecting a
 * damaged file does not alter it.
 */
import Database from 'better-sqlite3';
import type { InodeRecord } from '../core/store.js';
import { StoreDamageError, checkHeader, describeCause } from './damage.js';
import { loadNames } from './names.js';
import { readMaxIno, readMeta, readRows, type MetaRow, type UnverifiedMeta } from './row-reader.js';
import { checkSchema, schemaInfo, verifySchema } from './schema.js';

export interface Inspection {
  readonly state: 'missing' | 'empty' | 'ok' | 'older' | 'damaged';
  readonly damage?: string;
  /** Meta row with a valid checksum. */
  readonly meta?: MetaRow;
  /** Meta values read from a damaged file whose checksum failed (used only as a lower bound). */
  readonly unverified?: UnverifiedMeta;
  /** Every row, verified (state 'ok' only). */
  readonly rows?: InodeRecord[];
  readonly maxIno?: number;
}

/** SQLite's own verdicts of damage (as opposed to I/O errors, locks, ...). */
function isDamageCode(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

/**
 * Opens the file read-only and decides whether it can be trusted. Damage is returned; anything
 * else (I/O errors, a foreign or newer file) is thrown.
 */
export function inspect(file: string, integrityCheck: 'quick' | 'full' | 'off'): Inspection {
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
        // One result row may hold several lines: the damage is said on one line.
        const said = lines.slice(0, 3).join('; ').replace(/\s*\n\s*/g, '; ');
        throw new StoreDamageError(`${integrityCheck === 'full' ? 'integrity_check' : 'quick_check'}: ${said}`);
      }
    }
    if (schema === 'current') {
      const schemaProblem = verifySchema(db);
      if (schemaProblem) throw new StoreDamageError(schemaProblem);
    }
    metaRead = readMeta(db);
    if (!metaRead.meta) throw new StoreDamageError(metaRead.problem ?? 'meta row unreadable');
    if (schema === 'older') return { state: 'older', meta: metaRead.meta };
    const { kinds, scopes } = loadNames(db);
    const { rows, maxIno } = readRows(db, kinds, scopes);
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
      maxIno = readMaxIno(db);
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
