import test from 'ava';
import { Container } from 'inversify';
import { pino } from 'pino';
import { coreModule } from '../../src/core/module.js';
import { MemoryStore } from '../../src/core/memory-store.js';
import { CORE } from '../../src/core/tokens.js';
import { Errno } from '../../src/fuse/abi.js';
import { FUSE_TOKENS } from '../../src/fuse/tokens.js';
import { FakeHost, createFakeSourcesModule } from '../../src/testing/fake-sources.js';
import { HandleTree } from '../../src/tree/handle-fs.js';
import { BY_INO_DIR, PID_DIR, nsTypeDir } from '../../src/tree/layout.js';
import { createTreeModule } from '../../src/tree/module.js';
import { RECORD_COMMIT_MS } from '../../src/tree/process-handles.js';
import { ManualTimers } from '../../src/tree/timers.js';
import { TREE } from '../../src/tree/tokens.js';
import { LOGGER } from '../../src/tokens.js';
import { connection, errnoOf, FlakyStore, makeTree, rc, RecordingNotifier } from './harness.js';

test('write-ahead: a lookup whose number cannot be made durable answers EIO and gives the lookup back', async (t) => {
  const store = new FlakyStore();
  const h = makeTree({ store });
  const p = h.host.start();
  store.failing = true;
  t.is(await errnoOf(h.lookup(PID_DIR, String(p.pid))), Errno.EIO);
  const inode = h.table.findByKey('process', p.pid)!;
  t.is(inode.dentry, null, 'no kernel reference left behind');
  t.is(h.table.counters().underflows, 0);
  t.is(h.host.pendingExitWatches, 0);
  t.is(await errnoOf(h.readdir(PID_DIR)), Errno.EIO, 'listings reveal numbers too');
  t.is(await errnoOf(h.readdir(PID_DIR, { plus: true })), Errno.EIO);
  t.is(h.table.counters().dentries, 0, 'READDIRPLUS references were given back');
  store.failing = false;
  const e = await h.lookup(PID_DIR, String(p.pid));
  t.is(e.nodeId, inode.ino, 'the number, once durable, is the one the object had');
  t.is(h.table.dentry(e.nodeId)!.lookups, 1);
});

/** A MemoryStore whose flushes wait while it is held (a slow fsync of someone else's row). */
class GatedStore extends MemoryStore {
  private gate: { promise: Promise<void>; open: () => void } | null = null;
  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    this.gate = { promise, open };
  }
  release(): void {
    this.gate?.open();
    this.gate = null;
  }
  override flush(): Promise<void> {
    const g = this.gate;
    return g === null ? super.flush() : g.promise.then(() => super.flush());
  }
}

function within<T>(p: Promise<T>, ms: number): Promise<T | 'timed out'> {
  return Promise.race([p, new Promise<'timed out'>((r) => setTimeout(() => r('timed out'), ms))]);
}

test('durability is per number: known handles answer while another number waits for its commit, which is revealed only after it', async (t) => {
  const store = new GatedStore();
  const h = makeTree({ store });
  const old = h.host.start();
  const dormant = h.host.start();
  const e = await h.lookup(PID_DIR, String(old.pid));
  const ed = await h.lookup(PID_DIR, String(dormant.pid));
  h.forget(ed.nodeId); // the kernel forgot it: its next lookup reads the host again
  store.hold();
  const fresh = h.host.start();
  let revealed = false;
  const pf = h.lookup(PID_DIR, String(fresh.pid)).then((x) => {
    revealed = true;
    return x;
  });
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  t.false(revealed, 'a new number is not revealed before its row is durable');

  const r = h.tree.lookup(rc(), PID_DIR, String(old.pid));
  t.false(r instanceof Promise, 'a known, watched handle is answered in the same turn');
  t.is((r as { nodeId: number }).nodeId, e.nodeId);
  h.forget(e.nodeId);
  const again = await within(h.lookup(PID_DIR, String(dormant.pid)), 2000);
  t.not(again, 'timed out', 'a number committed earlier does not wait for another row\'s commit');
  t.is((again as { nodeId: number }).nodeId, ed.nodeId);
  t.is((await within(h.lookup(BY_INO_DIR, String(e.nodeId)), 2000) as { nodeId: number }).nodeId, e.nodeId);
  t.false(revealed);

  store.release();
  t.true((await pf).nodeId > ed.nodeId);
});

