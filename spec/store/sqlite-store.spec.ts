import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { FIRST_DYNAMIC_INO } from '../../src/core/numbers.js';
import type { InodeRecord } from '../../src/core/store.js';
import { DEFAULT_STATE_PATH, SCHEMA_VERSION, readHwm } from '../../src/store/index.js';
import { captureLogger, open, populate, record, removeTempDirs, tempDir } from './helpers.js';

test.after.always(removeTempDirs);

function stateFile(): string {
  const dir = tempDir();
  return path.join(dir, 'state.db');
}

test('the default state path is the documented one', (t) => {
  t.is(DEFAULT_STATE_PATH, '/var/lib/handlefs/state.db');
});

test('a new state starts at FIRST_DYNAMIC_INO, generation 1, WAL with synchronous=FULL', (t) => {
  const file = stateFile();
  const store = open(file);
  t.teardown(() => store.close());
  t.is(store.startup.origin, 'new');
  t.is(store.highWater, FIRST_DYNAMIC_INO);
  t.is(store.generation, 1);
  t.deepEqual([...store.load()], []);
  const db = new Database(file, { readonly: true });
  t.is(db.pragma('journal_mode', { simple: true }), 'wal');
  t.is(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  db.close();
  // The store's own connection: every commit fsyncs the WAL.
  t.is((store as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true }), 2);
});

test('a reopened WAL database also runs with synchronous=FULL (the build defaults WAL to NORMAL)', (t) => {
  const file = stateFile();
  open(file).close();
  const raw = new Database(file);
  t.is(raw.pragma('synchronous', { simple: true }), 1); // what a plain connection gets
  raw.close();
  const store = open(file);
  t.is((store as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true }), 2);
  store.close();
});

test('reserve grants increasing, non-overlapping ranges whose end is durable at once (db and hwm file)', (t) => {
  const file = stateFile();
  const store = open(file);
  let prevEnd = store.highWater;
  for (const count of [1, 5, 1024, 3000, 1, 70_000]) {
    const r = store.reserve(count);
    t.is(r.start, prevEnd);
    t.true(r.end - r.start >= count);
    t.is(store.highWater, r.end);
    // Durable before returning: visible to a second connection and in FILE.hwm.
    const db = new Database(file, { readonly: true });
    t.is((db.prepare('SELECT high_water FROM meta').get() as { high_water: number }).high_water, r.end);
    db.close();
    const hwm = readHwm(`${file}.hwm`);
    t.true(hwm.state === 'ok' && hwm.record.highWater === r.end);
    prevEnd = r.end;
  }
  store.close();
  const again = open(file);
  t.is(again.highWater, prevEnd);
  again.close();
});

test('reserve rejects bad counts', (t) => {
  const store = open(stateFile());
  t.teardown(() => store.close());
  for (const bad of [0, -1, 1.5, Number.NaN]) t.throws(() => store.reserve(bad), { instanceOf: RangeError });
});

test('range size adapts: doubles while ranges run out within a second, up to maxChunk', (t) => {
  const store = open(stateFile(), { minChunk: 16, maxChunk: 128 });
  t.teardown(() => store.close());
  const sizes = Array.from({ length: 6 }, () => {
    const r = store.reserve(1);
    return r.end - r.start;
  });
  t.deepEqual(sizes, [16, 32, 64, 128, 128, 128]);
});

test('put/flush/load round trip, with deletes and replacements', async (t) => {
  const file = stateFile();
  const store = open(file);
  const { start } = store.reserve(10);
  const rows = Array.from({ length: 10 }, (_, i) => record(start + i, store.generation, 100 + i, { kind: i % 2 ? 'namespace' : 'process', scope: i < 5 ? 'boot-a' : 'boot-b' }));
  for (const r of rows) store.put(r);
  t.true(store.dirty);
  await store.flush();
  t.false(store.dirty);
  store.delete(rows[3]!.ino);
  const replaced = { ...rows[4]!, incarnation: 99 };
  store.put(replaced);
  await store.flush();
  store.close();

  const again = open(file);
  const expected = rows.filter((_, i) => i !== 3).map((r) => (r.ino === replaced.ino ? replaced : r));
  t.deepEqual(
    [...again.load()].sort((a, b) => a.ino - b.ino),
    expected,
  );
  again.close();
});

