/**
 * Every request is judged by its caller (the uid/gid/pid of the FUSE header): with allow_other
 * nobody sees or holds through the mount what /proc would refuse them.
 */
import test from 'ava';
import { Errno } from '../../src/fuse/abi.js';
import type { Caller } from '../../src/testing/fake-kernel.js';
import { BY_INO_DIR, PID_DIR, nsTypeDir } from '../../src/tree/layout.js';
import { errnoOf, fields, makeTree, type Harness } from './harness.js';

const NOBODY: Caller = { uid: 65534, gid: 65534, pid: 0 };
const ROOT: Caller = { uid: 0, gid: 0, pid: process.pid };

function as<T>(h: Harness, caller: Caller, fn: () => Promise<T>): Promise<T> {
  h.session.caller = { ...caller };
  return fn().finally(() => {
    h.session.caller = { ...ROOT };
  });
}

/** A root process in a network namespace of its own (`unshare -n sleep` as root), and one of nobody's. */
function scene(h: Harness) {
  const net = h.host.createNamespace('net', { pinned: false });
  const rootProc = h.host.start({ comm: 'rootd' });
  h.host.enter(rootProc.pid, 'net', net.inum);
  const mine = h.host.start({ comm: 'mine', uid: NOBODY.uid, gid: NOBODY.gid });
  return { net, rootProc, mine, me: { ...NOBODY, pid: mine.pid } };
}

