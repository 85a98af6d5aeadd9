/**
 * A state restored from an older copy (database and FILE.hwm together) must not hand out again
 * the numbers issued after the copy was taken: records outside the state directory catch it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { WITNESS_LOOKAHEAD, type SqliteStore, type WitnessDirs } from '../../src/store/index.js';
import { captureLogger, open, record, removeTempDirs, tempDir } from './helpers.js';

test.after.always(removeTempDirs);

function setup() {
  const root = tempDir();
  const file = path.join(root, 'state', 'state.db');
  const witness: WitnessDirs = { perBoot: path.join(root, 'run', 'states'), machine: path.join(root, 'var', 'records') };
  return { root, file, witness, backup: path.join(root, 'backup') };
}

/** Issues `n` ranges (4 numbers each) and stores one row per range; returns every number granted. */
async function issue(store: SqliteStore, n: number): Promise<number[]> {
  const issued: number[] = [];
  for (let i = 0; i < n; i++) {
    const { start, end } = store.reserve(4);
    for (let x = start; x < end; x++) issued.push(x);
    store.put(record(start, store.generation, 100 + i));
  }
  await store.flush();
  return issued;
}

const STATE_FILES = ['state.db', 'state.db-wal', 'state.db-shm', 'state.db.hwm'];

function copyState(fromDir: string, toDir: string): void {
  fs.rmSync(toDir, { recursive: true, force: true });
  fs.mkdirSync(toDir, { recursive: true });
  for (const n of STATE_FILES) if (fs.existsSync(path.join(fromDir, n))) fs.copyFileSync(path.join(fromDir, n), path.join(toDir, n));
}

/** Puts the copy back as the state directory, as a restore from backup would. */
function restoreState(backup: string, stateDir: string): void {
  for (const n of STATE_FILES) fs.rmSync(path.join(stateDir, n), { force: true });
  for (const n of STATE_FILES) if (fs.existsSync(path.join(backup, n))) fs.copyFileSync(path.join(backup, n), path.join(stateDir, n));
}

const opts = (witness: WitnessDirs, extra = {}) => ({ witness, minChunk: 4, maxChunk: 4, ...extra });

for (const when of ['while stopped', 'while running'] as const) {
  test(`a state restored from a copy taken ${when} issues no number again, and says so`, async (t) => {
    const { file, witness, backup } = setup();
    const dir = path.dirname(file);
    let store = open(file, opts(witness));
    await issue(store, 5);
    if (when === 'while stopped') {
      store.close();
      copyState(dir, backup);
      store = open(file, opts(witness));
    } else {
      copyState(dir, backup); // a live copy: database, WAL and hwm as they are now
    }
    const after = await issue(store, 5);
    store.close();

    restoreState(backup, dir);
    const { logger, lines } = captureLogger();
    const restored = open(file, opts(witness, { logger }));
    t.teardown(() => restored.close());
    t.is(restored.startup.origin, 'restart');
    const next = await issue(restored, 20);
    const again = next.filter((x) => after.includes(x));
    t.deepEqual(again, [], 'no number issued after the copy is issued again');
    t.true(Math.min(...next) > Math.max(...after));
    const warning = lines.find((l) => l.level === 40 && /restored from a backup/.test(l.msg));
    t.truthy(warning, JSON.stringify(lines));
    t.regex(warning!.msg, /per-boot record/);
  });
}

test('after a reboot (per-boot records gone) the machine-wide record still catches a restore', async (t) => {
  const { file, witness, backup } = setup();
  const dir = path.dirname(file);
  let store = open(file, opts(witness));
  await issue(store, 3);
  store.close();
  copyState(dir, backup);
  store = open(file, opts(witness));
  const after = await issue(store, 3);
  store.close();
  restoreState(backup, dir);
  fs.rmSync(witness.perBoot!, { recursive: true }); // /run is a tmpfs: gone at reboot
  const { logger, lines } = captureLogger();
  const restored = open(file, opts(witness, { logger }));
  t.teardown(() => restored.close());
  const next = await issue(restored, 3);
  t.true(Math.min(...next) > Math.max(...after));
  t.true(lines.some((l) => l.level === 40 && /machine-wide record/.test(l.msg) && /restored from a backup/.test(l.msg)));
});

test('an ordinary restart is not a restore: no warning, numbers continue exactly; the first start of a boot continues above the machine-wide bound', async (t) => {
  const { file, witness } = setup();
  const store = open(file, opts(witness));
  await issue(store, 3);
  const high = store.highWater;
  store.close();
  const { logger, lines } = captureLogger();
  const again = open(file, opts(witness, { logger }));
  t.is(again.highWater, high);
  again.close();
  t.false(lines.some((l) => l.level >= 40), JSON.stringify(lines));

  fs.rmSync(witness.perBoot!, { recursive: true });
  const afterBoot = open(file, opts(witness));
  t.true(afterBoot.highWater >= high && afterBoot.highWater <= high + WITNESS_LOOKAHEAD + 4);
  afterBoot.close();
});

test('records are private (0700 directories, 0600 files), and an unwritable record directory is a warning, not a failure', async (t) => {
  const { root, file, witness } = setup();
  const store = open(file, opts(witness));
  await issue(store, 1);
  store.close();
  for (const d of [witness.perBoot!, witness.machine!]) {
    t.is(fs.statSync(d).mode & 0o777, 0o700);
    for (const n of fs.readdirSync(d)) t.is(fs.statSync(path.join(d, n)).mode & 0o777, 0o600, n);
  }
  const blocked = path.join(root, 'not-a-dir');
  fs.writeFileSync(blocked, '');
  const { logger, lines } = captureLogger();
  const s2 = open(file, opts({ perBoot: path.join(blocked, 'x'), machine: witness.machine! }, { logger }));
  await issue(s2, 2);
  s2.close();
  t.is(lines.filter((l) => l.level === 40 && /cannot write the state record/.test(l.msg)).length, 1);
});
