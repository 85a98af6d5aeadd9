import test from 'ava';
import { Errno, S_IFDIR, S_IFREG } from '../../src/fuse/abi.js';
import { FIRST_DYNAMIC_INO } from '../../src/core/numbers.js';
import { BY_INO_DIR, NS_DIR, PID_DIR, ROOT_DIR, nsTypeDir } from '../../src/tree/layout.js';
import { SWEEP_READS } from '../../src/tree/process-handles.js';
import { errnoOf, fields, makeTree, rc } from './harness.js';

test('static layout: root, pid, ns/<type>, by-ino with fixed numbers and 0555 root:root', async (t) => {
  const h = makeTree();
  t.deepEqual(
    (await h.readdir(ROOT_DIR)).map((e) => [e.name, e.ino]),
    [['.', 1], ['..', 1], ['pid', 2], ['ns', 3], ['by-ino', 12]],
  );
  t.deepEqual(
    (await h.readdir(NS_DIR)).slice(2).map((e) => [e.name, e.ino]),
    [['cgroup', 4], ['ipc', 5], ['mnt', 6], ['net', 7], ['pid', 8], ['time', 9], ['user', 10], ['uts', 11]],
  );
  for (const [parent, name, ino] of [[ROOT_DIR, 'pid', PID_DIR], [ROOT_DIR, 'ns', NS_DIR], [NS_DIR, 'net', nsTypeDir('net')], [ROOT_DIR, 'by-ino', BY_INO_DIR]] as const) {
    const e = await h.lookup(parent, name);
    t.is(e.nodeId, ino);
    t.is(e.attr.ino, ino);
    t.is(e.generation, 1);
    t.is(e.attr.mode, S_IFDIR | 0o555);
    t.is(e.attr.uid, 0);
    t.is(e.entryTimeout, 3600, 'timeouts come from the connection');
  }
  t.is((await h.lookup(NS_DIR, '..')).nodeId, ROOT_DIR);
  t.is((await h.lookup(nsTypeDir('uts'), '.')).nodeId, nsTypeDir('uts'));
  h.tree.forget(PID_DIR, 5); // ignored, no underflow
  t.is(h.table.counters().underflows, 0);
  t.is(await errnoOf(async () => h.tree.getattr(rc(), 99_999)), Errno.ENOENT);
});

test('identity across routes: pid/<pid>, by-ino/<ino>, ".", getattr, READDIR and READDIRPLUS agree', async (t) => {
  const h = makeTree();
  const p = h.host.start({ comm: 'sleep', uid: 1000, gid: 100 });
  const byPid = await h.lookup(PID_DIR, String(p.pid));
  t.true(byPid.nodeId >= FIRST_DYNAMIC_INO);
  t.is(byPid.attr.ino, byPid.nodeId, 'node id == st_ino');
  t.is(byPid.attr.mode, S_IFREG | 0o444);
  t.is(byPid.attr.uid, 1000, 'owned by the effective uid, like /proc/PID/status');
  t.is(byPid.attr.gid, 100);
  const byIno = await h.lookup(BY_INO_DIR, String(byPid.nodeId));
  t.is(byIno.nodeId, byPid.nodeId);
  t.is(byIno.generation, byPid.generation);
  t.deepEqual(byIno.attr, byPid.attr);
  t.is((await h.lookup(byPid.nodeId, '.')).nodeId, byPid.nodeId);
  t.is((await h.tree.getattr(rc(), byPid.nodeId)).attr.ino, byPid.nodeId);
  const plain = (await h.readdir(PID_DIR)).find((e) => e.name === String(p.pid))!;
  t.is(plain.ino, byPid.nodeId, 'd_ino agrees with stat');
  const plus = (await h.readdir(PID_DIR, { plus: true })).find((e) => e.name === String(p.pid))!;
  t.is(plus.entry!.nodeId, byPid.nodeId);
  t.is(plus.entry!.attr.ino, byPid.nodeId);
  t.is(h.table.dentry(byPid.nodeId)!.lookups, 4, 'pid lookup + by-ino + "." + one READDIRPLUS entry');
  const text = fields(await h.readFile(byPid.nodeId));
  t.is(text.Ino, String(byPid.nodeId));
  t.is(text.Handle, `${h.host.hostIds.machineId}:${h.host.hostIds.bootId}:${byPid.nodeId}`);
});

