import test from 'ava';
import { ReleasedDentryError, StaleIdentityError } from '../../src/core/inode-table.js';
import { MemoryStore } from '../../src/core/memory-store.js';
import { SingleFlight } from '../../src/core/single-flight.js';
import type { Identity } from '../../src/core/inode.js';
import { makeTable, proc } from '../helpers/core.js';

test('instantiate of the same object returns the same inode and dentry', (t) => {
  const { table } = makeTable();
  const a = table.instantiate(proc(10, 500), 'first');
  const b = table.instantiate(proc(10, 500), 'second');
  t.is(a, b);
  t.is(a.holds, 2);
  t.is(a.object, 'first', 'the winner keeps its object');
  t.is(table.counters().inodes, 1);
  t.is(table.counters().dentries, 1);
});

test('a loser of the race has its own object disposed', (t) => {
  const { table } = makeTable();
  const disposed: string[] = [];
  table.instantiate(proc(10, 500), 'winner', (x) => disposed.push(x));
  table.instantiate(proc(10, 500), 'loser', (x) => disposed.push(x));
  t.deepEqual(disposed, ['loser']);
});

test('different objects get different, increasing numbers', (t) => {
  const { table } = makeTable();
  const inos = [1, 2, 3, 4].map((pid) => table.lookup(proc(pid, 7), 'p').ino);
  t.deepEqual([...inos].sort((x, y) => x - y), inos);
  t.is(new Set(inos).size, 4);
});

test('a reused pid is a new object with a larger number; the old handle is unhashed but reachable while held', (t) => {
  const deaths: number[] = [];
  const { table } = makeTable({ events: { dead: (inode) => deaths.push(inode.ino) } });
  const old = table.lookup(proc(42, 100), 'old');
  const fresh = table.lookup(proc(42, 200), 'new');
  t.not(old, fresh);
  t.true(fresh.ino > old.ino);
  t.deepEqual(deaths, [old.ino]);
  t.true(table.isDead(old.inode));
  t.is(table.findByKey('process', 42), fresh.inode);
  t.is(table.dentry(old.ino), old, 'the kernel still holds the old node; it must resolve');
  t.is(table.dentry(old.ino)!.object, 'old', 'and never show the new process');
});

test('a caller bringing an older incarnation than the table knows gets StaleIdentityError', (t) => {
  const { table } = makeTable();
  table.lookup(proc(42, 200), 'new');
  const error = t.throws(() => table.lookup(proc(42, 100), 'stale read'), { instanceOf: StaleIdentityError });
  t.is(error?.current, 200);
  t.is(table.counters().inodes, 1);
});

test('lookups add, forgets subtract, release happens exactly at zero', (t) => {
  const released: number[] = [];
  const { table } = makeTable({ events: { released: (d) => released.push(d.ino) } });
  const d = table.lookup(proc(1, 1), 'x');
  table.addLookups(d, 2);
  t.is(d.lookups, 3);
  table.forget(d.ino, 2);
  t.false(d.released);
  t.deepEqual(released, []);
  table.forget(d.ino, 1);
  t.true(d.released);
  t.deepEqual(released, [d.ino]);
  t.is(table.dentry(d.ino), undefined);
});

test('a live object keeps its number after its dentry is released; a new dentry is built for it', (t) => {
  const { table } = makeTable();
  const first = table.lookup(proc(5, 9), 'x');
  table.forget(first.ino, 1);
  t.true(first.released);
  const second = table.lookup(proc(5, 9), 'x');
  t.not(second, first, 'a released dentry never comes back');
  t.is(second.ino, first.ino, 'but the object keeps its number');
  t.is(table.counters().allocations, 1);
});

test('a released dentry cannot be taken from zero back to one', (t) => {
  const { table } = makeTable();
  const d = table.lookup(proc(5, 9), 'x');
  table.forget(d.ino, 1);
  t.throws(() => table.get(d), { instanceOf: ReleasedDentryError });
  t.throws(() => table.addLookups(d, 1), { instanceOf: ReleasedDentryError });
  t.throws(() => table.pin(d), { instanceOf: ReleasedDentryError });
  t.throws(() => table.open(d), { instanceOf: ReleasedDentryError });
});