test('open reads every row across read pages (16384 rows a page), with gaps between numbers', async (t) => {
  // Exactly two full pages (the last query finds nothing), and one row more (a partial third page).
  for (const n of [2 * 16384, 2 * 16384 + 1]) {
    const file = stateFile();
    const store = open(file);
    const { start } = store.reserve(3 * n);
    const rows = Array.from({ length: n }, (_, i) =>
      record(start + i * 2 + (i % 3 === 0 ? 1 : 0), store.generation, 20_000 + i, { kind: i % 4 ? 'process' : 'namespace' }),
    );
    for (const r of rows) store.put(r);
    await store.flush();
    store.close();
    const again = open(file);
    t.deepEqual([...again.load()].sort((a, b) => a.ino - b.ino), rows, `${n} rows`);
    again.close();
  }
});

test('put of a number that was never granted is refused', (t) => {
  const store = open(stateFile());
  t.teardown(() => store.close());
  t.throws(() => store.put(record(store.highWater, 1, 1)), { instanceOf: RangeError });
  t.throws(() => store.put(record(FIRST_DYNAMIC_INO - 1, 1, 1)), { instanceOf: RangeError });
});

test('flush() calls of one event-loop turn share one commit; an idle flush touches nothing', async (t) => {
  const store = open(stateFile());
  t.teardown(() => store.close());
  const { start } = store.reserve(100);
  const before = store.stats.commits;
  const flushes: Promise<void>[] = [];
  for (let i = 0; i < 100; i++) {
    store.put(record(start + i, store.generation, i));
    flushes.push(store.flush());
  }
  await Promise.all(flushes);
  t.is(store.stats.commits, before + 1);
  t.is(store.stats.rowsWritten, 100);
  // Nothing queued: resolves without a commit (repeat lookups never touch the disk).
  await store.flush();
  t.is(store.stats.commits, before + 1);
  // A put after the commit was scheduled but before it ran is carried by it.
  store.put(record(start + 100 - 1, store.generation, 1));
  const p = store.flush();
  store.delete(start);
  await p;
  t.false(store.dirty);
  t.is(store.stats.commits, before + 2);
});

test('whenDurable is per number: a row committed earlier never waits for a commit that does not carry it', async (t) => {
  const store = open(stateFile());
  t.teardown(() => store.close());
  const { start } = store.reserve(10);
  const [a, b, c] = [start, start + 1, start + 2];
  t.is(store.whenDurable(a), undefined, 'no row, nothing to wait for');
  store.put(record(a, store.generation, 1));
  const pa = store.whenDurable(a);
  t.truthy(pa, 'a queued row waits for the next commit');
  await pa;
  t.is(store.whenDurable(a), undefined);
  store.put(record(b, store.generation, 2));
  const pb = store.whenDurable(b)!;
  await new Promise((r) => setImmediate(r)); // the commit carrying b starts
  t.true(store.dirty, 'a commit is in flight');
  t.is(store.whenDurable(a), undefined, 'a, committed earlier, does not wait for it');
  t.is(store.whenDurable(b), pb, 'b waits for the commit that carries it');
  store.put(record(c, store.generation, 3));
  const pc = store.whenDurable(c)!;
  t.not(pc, pb, 'c, queued after that commit started, waits for the next one');
  await Promise.all([pb, pc]);
  t.is(store.whenDurable(b), undefined);
  t.is(store.whenDurable(c), undefined);
  t.false(store.dirty);
});