test('numbers are allocated in increasing order, from 1024, and never twice', async (t) => {
  const h = makeTree();
  const seen: number[] = [];
  for (let i = 0; i < 40; i++) {
    const p = h.host.start();
    seen.push((await h.lookup(PID_DIR, String(p.pid))).nodeId);
    if (i % 3 === 0) h.host.exit(p.pid);
  }
  t.true(seen[0]! >= FIRST_DYNAMIC_INO);
  for (let i = 1; i < seen.length; i++) t.true(seen[i]! > seen[i - 1]!);
});

test('32 concurrent first lookups of one new process: one /proc read, one inode, 32 lookups', async (t) => {
  const h = makeTree();
  const p = h.host.start({ comm: 'new' });
  const before = h.table.counters().allocations;
  const entries = await Promise.all(Array.from({ length: 32 }, () => h.lookup(PID_DIR, String(p.pid))));
  t.is(new Set(entries.map((e) => e.nodeId)).size, 1);
  t.is(h.table.counters().allocations - before, 1);
  t.is(h.tree.processes.reads, 1, 'SingleFlight shared the read');
  t.is(h.table.dentry(entries[0]!.nodeId)!.lookups, 32);
  t.is(h.host.pendingExitWatches, 1, 'one exit watch per process handle');
});

test('pid reuse: a new, larger number; the old by-ino is ENOENT; an old descriptor reads Pid -1 and dead', async (t) => {
  const h = makeTree();
  const p = h.host.start({ comm: 'first' });
  const old = await h.lookup(PID_DIR, String(p.pid));
  const { fh } = await h.tree.open(rc(), old.nodeId, 0);
  t.is(fields((await h.tree.read(rc(), old.nodeId, fh, 0, 4096)).toString()).Comm, 'first');
  h.host.clock.advance(1000);
  const q = h.host.reusePid(p.pid, { comm: 'second' });
  t.is(q.pid, p.pid);
  const fresh = await h.lookup(PID_DIR, String(p.pid));
  t.true(fresh.nodeId > old.nodeId);
  t.is(await errnoOf(h.lookup(BY_INO_DIR, String(old.nodeId))), Errno.ENOENT);
  t.is(await errnoOf(h.lookup(old.nodeId, '.')), Errno.ESTALE, 'a file handle of the dead process no longer decodes');
  const again = fields((await h.tree.read(rc(), old.nodeId, fh, 0, 4096)).toString());
  t.is(again.Pid, '-1');
  t.is(again.State, 'dead');
  t.is(again.Comm, 'first', 'never data of the new process');
  t.is(again.StartTime, String(p.startTime));
  t.is(fields(await h.readFile(fresh.nodeId)).Comm, 'second');
  h.tree.release(rc(), old.nodeId, fh);
  h.tree.forget(old.nodeId, 1);
  t.is(h.table.inode(old.nodeId), undefined, 'the dead inode leaves the table once unreferenced');
  t.is(h.table.counters().underflows, 0);
});

test('pid reuse within one clock tick of a forgotten handle: still a new number', async (t) => {
  // Under fast pid reuse a new process can get the same pid and the same start time (clock ticks
  // are 10 ms). The kernel had forgotten the old handle, so no exit watch marked it dead.
  const h = makeTree();
  const p = h.host.start({ comm: 'first' });
  const old = await h.lookup(PID_DIR, String(p.pid));
  h.tree.forget(old.nodeId, 1);
  t.is(h.host.pendingExitWatches, 0, 'a forgotten handle is not watched');
  h.host.exit(p.pid);
  const q = h.host.start({ pid: p.pid, startTime: p.startTime, comm: 'second' });
  t.is(q.startTime, p.startTime);
  const fresh = await h.lookup(PID_DIR, String(p.pid));
  t.true(fresh.nodeId > old.nodeId, `${fresh.nodeId} > ${old.nodeId}`);
  t.is(fields(await h.readFile(fresh.nodeId)).Comm, 'second');
  t.is(await errnoOf(h.lookup(BY_INO_DIR, String(old.nodeId))), Errno.ENOENT);
});