test('a forget larger than the count is clamped at zero and logged loudly', (t) => {
  const { table, lines } = makeTable();
  const d = table.lookup(proc(5, 9), 'x');
  table.forget(d.ino, 5);
  t.is(d.lookups, 0);
  t.true(d.released);
  t.is(table.counters().underflows, 1);
  t.true(lines.some((l) => l.level === 50 && /underflow/.test(String(l.msg))));
  table.forget(d.ino, 1);
  t.is(table.counters().underflows, 2, 'a forget of a released node is an underflow too, and changes nothing');
});

test('a FORGET that arrives after a newer LOOKUP only takes what it names', (t) => {
  const { table } = makeTable();
  const d = table.lookup(proc(8, 1), 'x');
  const again = table.lookup(proc(8, 1), 'x'); // the kernel looked it up again before forgetting
  t.is(again, d);
  table.forget(d.ino, 1);
  t.false(d.released);
  t.is(table.dentry(d.ino), d);
});

test('pins and opens keep a dentry whose lookups are gone', (t) => {
  const { table } = makeTable();
  const d = table.lookup(proc(3, 3), 'x');
  table.pin(d);
  table.open(d);
  table.forget(d.ino, 1);
  t.false(d.released);
  t.is(table.counters().pinned, 1);
  t.is(table.counters().open, 1);
  table.close(d);
  t.false(d.released);
  table.unpin(d);
  t.true(d.released);
  t.is(table.counters().pinned, 0);
});

test('a pinned handle of an exited process keeps its number and stays reachable by it', (t) => {
  const dropped: number[] = [];
  const { table } = makeTable({ events: { dropped: (i) => dropped.push(i.ino) } });
  const d = table.lookup(proc(77, 1), 'x');
  table.pin(d);
  table.forget(d.ino, 1);
  table.objectGone(proc(77, 1));
  t.true(table.isDead(d.inode));
  t.is(table.findByKey('process', 77), undefined);
  t.is(table.dentry(d.ino), d);
  t.deepEqual(dropped, []);
  table.unpin(d);
  t.deepEqual(dropped, [d.ino], 'the dead inode leaves the table once unreferenced');
  t.is(table.inode(d.ino), undefined);
  t.is(table.lookup(proc(77, 2), 'y').ino > d.ino, true, 'and its number is never given again');
});

test('an exit notification for an older incarnation leaves the newer one alone', (t) => {
  const { table } = makeTable();
  table.lookup(proc(9, 1), 'old');
  const fresh = table.lookup(proc(9, 2), 'new');
  table.objectGone(proc(9, 1));
  t.is(table.findByKey('process', 9), fresh.inode);
});

test('a dead object with no dentry leaves the table and the store at once', (t) => {
  const store = new MemoryStore();
  const { table } = makeTable({ store });
  const d = table.lookup(proc(4, 4), 'x');
  table.forget(d.ino, 1);
  t.is(store.records().length, 1, 'the live object keeps its row');
  table.objectGone(proc(4, 4));
  t.is(table.inode(d.ino), undefined);
  t.is(store.records().length, 0);
});

test('every number handed out is recorded in the store, and durable() waits for a dirty store', async (t) => {
  const store = new MemoryStore({ generation: 7 });
  const { table } = makeTable({ store, scope: 'boot-x' });
  t.is(table.durable(), undefined);
  const d = table.lookup(proc(11, 5), 'x');
  const pending = table.durable();
  t.truthy(pending);
  await pending;
  t.is(table.durable(), undefined);
  t.deepEqual(store.records(), [{ ino: d.ino, generation: 7, kind: 'process', key: 11, incarnation: 5, scope: 'boot-x' }]);
  table.lookup(proc(11, 5), 'x');
  t.is(table.durable(), undefined, 'a repeat lookup writes nothing');
});

