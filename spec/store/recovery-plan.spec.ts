/**
 * The start-up plan, one row per situation the opener can find. The plan is pure: these rows are
 * the whole decision of where numbering continues after every kind of damage, without a disk.
 * The on-disk specs (damage, ownership, witness) show that the opener gathers this evidence.
 */
import test from 'ava';
import { FIRST_DYNAMIC_INO } from '../../src/core/numbers.js';
import { clockCeiling, clockGeneration, type HwmRead } from '../../src/store/damage.js';
import { damageMessage, planStartup, refusal, type StartupEvidence, type StartupPlan } from '../../src/store/recovery-plan.js';
import type { MetaRow } from '../../src/store/row-reader.js';

const FILE = '/var/lib/handlefs/state.db';
const NOW = Date.UTC(2026, 0, 1);
const CREATED = '2025-06-01T00:00:00.000Z';

function meta(highWater: number, generation: number): MetaRow {
  return { high_water: highWater, generation, created_at: CREATED, checksum: 'verified' };
}
function hwm(highWater: number, generation: number): HwmRead {
  return { state: 'ok', record: { highWater, generation } };
}
const NO_HWM: HwmRead = { state: 'missing' };

function evidence(e: Partial<StartupEvidence>): StartupEvidence {
  return {
    file: FILE,
    database: { state: 'missing' },
    hwm: NO_HWM,
    walExists: false,
    lockExistedBefore: false,
    quarantinedCopies: false,
    freshStart: 'first',
    nowMs: NOW,
    ...e,
  };
}

interface Row {
  readonly name: string;
  readonly evidence: Partial<StartupEvidence>;
  readonly plan: Partial<StartupPlan>;
  /** One pattern per warning, in order (none when empty). */
  readonly warnings?: readonly RegExp[];
}

