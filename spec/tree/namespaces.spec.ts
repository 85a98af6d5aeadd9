import test from 'ava';
import { Errno, S_IFREG } from '../../src/fuse/abi.js';
import { BY_INO_DIR, PID_DIR, nsTypeDir } from '../../src/tree/layout.js';
import { NsObject } from '../../src/tree/namespace-handles.js';
import { errnoOf, fields, makeTree, rc, type Harness } from './harness.js';

/** A network namespace that only a process holds (like `unshare --net sleep`), and that process. */
function privateNet(h: Harness) {
  const net = h.host.createNamespace('net', { pinned: false });
  const p = h.host.start({ comm: 'sleep' });
  h.host.enter(p.pid, 'net', net.inum);
  return { net, p };
}

test('ns/<type>/<inum>: one handle per namespace, 0400 root, same node through by-ino', async (t) => {
  const h = makeTree();
  const { net } = privateNet(h);
  const e = await h.lookup(nsTypeDir('net'), String(net.inum));
  t.is(e.attr.mode, S_IFREG | 0o400);
  t.is(e.attr.uid, 0);
  t.is(e.attr.ino, e.nodeId);
  t.is((await h.lookup(BY_INO_DIR, String(e.nodeId))).nodeId, e.nodeId);
  t.is((await h.lookup(nsTypeDir('net'), String(net.inum))).nodeId, e.nodeId);
  t.is(await errnoOf(h.lookup(nsTypeDir('ipc'), String(net.inum))), Errno.ENOENT, 'wrong type');
  const listed = (await h.readdir(nsTypeDir('net'), { plus: true })).find((x) => x.name === String(net.inum))!;
  t.is(listed.entry!.nodeId, e.nodeId);
  t.deepEqual(
    (await h.readdir(nsTypeDir('net'))).slice(2).map((x) => Number(x.name)),
    [h.host.initialNamespace('net'), net.inum],
    'inum order',
  );
});

test('what a namespace handle reads: type, ids, owner and parent handles, pins', async (t) => {
  const h = makeTree();
  const user = h.host.createNamespace('user');
  const pidns = h.host.createNamespace('pid', { owner: user.inum });
  const e = await h.lookup(nsTypeDir('pid'), String(pidns.inum));
  const f = fields(await h.readFile(e.nodeId));
  t.is(f.Type, 'pid');
  t.is(f.NsId, String(pidns.inum));
  t.is(f.KernelId, pidns.nsId!);
  t.is(f.Ino, String(e.nodeId));
  t.is(f.Generation, '1');
  t.is(f.Owner, String((await h.lookup(nsTypeDir('user'), String(user.inum))).nodeId));
  t.is(f.Parent, String((await h.lookup(nsTypeDir('pid'), String(h.host.initialNamespace('pid')))).nodeId));
  t.is(f.Pinned, 'no\t0');
  t.is(f.Held, 'yes');
  t.is(f.Handle, `${h.host.hostIds.machineId}:${h.host.hostIds.bootId}:${e.nodeId}`);
  const initUser = fields(await h.readFile((await h.lookup(nsTypeDir('user'), String(h.host.initialNamespace('user')))).nodeId));
  t.is(initUser.Owner, 'none');
  t.is(initUser.Parent, 'none');
  const net = fields(await h.readFile((await h.lookup(nsTypeDir('net'), String(h.host.initialNamespace('net')))).nodeId));
  t.false('Parent' in net, 'only pid and user namespaces have parents');
  const d = h.table.dentry(e.nodeId)!;
  h.table.pin(d);
  t.is(fields(await h.readFile(e.nodeId)).Pinned, 'yes\t1');
  h.table.unpin(d);
});

test('a process line and the namespace handle agree; initial namespaces have their fixed inums', async (t) => {
  const h = makeTree();
  const { net, p } = privateNet(h);
  const f = fields(await h.readFile((await h.lookup(PID_DIR, String(p.pid))).nodeId));
  const n = await h.lookup(nsTypeDir('net'), String(net.inum));
  t.is(f['Ns.net'], String(n.nodeId));
  const m = await h.lookup(nsTypeDir('mnt'), String(0xeffffff8));
  t.is(f['Ns.mnt'], String(m.nodeId));
});

