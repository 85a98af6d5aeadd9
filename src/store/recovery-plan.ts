/**
 * Start-up recovery as a decision over evidence, with no I/O: given what was found next to the
 * state (the database's inspection, FILE.hwm, the witness records, companion files, the lock
 * file's history, the wall clock), which file is refused, what is moved aside, where numbering
 * continues and under which generation. This is where "never reused" is decided: the high-water
 * mark of the plan is above every number any earlier run may have revealed, by the best evidence
 * that survives (docs/store.md, "Damage and recovery"). openSqliteStore() gathers the evidence and
 * carries the plan out.
 */
import { FIRST_DYNAMIC_INO } from '../core/numbers.js';
import { clockCeiling, clockGeneration, plausibleHighWater, type HwmRead } from './damage.js';
import { NotOurStateError, type StateFileKind } from './ownership.js';
import type { Inspection } from './state-inspection.js';
import type { WitnessReading } from './witness.js';

/** What the opener found, under the lock, before anything was written. */
export interface StartupEvidence {
  /** The state file's absolute path (for messages; the plan opens nothing). */
  readonly file: string;
  /** The database file as inspected read-only (its rows are not looked at here). */
  readonly database: Omit<Inspection, 'rows'>;
  readonly hwm: HwmRead;
  /** The records outside the state directory (witness.ts); read only for an intact database. */
  readonly witness?: WitnessReading;
  /** FILE-wal exists. */
  readonly walExists: boolean;
  /** FILE.lock existed before this open: some earlier run used this path. */
  readonly lockExistedBefore: boolean;
  /** An earlier recovery left FILE.corrupt-* copies. */
  readonly quarantinedCopies: boolean;
  /** Where a state with no trace of an earlier one starts (SqliteStoreOptions.freshStart). */
  readonly freshStart: 'first' | 'clock';
  readonly nowMs: number;
}

/** A warning the opener logs: structured fields and one line of text. */
export interface PlanWarning {
  readonly fields: Readonly<Record<string, unknown>>;
  readonly msg: string;
}

export interface StartupPlan {
  /** 'new': no earlier state; 'restart': state intact; 'recovered': damaged or missing state. */
  readonly origin: 'new' | 'restart' | 'recovered';
  /** Every number granted from now on is at or above this. */
  readonly highWater: number;
  /** Which evidence set it: 'db', 'hwm', 'boot record', 'machine record', 'clock', 'first'. */
  readonly highWaterFrom: string;
  /** This run's generation: above every generation recorded. */
  readonly generation: number;
  /** The state's creation time: the intact database's, else now. */
  readonly createdAt: string;
  /** Why the state was not trusted (origin 'recovered'). */
  readonly damage?: string;
  /** Move the database file (and its -wal/-shm) aside before creating a new one. */
  readonly moveAside: boolean;
  /** Warnings to log (level warn), in order, after the damage line if any. */
  readonly warnings: readonly PlanWarning[];
}

/**
 * Whether the file at the state path may be touched at all: a NotOurStateError saying why not, or
 * undefined. Only what is provably handlefs's is ever opened, moved aside or overwritten.
 */
export function refusal(file: string, kind: StateFileKind, companions: { wal: boolean; hwm: boolean }): NotOurStateError | undefined {
  if (kind.kind === 'foreign') return new NotOurStateError(file, kind.reason);
  // A WAL without its database is replayed by SQLite onto whatever is created next: it must be
  // ours to be moved aside.
  if (kind.kind === 'missing' && companions.wal && !companions.hwm) {
    return new NotOurStateError(`${file}-wal`, `a write-ahead log without its database, and no ${file}.hwm says handlefs wrote it`);
  }
  return undefined;
}

/** Decides the start-up from the evidence (see StartupPlan). */
export function planStartup(e: StartupEvidence): StartupPlan {
  const plan = e.database.state === 'ok' || e.database.state === 'older' ? planRestart(e) : planRecovery(e);
  const ceiling = clockCeiling(e.nowMs);
  if (plan.highWater <= ceiling) return plan;
  const behind: PlanWarning = {
    fields: { file: e.file, highWater: plan.highWater, ceiling },
    msg: 'the wall clock is behind the state high-water mark (clock stepped back?); new ranges will wait for it',
  };
  return { ...plan, warnings: [...plan.warnings, behind] };
}

