import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import Database from 'better-sqlite3';
import { CLOCK_LEAD, clockCeiling, formatHwm, readHwm } from '../../src/store/index.js';
import { captureLogger, open, populate, record, removeTempDirs, tempDir, type LogLine } from './helpers.js';

test.after.always(removeTempDirs);

async function damagedState(rows = 3000) {
  const dir = tempDir();
  const file = path.join(dir, 'state.db');
  const before = await populate(file, rows);
  t_assertClean(file);
  return { dir, file, ...before };
}

function t_assertClean(file: string): void {
  // A clean close checkpoints and removes the WAL: the database file holds everything.
  if (fs.existsSync(`${file}-wal`) && fs.statSync(`${file}-wal`).size > 0) throw new Error('WAL left behind');
}

/** Quarantined database files (their -wal/-shm companions, if any, are moved along with them). */
function corruptCopies(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.includes('.corrupt-') && !/-(wal|shm)$/.test(n));
}

/** The one error line a damage must produce: names the file, the cause and where it went. */
function damageLine(lines: LogLine[], file: string): LogLine {
  const errors = lines.filter((l) => l.level >= 50);
  if (errors.length !== 1) throw new Error(`expected one error line, got ${JSON.stringify(errors)}`);
  const line = errors[0]!;
  if (!line.msg.includes(file) || !/damaged/.test(line.msg) || line.msg.includes('\n')) throw new Error(`unclear damage line: ${line.msg}`);
  return line;
}

/** After a recovery the store must work normally and survive a restart. */
async function worksAfterwards(file: string, aboveAll: number): Promise<void> {
  const store = open(file);
  const { start } = store.reserve(1);
  if (start < aboveAll) throw new Error(`granted ${start} below ${aboveAll}`);
  store.put(record(start, store.generation, 1));
  await store.flush();
  store.close();
  const again = open(file);
  const rows = [...again.load()];
  again.close();
  if (rows.length !== 1 || rows[0]!.ino !== start) throw new Error('row lost after recovery');
  if (again.startup.origin !== 'restart') throw new Error(`second open after recovery: ${again.startup.origin}`);
}

for (const [name, cut] of [
  ['to half its size (page-aligned)', (size: number) => Math.floor(size / 2 / 4096) * 4096],
  ['mid-page', (size: number) => Math.floor(size / 2) + 123],
  ['to 0 bytes', () => 0],
  ['inside the header', () => 60],
] as const) {
  test(`a state file truncated ${name} is detected, moved aside, and numbers continue above the hwm file`, async (t) => {
    const { dir, file, highWater, generation } = await damagedState();
    fs.truncateSync(file, cut(fs.statSync(file).size));
    const { logger, lines } = captureLogger();
    const store = open(file, { logger });
    t.is(store.startup.origin, 'recovered');
    t.is(store.startup.highWaterFrom, 'hwm');
    t.true(store.highWater >= highWater);
    t.true(store.generation > generation);
    t.deepEqual([...store.load()], []);
    const line = damageLine(lines, file);
    t.log(line.msg);
    t.is(corruptCopies(dir).length, 1);
    t.true(line.msg.includes(path.join(dir, corruptCopies(dir)[0]!)));
    store.close();
    await worksAfterwards(file, highWater);
  });
}

test('flipped bytes in the middle of the file are detected (quick_check or row checksums)', async (t) => {
  const { dir, file, highWater, generation } = await damagedState();
  const fd = fs.openSync(file, 'r+');
  const size = fs.fstatSync(fd).size;
  const buf = Buffer.alloc(512);
  fs.readSync(fd, buf, 0, 512, Math.floor(size / 2));
  for (let i = 0; i < buf.length; i++) buf[i]! ^= 0xff;
  fs.writeSync(fd, buf, 0, 512, Math.floor(size / 2));
  fs.closeSync(fd);
  const { logger, lines } = captureLogger();
  const store = open(file, { logger });
  t.is(store.startup.origin, 'recovered');
  t.true(store.highWater >= highWater);
  t.true(store.generation > generation);
  t.log(damageLine(lines, file).msg);
  t.is(corruptCopies(dir).length, 1);
  store.close();
  await worksAfterwards(file, highWater);
});