test('stat only: after the grace the kernel is asked to drop the names; FORGET then closes the hold', async (t) => {
  const h = makeTree();
  const { net, p } = privateNet(h);
  const e = await h.lookup(nsTypeDir('net'), String(net.inum));
  t.is(h.host.heldBy('net', net.inum), 1);
  h.host.exit(p.pid);
  t.true(h.host.namespaceAlive('net', net.inum), 'our hold keeps it while the kernel may use it');
  h.notifier.clear();
  h.timers.advance(1999);
  t.deepEqual(h.notifier.notes, []);
  h.timers.advance(1);
  t.deepEqual(h.notifier.notes, [
    { op: 'invalEntry', parent: nsTypeDir('net'), name: String(net.inum) },
    { op: 'invalEntry', parent: BY_INO_DIR, name: String(e.nodeId) },
  ]);
  t.true(h.host.namespaceAlive('net', net.inum));
  h.tree.forget(e.nodeId, 1); // the kernel dropped its unused dentry
  t.is(h.host.heldBy('net', net.inum), 0);
  t.false(h.host.namespaceAlive('net', net.inum), 'a mere stat does not keep a namespace alive');
  await h.settle(); // the first sweep (at start) completes and schedules the next
  h.timers.advance(10_000);
  await h.settle();
  t.is(h.table.inode(e.nodeId), undefined, 'the dormant inode of a dead namespace is swept');
});

test('a FORGET before the grace ends: the hold is closed when the grace ends', async (t) => {
  const h = makeTree();
  const { net, p } = privateNet(h);
  const e = await h.lookup(nsTypeDir('net'), String(net.inum));
  h.host.exit(p.pid);
  h.timers.advance(500);
  h.tree.forget(e.nodeId, 1);
  t.is(h.host.heldBy('net', net.inum), 1);
  h.timers.advance(1500);
  t.is(h.host.heldBy('net', net.inum), 0);
  t.false(h.host.namespaceAlive('net', net.inum));
});

test('bind-mount-like: lookups never forgotten keep the hold after the grace and the last process', async (t) => {
  const h = makeTree();
  const { net, p } = privateNet(h);
  const e = await h.lookup(nsTypeDir('net'), String(net.inum));
  h.host.exit(p.pid);
  h.timers.advance(2000);
  t.is(h.notifier.notes.filter((n) => n.op === 'invalEntry').length, 2);
  h.timers.advance(60_000);
  t.is(h.notifier.notes.filter((n) => n.op === 'invalEntry').length, 2, 'asked once per idle period');
  t.true(h.host.namespaceAlive('net', net.inum));
  t.is(h.host.heldBy('net', net.inum), 1);
  const f = fields(await h.readFile(e.nodeId));
  t.is(f.Held, 'yes');
  t.is(f.NsId, String(net.inum));
  // umount of the bind mount: the kernel forgets, the namespace goes.
  h.timers.advance(2000);
  h.tree.forget(e.nodeId, 1);
  t.false(h.host.namespaceAlive('net', net.inum));
});

test('an open descriptor keeps the hold; release starts the grace again', async (t) => {
  const h = makeTree();
  const { net, p } = privateNet(h);
  const e = await h.lookup(nsTypeDir('net'), String(net.inum));
  const { fh } = await h.tree.open(rc(), e.nodeId, 0);
  h.host.exit(p.pid);
  h.notifier.clear();
  h.timers.advance(30_000);
  t.deepEqual(h.notifier.notes, [], 'in use: no invalidation');
  t.true(h.host.namespaceAlive('net', net.inum));
  h.tree.release(rc(), e.nodeId, fh);
  h.timers.advance(2000);
  t.is(h.notifier.notes.length, 2);
  h.tree.forget(e.nodeId, 1);
  t.false(h.host.namespaceAlive('net', net.inum));
});