test('restore keeps the same number for the same live object and allocates above the high-water mark', (t) => {
  const before = new MemoryStore();
  const { table: first } = makeTable({ store: before, scope: 'boot-a' });
  const pid1 = first.lookup(proc(1, 1), 'init').ino;
  const live = first.lookup(proc(500, 90), 'daemon').ino;
  const gone = first.lookup(proc(600, 95), 'exited').ino;
  const after = new MemoryStore({ highWater: before.highWater, records: before.records(), generation: 2 });
  const { table } = makeTable({ store: after, scope: 'boot-a' });
  const result = table.restore(after.load(), (r) => r.key !== 600);
  t.deepEqual(result, { kept: 2, pruned: 1 });
  const again1 = table.lookup(proc(1, 1), 'init');
  t.is(again1.ino, pid1);
  t.is(again1.inode.generation, 1, 'the generation it was issued with');
  t.is(table.lookup(proc(500, 90), 'daemon').ino, live);
  const fresh = table.lookup(proc(600, 99), 'new');
  t.true(fresh.ino > gone && fresh.ino > live);
  t.is(fresh.inode.generation, 2);
});

test('restore prunes rows of another scope (another boot)', (t) => {
  const store = new MemoryStore({
    records: [
      { ino: 2000, generation: 1, kind: 'process', key: 1, incarnation: 1, scope: 'old-boot' },
      { ino: 2001, generation: 1, kind: 'process', key: 2, incarnation: 1, scope: 'boot-a' },
    ],
  });
  const { table } = makeTable({ store, scope: 'boot-a' });
  t.deepEqual(table.restore(store.load()), { kept: 1, pruned: 1 });
  t.is(table.inode(2000), undefined);
  t.truthy(table.inode(2001));
  t.true(table.lookup(proc(1, 1), 'init').ino > 2001);
});

test('restore keeps only the newest incarnation of a key', (t) => {
  const store = new MemoryStore({
    records: [
      { ino: 3001, generation: 1, kind: 'process', key: 5, incarnation: 9, scope: 's' },
      { ino: 3000, generation: 1, kind: 'process', key: 5, incarnation: 4, scope: 's' },
      { ino: 3002, generation: 1, kind: 'process', key: 6, incarnation: 1, scope: 's' },
      { ino: 3003, generation: 1, kind: 'process', key: 6, incarnation: 3, scope: 's' },
    ],
  });
  const { table } = makeTable({ store, scope: 's' });
  t.deepEqual(table.restore(store.load()), { kept: 2, pruned: 2 });
  t.is(table.findByKey('process', 5)!.ino, 3001);
  t.is(table.findByKey('process', 6)!.ino, 3003);
  t.deepEqual(store.records().map((r) => r.ino).sort(), [3001, 3003]);
});

test('restore refuses rows at or above the high-water mark (a store that lost its mark)', (t) => {
  const store = new MemoryStore();
  const { table } = makeTable({ store });
  t.throws(() => table.restore([{ ino: store.highWater + 5, generation: 1, kind: 'p', key: 7, incarnation: 1, scope: 'boot-a' }]), {
    message: /high-water/,
  });
});

test('32 concurrent first lookups of one new object across awaits give one inode and one dentry', async (t) => {
  const { table } = makeTable<{ pid: number }>();
  const flight = new SingleFlight<number, { pid: number; start: number }>();
  let reads = 0;
  const readProc = () =>
    flight.run(4242, async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 5));
      return { pid: 4242, start: 77 };
    });
  const results = await Promise.all(
    Array.from({ length: 32 }, async (_, i) => {
      // Half share the single flight, half read on their own: the table must hold either way.
      const info = i % 2 === 0 ? await readProc() : await new Promise<{ pid: number; start: number }>((r) => setTimeout(() => r({ pid: 4242, start: 77 }), i % 7));
      await new Promise((r) => setImmediate(r));
      return table.lookup(proc(info.pid, info.start), { pid: info.pid });
    }),
  );
  t.is(new Set(results).size, 1);
  t.is(results[0]!.lookups, 32);
  t.is(table.counters().allocations, 1);
  t.is(reads, 1);
});