const rows: Row[] = [
  // ---- nothing found -----------------------------------------------------------------------
  {
    name: 'nothing at all: a new state at FIRST_DYNAMIC_INO, generation 1',
    evidence: {},
    plan: { origin: 'new', highWater: FIRST_DYNAMIC_INO, highWaterFrom: 'first', generation: 1, moveAside: false, damage: undefined, createdAt: new Date(NOW).toISOString() },
  },
  {
    name: 'nothing at all, freshStart "clock": a new state at the wall-clock floor',
    evidence: { freshStart: 'clock' },
    plan: { origin: 'new', highWater: clockCeiling(NOW), highWaterFrom: 'clock', generation: clockGeneration(NOW), damage: undefined },
  },
  // ---- intact database -----------------------------------------------------------------------
  {
    name: 'intact database and its hwm file agree: restart above both',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7), maxIno: 49_000 }, hwm: hwm(50_000, 7) },
    plan: { origin: 'restart', highWater: 50_000, highWaterFrom: 'db', generation: 8, moveAside: false, createdAt: CREATED },
  },
  {
    name: 'an older schema is a restart like a current one (migrated after the plan)',
    evidence: { database: { state: 'older', meta: meta(50_000, 7) }, hwm: hwm(50_000, 7) },
    plan: { origin: 'restart', highWater: 50_000, highWaterFrom: 'db', generation: 8 },
  },
  {
    name: 'missing hwm file next to an intact database: the database decides, the file is rewritten',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7) } },
    plan: { origin: 'restart', highWater: 50_000, highWaterFrom: 'db', generation: 8 },
    warnings: [/high-water file .*\.hwm is missing; rewriting it from the state file/],
  },
  {
    name: 'corrupt hwm file next to an intact database: the database decides',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7) }, hwm: { state: 'corrupt', reason: 'checksum mismatch' } },
    plan: { origin: 'restart', highWater: 50_000, highWaterFrom: 'db', generation: 8 },
    warnings: [/is unreadable \(checksum mismatch\)/],
  },
  {
    name: 'hwm file ahead of the database (restored from a copy): continue above the hwm',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7) }, hwm: hwm(55_000, 10) },
    plan: { origin: 'restart', highWater: 55_000, highWaterFrom: 'hwm', generation: 11 },
    warnings: [/is older than .*\.hwm \(restored from a copy\?\)/],
  },
  {
    name: 'hwm file behind the database (a torn hwm update): the database decides, silently',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7) }, hwm: hwm(40_000, 6) },
    plan: { origin: 'restart', highWater: 50_000, highWaterFrom: 'db', generation: 8 },
  },
  {
    name: 'only the hwm generation is ahead: generation above it, numbers from the database',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7) }, hwm: hwm(50_000, 9) },
    plan: { origin: 'restart', highWater: 50_000, highWaterFrom: 'db', generation: 10 },
    warnings: [/is older than/],
  },
  {
    name: 'a row at or above the high-water mark (torn table): the mark is raised above it',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7), maxIno: 50_000 }, hwm: hwm(50_000, 7) },
    plan: { origin: 'restart', highWater: 50_001, highWaterFrom: 'db', generation: 8 },
    warnings: [/holds ino 50000 at or above its high-water mark 50000; raising the mark/],
  },
  {
    name: 'per-boot record ahead of database and hwm (restored within this boot): continue above the record',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7) }, hwm: hwm(50_000, 7), witness: { perBoot: { highWater: 60_000, generation: 9 }, machine: { highWater: 70_000, generation: 9 } } },
    plan: { origin: 'restart', highWater: 60_000, highWaterFrom: 'boot record', generation: 10 },
    warnings: [/restored from a backup\?.*the per-boot record says 60000, generation 9/],
  },
  {
    name: 'per-boot record equal to the state (ordinary restart): no warning',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7) }, hwm: hwm(50_000, 7), witness: { perBoot: { highWater: 50_000, generation: 7 }, machine: { highWater: 70_000, generation: 7 } } },
    plan: { origin: 'restart', highWater: 50_000, highWaterFrom: 'db', generation: 8 },
  },
  {
    name: 'first start of a boot: the machine-wide bound is above the state, same generation: continue above it, no warning',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7) }, hwm: hwm(50_000, 7), witness: { machine: { highWater: 50_000 + 2 ** 22, generation: 7 } } },
    plan: { origin: 'restart', highWater: 50_000 + 2 ** 22, highWaterFrom: 'machine record', generation: 8 },
  },
  {
    name: 'machine-wide record of a later generation (restored across a reboot): continue above it',
    evidence: { database: { state: 'ok', meta: meta(50_000, 7) }, hwm: hwm(50_000, 7), witness: { machine: { highWater: 90_000, generation: 12 } } },
    plan: { origin: 'restart', highWater: 90_000, highWaterFrom: 'machine record', generation: 13 },
    warnings: [/the machine-wide record says 90000, generation 12/],
  },
  // ---- damaged database ----------------------------------------------------------------------
  {
    name: 'damaged database, hwm intact: moved aside, continue from the hwm',
    evidence: { database: { state: 'damaged', damage: 'quick_check: page 3 is never used' }, hwm: hwm(50_000, 7) },
    plan: { origin: 'recovered', highWater: 50_000, highWaterFrom: 'hwm', generation: 8, moveAside: true, damage: 'quick_check: page 3 is never used' },
  },
  {
    name: 'damaged database whose meta row still verifies and is ahead of the hwm: the meta row decides',
    evidence: { database: { state: 'damaged', damage: 'inodes row 5 fails its checksum', meta: meta(52_000, 8) }, hwm: hwm(50_000, 7) },
    plan: { origin: 'recovered', highWater: 52_000, highWaterFrom: 'db', generation: 9, moveAside: true },
  },
  {
    name: 'meta row checksum mismatch: its value is a lower bound only, above the hwm',
    evidence: { database: { state: 'damaged', damage: 'meta row checksum mismatch', unverified: { highWater: 51_000, generation: 3 } }, hwm: hwm(50_000, 7) },
    plan: { origin: 'recovered', highWater: 51_000, highWaterFrom: 'hwm', generation: 8 },
  },
  {
    name: 'meta row checksum mismatch with a value below the hwm: the hwm decides (a bad value never lowers it)',
    evidence: { database: { state: 'damaged', damage: 'meta row checksum mismatch', unverified: { highWater: 5, generation: 3 } }, hwm: hwm(50_000, 7) },
    plan: { origin: 'recovered', highWater: 50_000, highWaterFrom: 'hwm', generation: 8 },
  },
  {
    name: 'an unverified value past the wall-clock bound is implausible and ignored',
    evidence: { database: { state: 'damaged', damage: 'meta row checksum mismatch', unverified: { highWater: clockCeiling(NOW) + 1 } }, hwm: hwm(50_000, 7) },
    plan: { origin: 'recovered', highWater: 50_000, highWaterFrom: 'hwm' },
  },
  {
    name: 'damaged database holding rows above the hwm (salvaged max(ino)): continue above them',
    evidence: { database: { state: 'damaged', damage: 'quick_check: x', maxIno: 60_000 }, hwm: hwm(50_000, 7) },
    plan: { origin: 'recovered', highWater: 60_001, highWaterFrom: 'hwm', generation: 8 },
  },
  {
    name: 'verified records below FIRST_DYNAMIC_INO never start numbering below it',
    evidence: { database: { state: 'damaged', damage: 'x' }, hwm: hwm(3, 1) },
    plan: { origin: 'recovered', highWater: FIRST_DYNAMIC_INO, highWaterFrom: 'hwm', generation: 2 },
  },
  {
    name: 'damaged database and no hwm: the wall-clock floor, a clock generation',
    evidence: { database: { state: 'damaged', damage: 'not an SQLite database header' } },
    plan: { origin: 'recovered', highWater: clockCeiling(NOW), highWaterFrom: 'clock', generation: clockGeneration(NOW), moveAside: true },
  },
  {
    name: 'damaged, no hwm, a salvaged generation above the clock generation: above it',
    evidence: { database: { state: 'damaged', damage: 'x', unverified: { generation: clockGeneration(NOW) + 5 } } },
    plan: { origin: 'recovered', highWaterFrom: 'clock', generation: clockGeneration(NOW) + 6 },
  },
  {
    name: 'damaged, no hwm, an absurd salvaged generation (twice the clock generation) is ignored',
    evidence: { database: { state: 'damaged', damage: 'x', unverified: { generation: clockGeneration(NOW) * 2 } } },
    plan: { origin: 'recovered', highWaterFrom: 'clock', generation: clockGeneration(NOW) },
  },
  {
    name: 'damaged, hwm corrupt: nothing verifiable, the wall-clock floor',
    evidence: { database: { state: 'damaged', damage: 'x' }, hwm: { state: 'corrupt', reason: 'unrecognised content' } },
    plan: { origin: 'recovered', highWater: clockCeiling(NOW), highWaterFrom: 'clock' },
  },
  {
    name: 'state file truncated to 0 bytes next to its hwm: moved aside, continue from the hwm',
    evidence: { database: { state: 'empty' }, hwm: hwm(50_000, 7) },
    plan: { origin: 'recovered', highWater: 50_000, highWaterFrom: 'hwm', moveAside: true, damage: 'state file is empty (truncated or never initialised)' },
  },
  // ---- missing database ----------------------------------------------------------------------
  {
    name: 'deleted state file, hwm intact: continue from the hwm, nothing to move',
    evidence: { hwm: hwm(50_000, 7) },
    plan: { origin: 'recovered', highWater: 50_000, highWaterFrom: 'hwm', generation: 8, moveAside: false, damage: 'state file is missing' },
  },
  {
    name: 'deleted state file with its WAL left (ours: the hwm says so): the WAL is moved aside, never replayed',
    evidence: { hwm: hwm(50_000, 7), walExists: true },
    plan: { origin: 'recovered', highWater: 50_000, moveAside: true, damage: 'state file is missing' },
  },
  {
    name: 'state and hwm deleted, but the lock file shows a state lived here: the wall-clock floor',
    evidence: { lockExistedBefore: true },
    plan: { origin: 'recovered', highWater: clockCeiling(NOW), highWaterFrom: 'clock', damage: 'state file is missing', moveAside: false },
  },
  {
    name: 'state and hwm deleted, quarantined copies of an earlier recovery left: the wall-clock floor',
    evidence: { quarantinedCopies: true },
    plan: { origin: 'recovered', highWater: clockCeiling(NOW), highWaterFrom: 'clock', damage: 'state file is missing' },
  },
  // ---- the clock -----------------------------------------------------------------------------
  {
    name: 'the wall clock behind the high-water mark (stepped back): warned last, numbers not lowered',
    evidence: { database: { state: 'ok', meta: meta(clockCeiling(NOW) + 10, 7) }, hwm: hwm(clockCeiling(NOW) + 10, 7) },
    plan: { origin: 'restart', highWater: clockCeiling(NOW) + 10, highWaterFrom: 'db' },
    warnings: [/the wall clock is behind the state high-water mark/],
  },
];