test('16 flipped bytes anywhere in the file are either detected or harmless (rows and high-water intact)', async (t) => {
  const dir = tempDir();
  const base = path.join(dir, 'base.db');
  const { rows, highWater } = await populate(base, 3000);
  const want = JSON.stringify(rows);
  const size = fs.statSync(base).size;
  let detected = 0;
  let harmless = 0;
  for (let off = 100; off < size; off += 1531) {
    const file = path.join(tempDir(), 'state.db');
    fs.copyFileSync(base, file);
    fs.copyFileSync(`${base}.hwm`, `${file}.hwm`);
    const fd = fs.openSync(file, 'r+');
    const b = Buffer.alloc(16);
    fs.readSync(fd, b, 0, 16, off);
    for (let i = 0; i < b.length; i++) b[i]! ^= 0xff;
    fs.writeSync(fd, b, 0, 16, off);
    fs.closeSync(fd);
    const store = open(file);
    if (store.startup.origin === 'recovered') {
      detected++;
      t.true(store.highWater >= highWater);
    } else {
      // Unused space inside a page: nothing that is read changed.
      t.is(JSON.stringify([...store.load()].sort((a, b) => a.ino - b.ino)), want, `flip at ${off} changed rows undetected`);
      t.is(store.highWater, highWater);
      harmless++;
    }
    store.close();
  }
  t.log(`${detected} detected, ${harmless} in unused space`);
  t.true(detected > harmless);
});

test('a single flipped byte inside one row (structure intact) fails that row\'s checksum', async (t) => {
  const { file, highWater } = await damagedState(50);
  // Change one stored value behind the store's back: SQLite sees a valid database.
  const db = new Database(file);
  db.prepare('UPDATE inodes SET key = key + 1 WHERE ino = (SELECT min(ino) FROM inodes)').run();
  db.close();
  const { logger, lines } = captureLogger();
  const store = open(file, { logger });
  t.is(store.startup.origin, 'recovered');
  t.regex(store.startup.damage!, /checksum/);
  t.true(store.highWater >= highWater);
  damageLine(lines, file);
  store.close();
});

test('a deleted state file: the hwm file carries the high-water mark and generation', async (t) => {
  const { dir, file, highWater, generation } = await damagedState(100);
  fs.rmSync(file);
  const { logger, lines } = captureLogger();
  const store = open(file, { logger });
  t.is(store.startup.origin, 'recovered');
  t.is(store.startup.highWaterFrom, 'hwm');
  t.is(store.highWater, highWater);
  t.is(store.generation, generation + 1);
  t.regex(damageLine(lines, file).msg, /missing/);
  t.deepEqual(corruptCopies(dir), []);
  store.close();
  await worksAfterwards(file, highWater);
});

test('state file and hwm file both deleted: the wall-clock floor is above anything ever granted', async (t) => {
  const { dir, file, highWater, generation } = await damagedState(100);
  fs.rmSync(file);
  fs.rmSync(`${file}.hwm`);
  const T = Date.now();
  const { logger, lines } = captureLogger();
  const store = open(file, { logger, now: () => T });
  t.is(store.startup.origin, 'recovered');
  t.is(store.startup.highWaterFrom, 'clock');
  t.is(store.highWater, clockCeiling(T));
  t.true(store.highWater > highWater);
  t.true(store.generation > generation);
  t.is(store.generation, Math.floor(T / 1000));
  t.regex(damageLine(lines, file).msg, /wall-clock floor/);
  t.deepEqual(corruptCopies(dir), []);
  store.close();
});