test('exit: the handle is marked dead and the kernel is told to drop pid/<pid>, by-ino/<ino> and the inode', async (t) => {
  const h = makeTree();
  const p = h.host.start();
  const e = await h.lookup(PID_DIR, String(p.pid));
  t.is(h.host.pendingExitWatches, 1);
  h.notifier.clear();
  h.host.exit(p.pid);
  t.deepEqual(h.notifier.notes, [
    { op: 'invalEntry', parent: PID_DIR, name: String(p.pid) },
    { op: 'invalEntry', parent: BY_INO_DIR, name: String(e.nodeId) },
    { op: 'invalInode', ino: e.nodeId },
  ]);
  t.true(h.table.isDead(h.table.inode(e.nodeId)!));
  t.is(await errnoOf(h.lookup(PID_DIR, String(p.pid))), Errno.ENOENT);
  t.is(fields(await h.readFile(e.nodeId)).Pid, '-1', 'the kernel still holds the node: it reads as dead');
  h.tree.forget(e.nodeId, 1);
  t.is(h.table.counters().inodes, 0);
  t.is(h.host.pendingExitWatches, 0);
});

test('a zombie counts as exited: ENOENT, never a second number', async (t) => {
  const h = makeTree();
  const p = h.host.start();
  const e = await h.lookup(PID_DIR, String(p.pid));
  h.host.exit(p.pid, { zombie: true });
  t.is(await errnoOf(h.lookup(PID_DIR, String(p.pid))), Errno.ENOENT);
  t.false((await h.readdir(PID_DIR)).some((x) => x.name === String(p.pid)));
  t.is(fields(await h.readFile(e.nodeId)).State, 'dead');
  const z = h.host.start();
  h.host.exit(z.pid, { zombie: true });
  t.is(await errnoOf(h.lookup(PID_DIR, String(z.pid))), Errno.ENOENT, 'a zombie never seen before');
});

test('exit watches run only while the kernel holds the handle; the inode stays dormant and keeps its number', async (t) => {
  const h = makeTree();
  const p = h.host.start();
  const e = await h.lookup(PID_DIR, String(p.pid));
  t.is(h.host.pendingExitWatches, 1);
  h.tree.forget(e.nodeId, 1);
  t.is(h.host.pendingExitWatches, 0, 'unwatched on release');
  t.truthy(h.table.inode(e.nodeId), 'dormant inode kept while the process lives');
  t.is((await h.lookup(PID_DIR, String(p.pid))).nodeId, e.nodeId, 'same live object, same number');
  t.is((await h.lookup(BY_INO_DIR, String(e.nodeId))).nodeId, e.nodeId);
  h.tree.forget(e.nodeId, 2);
  // Plain READDIR instantiates without watching.
  await h.readdir(PID_DIR);
  t.is(h.host.pendingExitWatches, 0);
});

test('dormant inodes: an exit nobody watched is found by the sweep, a reuse by the next lookup', async (t) => {
  const h = makeTree();
  const a = h.host.start();
  const b = h.host.start();
  const ea = await h.lookup(PID_DIR, String(a.pid));
  const eb = await h.lookup(PID_DIR, String(b.pid));
  h.tree.forget(ea.nodeId, 1);
  h.tree.forget(eb.nodeId, 1);
  h.host.exit(a.pid);
  t.truthy(h.table.inode(ea.nodeId), 'not watched: not noticed yet');
  h.timers.advance(10_000);
  await h.settle();
  t.is(h.table.inode(ea.nodeId), undefined, 'sweep found it gone');
  t.is(await errnoOf(h.lookup(BY_INO_DIR, String(ea.nodeId))), Errno.ENOENT);
  h.host.reusePid(b.pid);
  const nb = await h.lookup(PID_DIR, String(b.pid));
  t.true(nb.nodeId > eb.nodeId);
  t.is(h.table.inode(eb.nodeId), undefined, 'the lookup saw another start time: the old inode is dead');
  t.true(h.tree.sweepStats.runs >= 1);
});

test('a sweep reads at most SWEEP_READS dormant processes, going round the table; an absent pid is dead at once', async (t) => {
  const h = makeTree();
  const ps = Array.from({ length: SWEEP_READS + 200 }, () => h.host.start());
  const entries = [];
  for (const p of ps) entries.push(await h.lookup(PID_DIR, String(p.pid)));
  for (const e of entries) h.tree.forget(e.nodeId, 1);
  await h.settle();
  const last = ps.at(-1)!;
  const gone = ps[0]!;
  h.host.reusePid(last.pid); // same pid, a newer process: only a read can tell
  h.host.exit(gone.pid);
  const before = h.tree.processes.reads;
  h.timers.advance(10_000);
  await h.settle();
  t.true(h.tree.processes.reads - before <= SWEEP_READS, `${h.tree.processes.reads - before} reads in one sweep`);
  t.is(h.table.inode(entries[0]!.nodeId), undefined, 'an absent pid needs no read');
  let sweeps = 1;
  while (h.table.inode(entries.at(-1)!.nodeId) !== undefined && sweeps < 3) {
    h.timers.advance(10_000);
    await h.settle();
    sweeps++;
  }
  t.is(h.table.inode(entries.at(-1)!.nodeId), undefined, 'the reused pid was found within two sweeps');
  t.is(sweeps, 2);
});