/** Every number any record says may have been issued: the plan must start at or above all of them. */
function issuedBelow(e: StartupEvidence): { highWater: number; generation: number } {
  const marks = [0];
  const gens = [0];
  const db = e.database;
  if (db.meta) {
    marks.push(db.meta.high_water);
    gens.push(db.meta.generation);
  }
  if (db.maxIno !== undefined) marks.push(db.maxIno + 1);
  if (e.hwm.state === 'ok') {
    marks.push(e.hwm.record.highWater);
    gens.push(e.hwm.record.generation);
  }
  for (const r of [e.witness?.perBoot ?? e.witness?.machine]) {
    if (!r) continue;
    marks.push(r.highWater);
    gens.push(r.generation);
  }
  return { highWater: Math.max(...marks), generation: Math.max(...gens) };
}

for (const row of rows) {
  test(row.name, (t) => {
    const e = evidence(row.evidence);
    const plan = planStartup(e);
    for (const [field, want] of Object.entries(row.plan)) t.deepEqual(plan[field as keyof StartupPlan], want, field);
    t.is(plan.warnings.length, row.warnings?.length ?? 0, plan.warnings.map((w) => w.msg).join('\n'));
    row.warnings?.forEach((re, i) => t.regex(plan.warnings[i]?.msg ?? '', re));
    for (const w of plan.warnings) t.false(w.msg.includes('\n'));
    // Never reused: at or above everything recorded, in a generation above every recorded one.
    const floor = issuedBelow(e);
    t.true(plan.highWater >= floor.highWater, `high-water ${plan.highWater} below ${floor.highWater}`);
    t.true(plan.generation > floor.generation);
    t.true(plan.highWater >= FIRST_DYNAMIC_INO);
    // Damage is said exactly when the state was not trusted.
    t.is(plan.damage !== undefined, plan.origin === 'recovered' && e.database.state !== 'ok');
    // Planning twice from the same evidence gives the same plan (no hidden input).
    t.deepEqual(planStartup(e), plan);
  });
}