/** The database is intact: continue above it, and above any other record that says more. */
function planRestart(e: StartupEvidence): StartupPlan {
  const { file, database } = e;
  const hwmFile = `${file}.hwm`;
  const meta = database.meta!;
  const warnings: PlanWarning[] = [];
  let highWater = meta.high_water;
  let highWaterFrom = 'db';
  let generation = meta.generation;
  if (e.hwm.state === 'ok') {
    const hwmRec = e.hwm.record;
    if (hwmRec.highWater > highWater || hwmRec.generation > generation) {
      warnings.push({
        fields: { file, db: { highWater, generation }, hwm: hwmRec },
        msg: `state file ${file} is older than ${hwmFile} (restored from a copy?); continuing above both`,
      });
    }
    if (hwmRec.highWater > highWater) {
      highWater = hwmRec.highWater;
      highWaterFrom = 'hwm';
    }
    generation = Math.max(generation, hwmRec.generation);
  } else {
    warnings.push({
      fields: { file, hwmFile, hwm: e.hwm.state },
      msg: `high-water file ${hwmFile} is ${e.hwm.state === 'missing' ? 'missing' : `unreadable (${e.hwm.reason})`}; rewriting it from the state file`,
    });
  }
  // Records outside the state directory: has this host issued more from this state than the
  // state remembers (restored from an older copy)?
  const seen = e.witness;
  const bound = seen?.perBoot ?? seen?.machine;
  if (seen && bound) {
    const restored = bound.generation > generation || (seen.perBoot !== undefined && seen.perBoot.highWater > highWater);
    if (restored) {
      warnings.push({
        fields: { file, state: { highWater, generation }, record: bound, from: seen.perBoot ? 'boot' : 'machine' },
        msg: `state file ${file} is older than what this host has issued from it (restored from a backup?): it says high-water ${highWater}, generation ${generation}; the ${seen.perBoot ? 'per-boot' : 'machine-wide'} record says ${bound.highWater}, generation ${bound.generation}; continuing above the record so that no number is issued twice`,
      });
    }
    if (bound.highWater > highWater) {
      highWater = bound.highWater;
      highWaterFrom = seen.perBoot ? 'boot record' : 'machine record';
    }
    generation = Math.max(generation, bound.generation);
  }
  if (database.maxIno !== undefined && database.maxIno >= highWater) {
    warnings.push({
      fields: { file, maxIno: database.maxIno, highWater },
      msg: `state file ${file} holds ino ${database.maxIno} at or above its high-water mark ${highWater}; raising the mark`,
    });
    highWater = database.maxIno + 1;
  }
  return { origin: 'restart', highWater, highWaterFrom, generation: generation + 1, createdAt: meta.created_at, moveAside: false, warnings };
}

/** No intact database: a new state, or a recovery above whatever bounds survive. */
function planRecovery(e: StartupEvidence): StartupPlan {
  const { database, nowMs } = e;
  const createdAt = new Date(nowMs).toISOString();
  const evidence = database.state !== 'missing' || e.hwm.state !== 'missing' || e.lockExistedBefore || e.quarantinedCopies;
  let damage: string | undefined;
  if (database.state === 'damaged') damage = database.damage ?? 'damaged';
  else if (database.state === 'empty' && evidence) damage = 'state file is empty (truncated or never initialised)';
  else if (database.state === 'missing' && evidence) damage = 'state file is missing';
  // A WAL without its database must not be replayed onto a new one: it is moved aside too.
  const moveAside = database.state === 'damaged' || database.state === 'empty' || (database.state === 'missing' && e.walExists);
  const base = { createdAt, moveAside, warnings: [], ...(damage !== undefined ? { damage } : {}) };

  if (!evidence && e.freshStart === 'first') {
    return { ...base, origin: 'new', highWater: FIRST_DYNAMIC_INO, highWaterFrom: 'first', generation: 1 };
  }
  const origin = evidence ? 'recovered' : 'new';
  const verified: { hw: number; gen: number; from: string }[] = [];
  if (database.meta) verified.push({ hw: database.meta.high_water, gen: database.meta.generation, from: 'db' });
  if (e.hwm.state === 'ok') verified.push({ hw: e.hwm.record.highWater, gen: e.hwm.record.generation, from: 'hwm' });
  // What damaged storage still says counts only as a lower bound, and only if it could be real.
  const lowerBounds: number[] = [];
  const unverifiedHigh = database.unverified?.highWater;
  if (plausibleHighWater(unverifiedHigh, nowMs)) lowerBounds.push(unverifiedHigh);
  const afterMaxIno = database.maxIno === undefined ? undefined : database.maxIno + 1;
  if (plausibleHighWater(afterMaxIno, nowMs)) lowerBounds.push(afterMaxIno);
  if (verified.length > 0) {
    const best = verified.reduce((a, b) => (b.hw > a.hw ? b : a));
    return {
      ...base,
      origin,
      highWater: Math.max(best.hw, ...lowerBounds, FIRST_DYNAMIC_INO),
      highWaterFrom: best.from,
      generation: Math.max(...verified.map((v) => v.gen)) + 1,
    };
  }
  // Nothing verifiable survives: the wall clock bounds everything ever granted.
  let generation = clockGeneration(nowMs);
  const g = database.unverified?.generation;
  if (typeof g === 'number' && Number.isSafeInteger(g) && g < clockGeneration(nowMs) * 2) generation = Math.max(generation, g + 1);
  return { ...base, origin, highWater: Math.max(clockCeiling(nowMs), ...lowerBounds), highWaterFrom: 'clock', generation };
}

/** The one error line of a recovery from damage: what was wrong, where it went, where numbering continues. */
export function damageMessage(file: string, plan: StartupPlan, quarantined: readonly string[]): string {
  const from = plan.highWaterFrom === 'clock' ? 'the wall-clock floor' : plan.highWaterFrom === 'hwm' ? `${file}.hwm` : 'the damaged file';
  return `state file ${file} damaged (${plan.damage ?? 'damaged'})${quarantined.length ? `; moved to ${quarantined[0]}` : ''}; mappings lost, restarting at high-water ${plan.highWater} from ${from}, generation ${plan.generation}`;
}