test('by-ino of a dormant inode re-validates: a process that exited unwatched is ENOENT', async (t) => {
  const h = makeTree({ tree: { sweepIntervalMs: 0 } });
  const p = h.host.start();
  const e = await h.lookup(PID_DIR, String(p.pid));
  h.tree.forget(e.nodeId, 1);
  h.host.reusePid(p.pid);
  t.is(await errnoOf(h.lookup(BY_INO_DIR, String(e.nodeId))), Errno.ENOENT);
  t.is(h.table.inode(e.nodeId), undefined);
});

test('bad names: ENOENT without reading /proc; too long: ENAMETOOLONG', async (t) => {
  const h = makeTree();
  const p = h.host.start();
  const bad = ['0', '01', '+1', '-1', ' 1', '1 ', '1.0', '1e3', 'abc', '', '4194305', '99999999999999999999', `${p.pid}x`, '0x10'];
  for (const name of bad) t.is(await errnoOf(h.lookup(PID_DIR, name)), Errno.ENOENT, `pid/${JSON.stringify(name)}`);
  t.is(h.tree.processes.reads, 0);
  for (const name of ['1', '4026531840', '4294967296', '04026531992', 'net']) {
    t.is(await errnoOf(h.lookup(nsTypeDir('net'), name)), Errno.ENOENT, `ns/net/${name}`);
  }
  t.is(await errnoOf(h.lookup(NS_DIR, 'bogus')), Errno.ENOENT);
  t.is(await errnoOf(h.lookup(ROOT_DIR, 'proc')), Errno.ENOENT);
  for (const name of ['5', '1023', '9007199254740993', '1024', '0']) {
    t.is(await errnoOf(h.lookup(BY_INO_DIR, name)), Errno.ENOENT, `by-ino/${name}`);
  }
  t.is(await errnoOf(h.lookup(PID_DIR, '1'.repeat(256))), Errno.ENAMETOOLONG);
  t.is(await errnoOf(h.lookup(PID_DIR, 'é'.repeat(128))), Errno.ENAMETOOLONG, '256 bytes in 128 characters');
  t.is(await errnoOf(h.lookup(BY_INO_DIR, 'x'.repeat(1024))), Errno.ENAMETOOLONG);
  t.is(await errnoOf(h.lookup(PID_DIR, 'é'.repeat(127))), Errno.ENOENT, '254 bytes is a name, just not a pid');
  const e = await h.lookup(PID_DIR, String(p.pid));
  t.is(await errnoOf(h.lookup(e.nodeId, 'x')), Errno.ENOTDIR);
  t.is(await errnoOf(async () => h.tree.opendir(rc(), e.nodeId, 0)), Errno.ENOTDIR);
  t.is(await errnoOf(h.tree.open(rc(), PID_DIR, 0)), Errno.EISDIR);
});