test('write-ahead: an OPEN whose text would show a new number waits for it, and fails without it', async (t) => {
  const store = new FlakyStore();
  const h = makeTree({ store });
  const net = h.host.createNamespace('net');
  const p = h.host.start();
  h.host.enter(p.pid, 'net', net.inum);
  const e = await h.lookup(PID_DIR, String(p.pid));
  store.failing = true;
  t.is(await errnoOf(h.tree.open(rc(), e.nodeId, 0)), Errno.EIO, 'Ns.* lines would reveal new namespace numbers');
  t.is(h.table.counters().open, 0);
  store.failing = false;
  t.true((await h.readFile(e.nodeId)).includes('Ns.net:\t'));
});

test('restore: the same process keeps its number across a restart; new numbers stay above', async (t) => {
  const host = new FakeHost();
  const store1 = new MemoryStore();
  const h1 = makeTree({ host, store: store1 });
  const p = host.start({ comm: 'long-lived' });
  const gone = host.start();
  const e = await h1.lookup(PID_DIR, String(p.pid));
  const eg = await h1.lookup(PID_DIR, String(gone.pid));
  const en = await h1.lookup(nsTypeDir('net'), String(host.initialNamespace('net')));
  h1.tree.destroy();
  host.exit(gone.pid);
  const store2 = new MemoryStore({ records: store1.records(), highWater: store1.highWater });
  const h2 = makeTree({ host, store: store2 });
  t.is((await h2.lookup(PID_DIR, String(p.pid))).nodeId, e.nodeId, 'same object, same number after restart');
  t.is((await h2.lookup(BY_INO_DIR, String(en.nodeId))).nodeId, en.nodeId, 'a restored namespace by number');
  t.is(await errnoOf(h2.lookup(BY_INO_DIR, String(eg.nodeId))), Errno.ENOENT, 'exited while we were down');
  const fresh = await h2.lookup(PID_DIR, String(host.start().pid));
  t.true(fresh.nodeId >= store1.highWater);
});

test('restore: a restored inode of a process that exited meanwhile is swept; rows of another boot are pruned', async (t) => {
  const host = new FakeHost();
  const store1 = new MemoryStore();
  const h1 = makeTree({ host, store: store1 });
  const a = host.start();
  const ea = await h1.lookup(PID_DIR, String(a.pid));
  h1.tree.destroy();
  host.exit(a.pid);
  const other = { ino: 5000, generation: 1, kind: 'process', key: 77, incarnation: 1, scope: 'another-boot' };
  const bogus = { ino: 5001, generation: 1, kind: 'process', key: 0xf0000000, incarnation: 1, scope: host.hostIds.bootId };
  const store2 = new MemoryStore({ records: [...store1.records(), other, bogus], highWater: 6000 });
  const h2 = makeTree({ host, store: store2 });
  t.is(h2.table.inode(5000), undefined);
  t.is(h2.table.inode(5001), undefined);
  t.truthy(h2.table.inode(ea.nodeId), 'dormant until validated');
  h2.timers.advance(0);
  await h2.settle();
  t.is(h2.table.inode(ea.nodeId), undefined, 'the start-up sweep found it gone');
  t.false(store2.records().some((r) => r.ino === ea.nodeId));
});