test('the wall-clock bound: right after a clock recovery ranges are cut to the clock, and a stuck clock refuses', async (t) => {
  const { file } = await damagedState(10);
  fs.rmSync(file);
  fs.rmSync(`${file}.hwm`);
  let clock = Date.now();
  const store = open(file, { now: () => clock });
  const floor = store.highWater;
  clock += 2; // 2 ms later: 2000 numbers of headroom
  const r = store.reserve(1);
  t.is(r.start, floor);
  t.true(r.end <= clockCeiling(clock));
  t.true(r.end - r.start <= 2000);
  // The clock stands still (or stepped back): granting past it is refused, not risked.
  t.throws(() => store.reserve(5000), { message: /wall-clock bound/ });
  t.is(store.highWater, r.end);
  store.close();
  t.is(clockCeiling(0), CLOCK_LEAD);
});

test('a corrupted hwm file next to an intact database: restart from the database, hwm rewritten', async (t) => {
  const { file, highWater, generation } = await damagedState(20);
  fs.writeFileSync(`${file}.hwm`, 'handlefs-hwm v1 high_water=1 generation=1 checksum=00000000000000000000000000000000\n');
  const { logger, lines } = captureLogger();
  const store = open(file, { logger });
  t.is(store.startup.origin, 'restart');
  t.is(store.highWater, highWater);
  t.is(store.generation, generation + 1);
  t.is([...store.load()].length, 20);
  t.true(lines.some((l) => l.level === 40 && /high-water file .* unreadable/.test(l.msg)));
  t.false(lines.some((l) => l.level >= 50));
  const hwm = readHwm(`${file}.hwm`);
  t.true(hwm.state === 'ok' && hwm.record.highWater === highWater);
  store.close();
});

test('a database older than the hwm file (restored from a copy): numbers continue above the hwm', async (t) => {
  const { file, highWater, generation } = await damagedState(20);
  fs.writeFileSync(`${file}.hwm`, formatHwm({ highWater: highWater + 5000, generation: generation + 3 }));
  const { logger, lines } = captureLogger();
  const store = open(file, { logger });
  t.is(store.startup.origin, 'restart');
  t.is(store.highWater, highWater + 5000);
  t.is(store.generation, generation + 4);
  t.true(lines.some((l) => l.level === 40 && /older than/.test(l.msg)));
  store.close();
});

test('a meta row that fails its checksum is damage; its value is not trusted over the hwm file', async (t) => {
  const { dir, file, highWater } = await damagedState(20);
  const db = new Database(file);
  db.prepare('UPDATE meta SET high_water = 5').run();
  db.close();
  const { logger, lines } = captureLogger();
  const store = open(file, { logger });
  t.is(store.startup.origin, 'recovered');
  t.regex(store.startup.damage!, /meta row checksum/);
  t.is(store.highWater, highWater);
  damageLine(lines, file);
  t.is(corruptCopies(dir).length, 1);
  store.close();
});

test('a WAL left without its database is moved aside, not replayed onto a new one', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'state.db');
  const store = open(file);
  const { start } = store.reserve(1);
  store.put(record(start, store.generation, 1));
  await store.flush();
  // Copy the live WAL, close (which removes it), then delete the database and restore the WAL.
  const wal = fs.readFileSync(`${file}-wal`);
  const highWater = store.highWater;
  store.close();
  fs.rmSync(file);
  fs.writeFileSync(`${file}-wal`, wal);
  const again = open(file);
  t.is(again.startup.origin, 'recovered');
  t.true(again.highWater >= highWater);
  t.true(fs.readdirSync(dir).some((n) => n.includes('.corrupt-') && n.endsWith('-wal')));
  again.close();
});

test('freshStart "clock": a brand-new state starts at the wall-clock floor', (t) => {
  const file = path.join(tempDir(), 'state.db');
  const T = Date.now();
  const store = open(file, { freshStart: 'clock', now: () => T });
  t.is(store.startup.origin, 'new');
  t.is(store.highWater, clockCeiling(T));
  store.close();
});

test('full integrity_check is available as an option', async (t) => {
  const { file } = await damagedState(20);
  const store = open(file, { integrityCheck: 'full' });
  t.is(store.startup.origin, 'restart');
  store.close();
});