test('the damage line names the file, the cause, where the file went and where numbering continues', (t) => {
  const byClock = planStartup(evidence({ database: { state: 'damaged', damage: 'file is truncated (60 bytes)' } }));
  t.is(
    damageMessage(FILE, byClock, [`${FILE}.corrupt-20260101T000000.000Z`]),
    `state file ${FILE} damaged (file is truncated (60 bytes)); moved to ${FILE}.corrupt-20260101T000000.000Z; mappings lost, restarting at high-water ${clockCeiling(NOW)} from the wall-clock floor, generation ${clockGeneration(NOW)}`,
  );
  const byHwm = planStartup(evidence({ hwm: hwm(50_000, 7) }));
  t.regex(damageMessage(FILE, byHwm, []), new RegExp(`damaged \\(state file is missing\\); mappings lost, restarting at high-water 50000 from ${FILE}\\.hwm, generation 8$`));
  const byDb = planStartup(evidence({ database: { state: 'damaged', damage: 'x', meta: meta(52_000, 8) } }));
  t.regex(damageMessage(FILE, byDb, []), /from the damaged file, generation 9$/);
});

const refusals: [name: string, kind: Parameters<typeof refusal>[1], companions: { wal: boolean; hwm: boolean }, refused: RegExp | undefined][] = [
  ['nothing there: a new state may be created', { kind: 'missing' }, { wal: false, hwm: false }, undefined],
  ['our database (application_id)', { kind: 'ours', why: 'application_id' }, { wal: true, hwm: false }, undefined],
  ['a garbled file whose hwm is ours', { kind: 'ours', why: 'hwm companion' }, { wal: false, hwm: true }, undefined],
  ['a foreign file', { kind: 'foreign', reason: 'it is a directory, not a regular file' }, { wal: false, hwm: false }, /state\.db is not a handlefs state file \(it is a directory, not a regular file\); refusing to touch it/],
  ['a WAL without its database and without an hwm', { kind: 'missing' }, { wal: true, hwm: false }, /state\.db-wal is not a handlefs state file \(a write-ahead log without its database/],
  ['a WAL without its database, with an hwm (ours: moved aside later)', { kind: 'missing' }, { wal: true, hwm: true }, undefined],
];
for (const [name, kind, companions, refused] of refusals) {
  test(`refusal: ${name}`, (t) => {
    const err = refusal(FILE, kind, companions);
    if (refused === undefined) t.is(err, undefined);
    else t.regex(err?.message ?? '', refused);
  });
}