test('treeModule wires the tree into a container: table events, FUSE FileSystem, restore', async (t) => {
  const host = new FakeHost();
  const store = new MemoryStore();
  const container = new Container();
  container.bind(LOGGER).toConstantValue(pino({ level: 'silent' }));
  container.bind(CORE.Store).toConstantValue(store);
  container.bind(TREE.Timers).toConstantValue(new ManualTimers(host.clock));
  await container.load(coreModule, createFakeSourcesModule(host), createTreeModule({ bindScope: true }));
  const tree = container.get<HandleTree>(TREE.HandleTree);
  t.true(tree instanceof HandleTree);
  t.is(container.get(FUSE_TOKENS.FileSystem), tree);
  t.is(container.get(CORE.Table), tree.table);
  const notifier = new RecordingNotifier();
  tree.init(connection(60), notifier);
  const p = host.start();
  const e = await tree.lookup(rc(), PID_DIR, String(p.pid));
  t.is(e.entryTimeout, 60);
  host.exit(p.pid);
  t.true(notifier.notes.some((n) => n.op === 'invalInode' && n.ino === e.nodeId), 'the table’s events reach the tree');
  await container.unbindAll();
});

test('a table whose scope is not the sources\' identity scope (the boot id) is refused', async (t) => {
  const host = new FakeHost();
  const container = new Container();
  container.bind(LOGGER).toConstantValue(pino({ level: 'silent' }));
  container.bind(CORE.Store).toConstantValue(new MemoryStore());
  container.bind(CORE.Scope).toConstantValue('not-the-boot');
  await container.load(coreModule, createFakeSourcesModule(host), createTreeModule());
  t.throws(() => container.get(TREE.HandleTree), { message: /identity scope/ });
});

test('a new mount clears the records of the handles an earlier mount referenced; a later successor adopts none of them', async (t) => {
  const host = new FakeHost();
  const store1 = new MemoryStore();
  const h1 = makeTree({ host, store: store1 });
  const p = host.start({ comm: 'kept' });
  const e = await h1.lookup(PID_DIR, String(p.pid));
  await h1.settle();
  await store1.flush();
  t.truthy(store1.records().find((r) => r.ino === e.nodeId)?.state, 'referenced by the kernel: recorded for a successor');
  h1.tree.destroy();
  // umount, then mount again: the new kernel connection references nothing.
  const store2 = new MemoryStore({ records: store1.records(), highWater: store1.highWater });
  const h2 = makeTree({ host, store: store2 });
  await h2.settle();
  await store2.flush();
  const row = store2.records().find((r) => r.ino === e.nodeId);
  t.truthy(row, 'the row (the number) stays');
  t.falsy(row?.state, 'its record goes');
  h2.tree.destroy();
  // A crash of that service: its successor adopts only what that mount's kernel referenced.
  const store3 = new MemoryStore({ records: store2.records(), highWater: store2.highWater });
  const h3 = makeTree({ host, store: store3, tree: { resumed: true } });
  t.is(h3.tree.adoptStats.nodes, 0);
  t.is(h3.table.inode(e.nodeId)?.dentry ?? null, null, 'dormant, not held');
  t.is((await h3.lookup(PID_DIR, String(p.pid))).nodeId, e.nodeId, 'and keeps its number');
});

test('records are committed within RECORD_COMMIT_MS even when no new number is (a crash must not bring back forgotten handles)', async (t) => {
  const store = new MemoryStore();
  const h = makeTree({ store, tree: { sweepIntervalMs: 0 } });
  const p = h.host.start({ comm: 'recorded' }).pid;
  const e = await h.lookup(PID_DIR, String(p));
  await h.settle();
  h.timers.advance(RECORD_COMMIT_MS);
  await h.settle();
  t.false(store.dirty, 'the record of the new handle is committed');
  t.truthy(store.records().find((r) => r.ino === e.nodeId)?.state);
  h.tree.forget(e.nodeId, 1); // the kernel forgets it: the record goes
  await h.settle();
  t.true(store.dirty, 'the change waits for a commit');
  t.falsy(store.records().find((r) => r.ino === e.nodeId)?.state);
  h.timers.advance(RECORD_COMMIT_MS - 1);
  t.true(store.dirty, 'not at once: changes within the interval share one commit');
  h.timers.advance(1);
  await h.settle();
  t.false(store.dirty, 'committed without any new number');
});