const ns = (inum: number, id: number): Identity => ({ kind: 'namespace', key: inum, incarnation: id });

test('equality kinds: a different, smaller incarnation is another object and replaces the entry', (t) => {
  const deaths: number[] = [];
  const { table } = makeTable({ events: { dead: (inode) => deaths.push(inode.ino) }, incarnations: { namespace: 'equality' } });
  const old = table.lookup(ns(0xf0000000, 900), 'old namespace');
  // The kernel's ids come in per-CPU batches: a namespace created later can have a smaller one.
  const fresh = table.lookup(ns(0xf0000000, 17), 'new namespace');
  t.not(fresh, old);
  t.true(fresh.ino > old.ino, 'a new, larger number');
  t.deepEqual(deaths, [old.ino]);
  t.is(table.findByKey('namespace', 0xf0000000), fresh.inode);
  t.is(table.dentry(old.ino)!.object, 'old namespace', 'the old handle stays reachable by number and never shows the new one');
  // Processes in the same table keep their order.
  table.lookup(proc(42, 200), 'p');
  t.throws(() => table.lookup(proc(42, 100), 'stale'), { instanceOf: StaleIdentityError });
  t.is(table.orderOf('namespace'), 'equality');
  t.is(table.orderOf('process'), 'ordered');
});

test('restore: of two rows of one key of an equality kind, the later-issued number wins', (t) => {
  const store = new MemoryStore();
  const { table: first } = makeTable({ store, incarnations: { namespace: 'equality' } });
  const a = first.lookup(ns(0xf0000001, 900), 'a');
  first.markDead(a.inode); // still referenced: its row stays
  const b = first.lookup(ns(0xf0000001, 17), 'b');
  const rows = [...store.load()];
  t.is(rows.filter((r) => r.key === 0xf0000001).length, 2);
  const { table } = makeTable({ store, incarnations: { namespace: 'equality' } });
  table.restore(rows);
  t.is(table.findByKey('namespace', 0xf0000001)!.ino, b.ino);
  t.is(table.inode(a.ino), undefined);
});

test('the identity index is keyed by kind and key: equal keys of two kinds are two objects', (t) => {
  const { table } = makeTable({ incarnations: { namespace: 'equality' } });
  // Nothing keeps the kinds' numbers apart any more: a pid may equal an nsfs inode number.
  const p = table.lookup(proc(4026531840, 7), 'process');
  const n = table.lookup(ns(4026531840, 7), 'namespace');
  t.not(p, n);
  t.is(table.findByKey('process', 4026531840), p.inode);
  t.is(table.findByKey('namespace', 4026531840), n.inode);
  t.false(table.isDead(p.inode));
  t.false(table.isDead(n.inode));
  table.objectGone(ns(4026531840, 7));
  t.true(table.isDead(n.inode));
  t.false(table.isDead(p.inode), 'the other kind\'s entry under the same key lives on');
  t.is(table.findByKey('process', 4026531840), p.inode);
});

test('restore: rows of two kinds under one key are both kept', (t) => {
  const store = new MemoryStore({
    records: [
      { ino: 3000, generation: 1, kind: 'process', key: 4026531840, incarnation: 9, scope: 's' },
      { ino: 3001, generation: 1, kind: 'namespace', key: 4026531840, incarnation: 3, scope: 's' },
    ],
  });
  const { table } = makeTable({ store, scope: 's', incarnations: { namespace: 'equality' } });
  t.deepEqual(table.restore(store.load()), { kept: 2, pruned: 0 });
  t.is(table.findByKey('process', 4026531840)!.ino, 3000);
  t.is(table.findByKey('namespace', 4026531840)!.ino, 3001);
});