test('generation increments on every open and is stamped on the runs table', (t) => {
  const file = stateFile();
  const gens: number[] = [];
  for (let i = 0; i < 4; i++) {
    const s = open(file);
    gens.push(s.generation);
    s.close();
  }
  t.deepEqual(gens, [1, 2, 3, 4]);
  const db = new Database(file, { readonly: true });
  const runs = db.prepare('SELECT generation, closed_at, origin FROM runs ORDER BY generation').all() as { generation: number; closed_at: string | null; origin: string }[];
  db.close();
  t.deepEqual(
    runs.map((r) => r.generation),
    [1, 2, 3, 4],
  );
  t.true(runs.every((r) => r.closed_at !== null));
  t.deepEqual(
    runs.map((r) => r.origin),
    ['new', 'restart', 'restart', 'restart'],
  );
});

test('restart keeps rows and the next allocation is above the high-water mark, not the max row', async (t) => {
  const file = stateFile();
  const { rows, highWater } = await populate(file, 50);
  const maxRow = Math.max(...rows.map((r) => r.ino));
  t.true(highWater > maxRow + 1); // a range was only partly used
  const store = open(file);
  t.deepEqual(
    [...store.load()].sort((a, b) => a.ino - b.ino),
    rows,
  );
  const r = store.reserve(1);
  t.true(r.start >= highWater);
  store.close();
});

test('pruning never lowers the high-water mark', async (t) => {
  const file = stateFile();
  const { rows, highWater } = await populate(file, 40);
  const store = open(file);
  t.is(store.pruneWhere((r) => r.key % 2 === 0), 20);
  t.is([...store.load()].length, 20);
  for (const r of rows) store.delete(r.ino);
  await store.flush();
  t.is(store.highWater, highWater);
  store.close();
  const again = open(file);
  t.deepEqual([...again.load()], []);
  t.is(again.highWater, highWater);
  t.true(again.reserve(1).start >= highWater);
  again.close();
});

test('pruneOtherScopes deletes rows of other boots durably, before load', async (t) => {
  const file = stateFile();
  const store = open(file);
  const { start } = store.reserve(6);
  for (let i = 0; i < 6; i++) store.put(record(start + i, store.generation, i, { scope: i < 4 ? 'boot-old' : 'boot-new' }));
  await store.flush();
  store.close();
  const again = open(file);
  t.is(again.pruneOtherScopes('boot-new'), 4);
  t.deepEqual(
    [...again.load()].map((r) => r.ino),
    [start + 4, start + 5],
  );
  again.close();
  const third = open(file);
  t.is([...third.load()].length, 2);
  t.is(third.pruneOtherScopes('never-seen'), 2);
  third.close();
});

test('close flushes synchronously and a closed store refuses work', (t) => {
  const file = stateFile();
  const store = open(file);
  const { start } = store.reserve(1);
  store.put(record(start, store.generation, 1));
  const pending = store.flush();
  store.close();
  t.throws(() => store.reserve(1), { message: /closed/ });
  t.throws(() => store.put(record(start, 1, 1)), { message: /closed/ });
  const again = open(file);
  t.is([...again.load()].length, 1);
  again.close();
  return t.notThrowsAsync(pending);
});

test('load() overlays queued changes; a second load() reads the database again', async (t) => {
  const store = open(stateFile());
  t.teardown(() => store.close());
  const { start } = store.reserve(3);
  store.put(record(start, store.generation, 1));
  t.deepEqual(
    [...store.load()].map((r) => r.ino),
    [start],
  );
  await store.flush();
  store.put(record(start + 1, store.generation, 2));
  t.deepEqual(
    [...store.load()].map((r) => r.ino).sort(),
    [start, start + 1],
  );
});

test('open logs one info line naming the file', (t) => {
  const file = stateFile();
  const { logger, lines } = captureLogger();
  const store = open(file, { logger });
  store.close();
  const info = lines.filter((l) => l.level === 30);
  t.is(info.length, 1);
  t.true(info[0]!.msg.includes(file));
});