test('what a process handle reads, and fields that cannot be read', async (t) => {
  const h = makeTree();
  const net = h.host.createNamespace('net');
  const p = h.host.start({ comm: 'we\nird\\', uid: { real: 1, effective: 2, saved: 3, fs: 4 }, gid: 7, cgroup: '/user.slice', state: 'R' });
  h.host.enter(p.pid, 'net', net.inum);
  const e = await h.lookup(PID_DIR, String(p.pid));
  const f = fields(await h.readFile(e.nodeId));
  t.is(f.Pid, String(p.pid));
  t.is(f.PPid, '1');
  t.is(f.Uid, '1\t2\t3\t4');
  t.is(f.Gid, '7\t7\t7\t7');
  t.is(f.Comm, 'we\\nird\\\\', 'one line per field');
  t.is(f.State, 'R (running)');
  t.is(f.StartTime, String(p.startTime));
  t.is(f.Cgroup, '/user.slice', 'the path alone, as the real source gives it');
  t.is(f.Generation, '1');
  const netEntry = await h.lookup(nsTypeDir('net'), String(net.inum));
  t.is(f['Ns.net'], String(netEntry.nodeId), 'the namespace line is the namespace handle inode');
  t.is(f['Ns.uts'], String((await h.lookup(nsTypeDir('uts'), String(h.host.initialNamespace('uts')))).nodeId));

  // pid 1 on this machine: its ns links answer EACCES.
  h.host.update(1, { unreadable: ['namespaces', 'uid'], cgroup: null });
  const init = fields(await h.readFile((await h.lookup(PID_DIR, '1')).nodeId));
  for (const type of ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts']) t.is(init[`Ns.${type}`], 'unreadable');
  t.is(init.Uid, 'unreadable');
  t.is(init.Cgroup, 'unreadable');
  t.is(init.Gid, '0\t0\t0\t0');
  t.is((await h.tree.getattr(rc(), (await h.lookup(PID_DIR, "1")).nodeId)).attr.uid, 0);
});

test('a process vanishing between listing and use: ENOENT or a dead read, never a crash or a leak', async (t) => {
  const h = makeTree();
  const ps = Array.from({ length: 5 }, () => h.host.start());
  const listed = await h.readdir(PID_DIR);
  t.true(ps.every((p) => listed.some((e) => e.name === String(p.pid))));
  h.host.exit(ps[0]!.pid);
  t.is(await errnoOf(h.lookup(PID_DIR, String(ps[0]!.pid))), Errno.ENOENT);
  const e = await h.lookup(PID_DIR, String(ps[1]!.pid));
  const { fh } = await h.tree.open(rc(), e.nodeId, 0);
  h.host.exit(ps[1]!.pid);
  t.is(fields((await h.tree.read(rc(), e.nodeId, fh, 0, 4096)).toString()).Pid, '-1');
  // exit between LOOKUP and OPEN
  const e2 = await h.lookup(PID_DIR, String(ps[2]!.pid));
  h.host.exit(ps[2]!.pid);
  t.is(fields(await h.readFile(e2.nodeId)).State, 'dead');
  h.tree.release(rc(), e.nodeId, fh);
  h.tree.forget(e.nodeId, 1);
  h.tree.forget(e2.nodeId, 1);
  t.is(h.host.pendingExitWatches, 0);
  t.is(h.table.counters().underflows, 0);
  t.is(h.table.counters().open, 0);
});

test('reads serve the snapshot at offsets; a read at 0 after the first renders again', async (t) => {
  const h = makeTree();
  const p = h.host.start({ comm: 'aaaa' });
  const e = await h.lookup(PID_DIR, String(p.pid));
  const { fh, directIo } = await h.tree.open(rc(), e.nodeId, 0);
  t.true(directIo, 'FOPEN_DIRECT_IO: st_size 0 like /proc');
  const a = (await h.tree.read(rc(), e.nodeId, fh, 0, 10)).toString();
  h.host.update(p.pid, { comm: 'bbbb' });
  const rest = (await h.tree.read(rc(), e.nodeId, fh, 10, 4096)).toString();
  t.true((a + rest).includes('Comm:\taaaa'), 'one consistent snapshot across offsets');
  t.is((await h.tree.read(rc(), e.nodeId, fh, 100_000, 10)).length, 0);
  t.true((await h.tree.read(rc(), e.nodeId, fh, 0, 4096)).toString().includes('Comm:\tbbbb'));
  t.true(Buffer.isBuffer(h.tree.read(rc(), e.nodeId, fh, 10, 4096)), "a read past the start answers at once from the snapshot (no render, no promise)");
  h.tree.release(rc(), e.nodeId, fh);
  t.is(await errnoOf(() => h.tree.read(rc(), e.nodeId, fh, 0, 10)), Errno.EBADF);
});

test('statfs: used inodes = the table, free = what the allocator can still hand out (df -i is not alarmed)', async (t) => {
  const h = makeTree();
  for (let i = 0; i < 3; i++) await h.lookup(PID_DIR, String(h.host.start().pid));
  const s = await h.statfs();
  const last = h.table.counters().lastAllocated;
  t.is(s.files - s.ffree, h.table.counters().inodes, 'used = inodes in the table');
  t.is(s.ffree, Number.MAX_SAFE_INTEGER - last, 'free = numbers left above the last one handed out');
  t.true(s.ffree > 0 && (s.files - s.ffree) / s.files < 0.01, 'df -i shows almost nothing used');
  t.is(s.namelen, 255);
  await h.lookup(PID_DIR, String(h.host.start().pid));
  t.is((await h.statfs()).ffree, s.ffree - 1, 'each new number is one fewer free');
});