test("another user's process: public fields readable, Ns lines hidden; its own and root see them", async (t) => {
  const h = makeTree();
  const { rootProc, mine, me } = scene(h);
  const theirs = await as(h, me, async () => fields(await h.readFile((await h.lookup(PID_DIR, String(rootProc.pid))).nodeId)));
  t.is(theirs.Comm, 'rootd', 'like /proc/PID/status, readable by all (hidepid=off)');
  for (const type of ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts']) t.is(theirs[`Ns.${type}`], 'hidden', type);
  const own = await as(h, me, async () => fields(await h.readFile((await h.lookup(PID_DIR, String(mine.pid))).nodeId)));
  t.regex(own['Ns.net']!, /^\d+$/, 'its own process shows its namespaces');
  const byRoot = fields(await h.readFile((await h.lookup(PID_DIR, String(rootProc.pid))).nodeId));
  t.regex(byRoot['Ns.net']!, /^\d+$/);
});

test("a root namespace: nobody cannot open (EACCES) nor access(R_OK) it, by name or by number; root can; its own can", async (t) => {
  const h = makeTree();
  const { net, me } = scene(h);
  const e = await as(h, me, () => h.lookup(nsTypeDir('net'), String(net.inum)));
  t.is(await as(h, me, () => errnoOf(h.open(e.nodeId))), Errno.EACCES);
  t.is(await as(h, me, () => errnoOf(h.access(e.nodeId, 4))), Errno.EACCES);
  const byIno = await as(h, me, () => h.lookup(BY_INO_DIR, String(e.nodeId)));
  t.is(await as(h, me, () => errnoOf(h.open(byIno.nodeId))), Errno.EACCES);
  t.is(fields(await h.readFile(e.nodeId)).NsId, String(net.inum), 'root reads it');
  const own = await as(h, me, () => h.lookup(nsTypeDir('net'), String(h.host.initialNamespace('net'))));
  t.is(fields(await as(h, me, () => h.readFile(own.nodeId))).NsId, String(h.host.initialNamespace('net')), 'its own process is in the initial one');
  // A process that is nobody's by uid but not dumpable (a set-id program): /proc/PID/ns is closed to it.
  const user = h.host.createNamespace('uts', { pinned: false });
  const setid = h.host.start({ comm: 'setid', uid: NOBODY.uid, gid: NOBODY.gid, dumpable: false });
  h.host.enter(setid.pid, 'uts', user.inum);
  await h.tree.policy.namespacesOf(me); // a cached view expires: the next open must see the new process
  h.timers.advance(1000);
  const u = await as(h, me, () => h.lookup(nsTypeDir('uts'), String(user.inum)));
  t.is(await as(h, me, () => errnoOf(h.open(u.nodeId))), Errno.EACCES);
  const setidEntry = await h.lookup(PID_DIR, String(setid.pid));
  t.is(fields(await as(h, me, () => h.readFile(setidEntry.nodeId)))['Ns.uts'], 'hidden');
});

test('hidepid=invisible: nobody lists and resolves only what it may inspect; root sees all', async (t) => {
  const h = makeTree({ tree: { hidepid: 'invisible' } });
  const { net, rootProc, mine, me } = scene(h);
  const pids = (await as(h, me, () => h.readdir(PID_DIR))).slice(2).map((e) => Number(e.name));
  t.deepEqual(pids, [mine.pid]);
  t.is(await as(h, me, () => errnoOf(h.lookup(PID_DIR, String(rootProc.pid)))), Errno.ENOENT);
  t.is(await as(h, me, () => errnoOf(h.lookup(PID_DIR, '1'))), Errno.ENOENT);
  const nets = (await as(h, me, () => h.readdir(nsTypeDir('net'), { plus: true }))).slice(2).map((e) => Number(e.name));
  t.deepEqual(nets, [h.host.initialNamespace('net')], 'only the namespace its own process is in');
  t.is(await as(h, me, () => errnoOf(h.lookup(nsTypeDir('net'), String(net.inum)))), Errno.ENOENT);
  const rootEntry = await h.lookup(PID_DIR, String(rootProc.pid));
  t.is(rootEntry.entryTimeout, 0, 'names are not cached: every path walk is judged as its caller');
  t.is(await as(h, me, () => errnoOf(h.lookup(BY_INO_DIR, String(rootEntry.nodeId)))), Errno.ENOENT);
  t.is(await as(h, me, () => errnoOf(h.getattr(rootEntry.nodeId))), Errno.ENOENT, 'a name root cached is not stat-able by nobody');
  t.is(await as(h, me, () => errnoOf(h.open(rootEntry.nodeId))), Errno.ENOENT);
  t.true((await h.readdir(PID_DIR)).length > 3, 'root sees every process');
  t.is((await as(h, me, () => h.readdir(BY_INO_DIR))).filter((e) => e.name === String(rootEntry.nodeId)).length, 0);
});

test('hidepid=noaccess: listed and stat-able, but the handles of others cannot be opened', async (t) => {
  const h = makeTree({ tree: { hidepid: 'noaccess' } });
  const { rootProc, mine, me } = scene(h);
  const pids = (await as(h, me, () => h.readdir(PID_DIR))).slice(2).map((e) => Number(e.name));
  t.true(pids.includes(rootProc.pid) && pids.includes(mine.pid));
  const e = await as(h, me, () => h.lookup(PID_DIR, String(rootProc.pid)));
  t.is(await as(h, me, () => errnoOf(h.open(e.nodeId))), Errno.EACCES);
  t.is(fields(await as(h, me, async () => h.readFile((await h.lookup(PID_DIR, String(mine.pid))).nodeId))).Comm, 'mine');
});

test('per-user limits: open handles and namespace opens beyond the limit are EMFILE; root is not limited', async (t) => {
  const h = makeTree({ tree: { maxOpenPerUser: 3, maxNamespaceOpensPerUser: 1 } });
  const { mine, me } = scene(h);
  const p = await as(h, me, () => h.lookup(PID_DIR, String(mine.pid)));
  const n = await as(h, me, () => h.lookup(nsTypeDir('net'), String(h.host.initialNamespace('net'))));
  const u = await as(h, me, () => h.lookup(nsTypeDir('uts'), String(h.host.initialNamespace('uts'))));
  const f1 = await as(h, me, () => h.open(n.nodeId));
  t.is(await as(h, me, () => errnoOf(h.open(u.nodeId))), Errno.EMFILE, 'one namespace at a time');
  const f2 = await as(h, me, () => h.open(p.nodeId));
  const f3 = await as(h, me, () => h.open(p.nodeId));
  t.is(await as(h, me, () => errnoOf(h.open(p.nodeId))), Errno.EMFILE);
  t.is(await as(h, me, () => errnoOf(h.opendir(PID_DIR))), Errno.EMFILE, 'directories count too');
  const r = await h.open(p.nodeId);
  await h.release(r.fh);
  await as(h, me, () => h.release(f2.fh));
  const f4 = await as(h, me, () => h.open(p.nodeId));
  for (const f of [f1, f3, f4]) await as(h, me, () => h.release(f.fh));
  const again = await as(h, me, () => h.open(u.nodeId));
  await as(h, me, () => h.release(again.fh));
});

test("a user's open keeps a namespace held for its hold time only; polling it does not extend it", async (t) => {
  const h = makeTree({ tree: { userNamespaceHoldMs: 10_000 } });
  const net = h.host.createNamespace('net', { pinned: false });
  const p = h.host.start({ comm: 'mine', uid: NOBODY.uid, gid: NOBODY.gid });
  h.host.enter(p.pid, 'net', net.inum);
  const me = { ...NOBODY, pid: p.pid };
  const e = await as(h, me, () => h.lookup(nsTypeDir('net'), String(net.inum)));
  const f = await as(h, me, () => h.open(e.nodeId)); // `exec 3< MNT/ns/net/N` in its own namespace
  h.host.exit(p.pid);
  h.timers.advance(9_000);
  t.true(h.host.namespaceAlive('net', net.inum), 'held while the open is young');
  for (let i = 0; i < 20; i++) {
    await as(h, me, () => h.getattr(e.nodeId)); // polling
    h.timers.advance(500);
  }
  await h.settle();
  t.false(h.host.namespaceAlive('net', net.inum), 'the hold ends although the descriptor and the cached name remain');
  t.is(fields(await as(h, me, () => h.read(f.fh).then((b) => b.toString()))).NsId, String(net.inum), 'the descriptor still reads its snapshot');
  t.is(await as(h, me, () => errnoOf(h.open(e.nodeId))), Errno.EACCES, 'no process of its own is in it any more');
  await as(h, me, () => h.release(f.fh));
});

test("root's lookups (a bind mount) still keep a namespace after its last process", async (t) => {
  const h = makeTree({ tree: { userNamespaceHoldMs: 1_000 } });
  const net = h.host.createNamespace('net', { pinned: false });
  const p = h.host.start({ comm: 'x' });
  h.host.enter(p.pid, 'net', net.inum);
  await h.lookup(nsTypeDir('net'), String(net.inum));
  h.host.exit(p.pid);
  h.timers.advance(60_000);
  t.true(h.host.namespaceAlive('net', net.inum));
});