test('a schema newer than this build is refused, untouched', (t) => {
  const file = stateFile();
  open(file).close();
  const db = new Database(file);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  const before = fs.readFileSync(file);
  t.throws(() => open(file), { message: /newer handlefs/ });
  t.deepEqual(fs.readFileSync(file), before);
});

test('a database handlefs did not write is refused, not quarantined', (t) => {
  const file = stateFile();
  const db = new Database(file);
  db.exec('CREATE TABLE t (x)');
  db.close();
  t.throws(() => open(file), { message: /not a handlefs state file/ });
  t.true(fs.existsSync(file));
  t.deepEqual(
    fs.readdirSync(path.dirname(file)).filter((n) => n.includes('corrupt')),
    [],
  );
});

for (const commitThread of [true, false]) test(`property: any sequence of reserves, puts, deletes, flushes and reopens keeps the contract (commitThread: ${commitThread})`, async (t) => {
  type Op = { op: 'reserve'; count: number } | { op: 'put'; key: number } | { op: 'delete'; pick: number } | { op: 'flush' } | { op: 'reopen' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('reserve' as const), count: fc.integer({ min: 1, max: 3000 }) }),
    fc.record({ op: fc.constant('put' as const), key: fc.integer({ min: 1, max: 50 }) }),
    fc.record({ op: fc.constant('delete' as const), pick: fc.nat() }),
    fc.constant({ op: 'flush' as const }),
    fc.constant({ op: 'reopen' as const }),
  );
  await t.notThrowsAsync(
    fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), async (ops) => {
        const file = stateFile();
        let store = open(file, { minChunk: 4, maxChunk: 64, commitThread });
        const model = new Map<number, InodeRecord>(); // what is durable after the last flush
        const queued = new Map<number, InodeRecord | null>();
        const granted: [number, number][] = [];
        let next = 0;
        let end = 0;
        let lastGeneration = store.generation;
        try {
          for (const o of ops) {
            if (o.op === 'reserve') {
              const r = store.reserve(o.count);
              for (const [s, e] of granted) if (r.start < e && s < r.end) throw new Error(`overlap [${r.start},${r.end}) with [${s},${e})`);
              if (r.end - r.start < o.count) throw new Error('short range');
              granted.push([r.start, r.end]);
              [next, end] = [r.start, r.end];
            } else if (o.op === 'put' && next < end) {
              const r = record(next++, store.generation, o.key);
              store.put(r);
              queued.set(r.ino, r);
            } else if (o.op === 'delete' && model.size + queued.size > 0) {
              const inos = [...new Set([...model.keys(), ...queued.keys()])];
              const ino = inos[o.pick % inos.length]!;
              store.delete(ino);
              queued.set(ino, null);
            } else if (o.op === 'flush' || o.op === 'reopen') {
              await store.flush();
              for (const [ino, r] of queued) (r === null ? model.delete(ino) : model.set(ino, r));
              queued.clear();
              if (o.op === 'reopen') {
                const high = Math.max(store.highWater, ...granted.map(([, e]) => e));
                store.close();
                store = open(file, { minChunk: 4, maxChunk: 64, commitThread });
                if (store.generation <= lastGeneration) throw new Error('generation did not increase');
                lastGeneration = store.generation;
                if (store.highWater < high) throw new Error(`high-water went down: ${store.highWater} < ${high}`);
                const loaded = [...store.load()].sort((a, b) => a.ino - b.ino);
                const expected = [...model.values()].sort((a, b) => a.ino - b.ino);
                if (JSON.stringify(loaded) !== JSON.stringify(expected)) throw new Error('rows differ after reopen');
                next = end = 0;
              }
            }
          }
        } finally {
          store.close();
          fs.rmSync(path.dirname(file), { recursive: true, force: true });
        }
      }),
      { numRuns: 30 },
    ),
  );
});