test('a library pin (InodeTable.pin) keeps the hold without kernel lookups', async (t) => {
  const h = makeTree();
  const { net, p } = privateNet(h);
  const e = await h.lookup(nsTypeDir('net'), String(net.inum));
  const d = h.table.dentry(e.nodeId)!;
  h.table.pin(d);
  h.tree.forget(e.nodeId, 1);
  h.host.exit(p.pid);
  h.timers.advance(60_000);
  t.true(h.host.namespaceAlive('net', net.inum));
  t.is(h.notifier.notes.filter((n) => n.op === 'invalEntry').length, 0, 'pinned: not idle');
  h.table.unpin(d);
  t.false(h.host.namespaceAlive('net', net.inum), 'unpinned after the grace: closed at release');
});

test('re-opening a closed hold: by-ino and OPEN re-validate; a gone namespace is ENOENT / ESTALE', async (t) => {
  const h = makeTree({ tree: { sweepIntervalMs: 0 } });
  const { net, p } = privateNet(h);
  const e = await h.lookup(nsTypeDir('net'), String(net.inum));
  h.tree.forget(e.nodeId, 1);
  h.timers.advance(2000);
  t.is(h.host.heldBy('net', net.inum), 0, 'dormant');
  const again = await h.lookup(BY_INO_DIR, String(e.nodeId));
  t.is(again.nodeId, e.nodeId, 'still alive (its process is in it): same number');
  t.is(h.host.heldBy('net', net.inum), 1, 'held again');
  const o = h.table.inode(e.nodeId)!.object as NsObject;
  t.true(o instanceof NsObject && o.held);
  h.tree.forget(e.nodeId, 1);
  h.timers.advance(2000);
  h.host.exit(p.pid);
  t.false(h.host.namespaceAlive('net', net.inum));
  t.is(await errnoOf(h.lookup(BY_INO_DIR, String(e.nodeId))), Errno.ENOENT);
  t.is(h.table.inode(e.nodeId), undefined);
});

test('an inum reused by a new namespace gets a new number; the old one is never shown', async (t) => {
  const h = makeTree({ tree: { sweepIntervalMs: 0 } });
  const { net, p } = privateNet(h);
  const e = await h.lookup(nsTypeDir('net'), String(net.inum));
  h.tree.forget(e.nodeId, 1);
  h.timers.advance(2000);
  h.host.exit(p.pid);
  const net2 = h.host.createNamespace('net');
  t.is(net2.inum, net.inum, 'nsfs reuses the number');
  const e2 = await h.lookup(nsTypeDir('net'), String(net2.inum));
  t.true(e2.nodeId > e.nodeId);
  t.is(fields(await h.readFile(e2.nodeId)).KernelId, net2.nsId!);
  t.is(await errnoOf(h.lookup(BY_INO_DIR, String(e.nodeId))), Errno.ENOENT);
});

test('racing first lookups of a namespace open it once; losers give their hold back', async (t) => {
  const h = makeTree();
  const { net } = privateNet(h);
  const entries = await Promise.all(Array.from({ length: 16 }, () => h.lookup(nsTypeDir('net'), String(net.inum))));
  t.is(new Set(entries.map((e) => e.nodeId)).size, 1);
  t.is(h.host.heldBy('net', net.inum), 1);
  t.is(h.tree.namespaces.opens, 1);
});

test('reading a process handle counts as a use of its namespaces: reads within the grace period reopen none', async (t) => {
  const h = makeTree();
  const { net, p } = privateNet(h);
  const e = await h.lookup(PID_DIR, String(p.pid));
  await h.readFile(e.nodeId);
  await h.advance(5000); // past the grace period: the holds taken for the first read close
  await h.readFile(e.nodeId);
  const opens = h.tree.namespaces.opens;
  for (let i = 0; i < 3; i++) {
    await h.advance(500);
    await h.readFile(e.nodeId);
  }
  t.is(h.tree.namespaces.opens, opens, 'no namespace reopened by reads 500 ms apart');
  await h.advance(5000);
  t.is(h.host.heldBy('net', net.inum), 0, 'idle for the grace period: the holds are closed');
});

test('a namespace kept only by a bind-mounted handle is still listed', async (t) => {
  const h = makeTree();
  const { net, p } = privateNet(h);
  await h.lookup(nsTypeDir('net'), String(net.inum));
  h.host.exit(p.pid);
  h.timers.advance(5000);
  const names = (await h.readdir(nsTypeDir('net'))).map((x) => x.name);
  t.true(names.includes(String(net.inum)));
});

test('a new namespace reusing an nsfs number with a smaller kernel id is served at once (ids have no order)', async (t) => {
  const h = makeTree();
  const old = h.host.createNamespace('net', { pinned: false, nsId: '9000' });
  const p = h.host.start({ comm: 'old' });
  h.host.enter(p.pid, 'net', old.inum);
  const e = await h.lookup(nsTypeDir('net'), String(old.inum));
  h.tree.forget(e.nodeId, 1);
  h.host.exit(p.pid);
  h.timers.advance(2000); // the grace ends: the hold is closed, the inode is dormant
  t.false(h.host.namespaceAlive('net', old.inum));
  t.not(h.table.inode(e.nodeId), undefined, 'dormant until the sweep');
  // The kernel reuses the number for a namespace whose id came from a lower per-CPU batch.
  const fresh = h.host.createNamespace('net', { pinned: false, inum: old.inum, nsId: '12' });
  const q = h.host.start({ comm: 'new' });
  h.host.enter(q.pid, 'net', fresh.inum);
  const e2 = await h.lookup(nsTypeDir('net'), String(fresh.inum));
  t.true(e2.nodeId > e.nodeId, 'the new namespace gets a new, larger number without waiting for a sweep');
  t.is(fields(await h.readFile(e2.nodeId)).KernelId, '12');
  t.is(await errnoOf(h.lookup(BY_INO_DIR, String(e.nodeId))), Errno.ENOENT, 'the old number is dead');
  t.is((await h.readdir(nsTypeDir('net'))).filter((x) => x.name === String(fresh.inum)).length, 1);
  t.is((await h.lookup(PID_DIR, String(q.pid))).nodeId > 0, true);
  t.is(fields(await h.readFile((await h.lookup(PID_DIR, String(q.pid))).nodeId))['Ns.net'], String(e2.nodeId), "a process's Ns line names the new handle");
});

test('the sweep checks dormant namespaces without taking holds (a keeper would drop its copy at their release)', async (t) => {
  const h = makeTree({ tree: { sweepIntervalMs: 0 } });
  const kept = h.host.createNamespace('net', { pinned: true });
  const gone = h.host.createNamespace('net', { pinned: false });
  const p = h.host.start({ comm: 'p' });
  h.host.enter(p.pid, 'net', gone.inum);
  const a = await h.lookup(nsTypeDir('net'), String(kept.inum));
  const b = await h.lookup(nsTypeDir('net'), String(gone.inum));
  h.tree.forget(a.nodeId, 1);
  h.tree.forget(b.nodeId, 1);
  h.timers.advance(2000); // the grace ends: both holds are closed, both inodes dormant
  h.host.exit(p.pid);
  t.is(h.host.heldBy('net', kept.inum), 0);
  const source = h.host.namespaceSource;
  const opened: number[] = [];
  const open = source.open.bind(source);
  source.open = (type, inum, nsId) => {
    opened.push(inum);
    return open(type, inum, nsId);
  };
  await h.tree.sweep();
  t.deepEqual(opened, [], 'no hold opened');
  t.not(h.table.inode(a.nodeId), undefined, 'a namespace still reachable stays');
  t.false(h.table.isDead(h.table.inode(a.nodeId)!));
  t.is(h.table.inode(b.nodeId), undefined, 'a gone one is found dead (and dropped: nothing references it)');
});
