/**
 * The consumer kit's own behaviour: the service's container over a FakeHost, served with the
 * FUSE session's rules, through the public entry (src/testing/index.ts).
 */
import test, { type ExecutionContext } from 'ava';
import { CORE } from '../../src/core/tokens.js';
import { FUSE_TOKENS } from '../../src/fuse/tokens.js';
import { FuseSession } from '../../src/fuse/session.js';
import { FuseError, type DirEntry, type Entry, type LowLevelFileSystem } from '../../src/fuse/types.js';
import {
  BY_INO_DIR,
  createTestFilesystem,
  Errno,
  FsError,
  InProcessSession,
  isFsError,
  MemoryStore,
  NS_DIR,
  nsTypeDir,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  PID_DIR,
  ROOT_DIR,
  S_IFDIR,
  S_IFREG,
  type TestFilesystem,
  type TestFilesystemOptions,
} from '../../src/testing/index.js';
import { TREE } from '../../src/tree/tokens.js';

function kit(t: ExecutionContext, options: TestFilesystemOptions = {}): TestFilesystem {
  const fs = createTestFilesystem(options);
  t.teardown(() => fs.close());
  return fs;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof FsError) return err.code;
    throw err;
  }
}

test('it is the service container: assembleContainer with the fake host, a MemoryStore and manual timers', (t) => {
  const store = new MemoryStore();
  const fs = kit(t, { store });
  t.is(fs.container.get(FUSE_TOKENS.FileSystem), fs.tree);
  t.is(fs.container.get(TREE.HandleTree), fs.tree);
  t.is(fs.container.get(CORE.Table), fs.table);
  t.is(fs.container.get(CORE.Store), store);
  t.is(fs.store, store);
  t.true(fs.container.isBound(FUSE_TOKENS.Server), 'the FUSE module is loaded, as in the service');
  t.is(fs.table.scope, fs.host.hostIds.bootId);
  t.is(fs.session.fs, fs.tree);
});

test('one session: the requests go through the FuseSession a mount runs, built by the container, and come back through its replies', async (t) => {
  const fs = kit(t, { entryTimeout: 7 });
  t.true(fs.session.server instanceof FuseSession);
  t.is(fs.session.server.connection?.entryTimeout, 7, 'INIT was negotiated with the session, with the kit\'s options');
  const before = { ...fs.session.server.stats };
  const p = fs.host.start();
  const e = await fs.lookupPath(`pid/${p.pid}`);
  t.is(e.entryTimeout, 7);
  fs.forget(e.nodeId);
  const after = fs.session.server.stats;
  t.is(after.requests - before.requests, 4, 'LOOKUP pid, LOOKUP <pid>, FORGET pid (the walk lets go of it), FORGET <pid>');
  t.is(after.replies - before.replies, 2, 'FORGET has no reply');
  t.is(after.forgets - before.forgets, 2);
  t.is(fs.counts(e.nodeId), undefined, 'the FORGET reached the tree through the session');
  await fs.close();
  t.false(fs.session.server.running, 'close() ends the session: DESTROY, then the connection');
});

test('pid reuse: same pid, new start time, a new and larger inode; the old handle reads dead and its name is gone', async (t) => {
  const fs = kit(t);
  const first = fs.host.start({ comm: 'first' });
  const old = await fs.lookupPath(`pid/${first.pid}`);
  const file = await fs.open(old.nodeId);
  t.is((await fs.readFields(`pid/${first.pid}`)).Comm, 'first');
  fs.host.clock.advance(2000);
  const second = fs.host.reusePid(first.pid, { comm: 'second' });
  t.is(second.pid, first.pid);
  t.true(second.startTime > first.startTime);
  const fresh = await fs.ino(`pid/${first.pid}`);
  t.true(fresh > old.nodeId);
  t.is(await code(fs.stat(`by-ino/${old.nodeId}`)), 'ENOENT');
  t.is(await code(fs.lookup(old.nodeId, '.')), 'ESTALE', 'a file handle of the dead process no longer decodes');
  const dead = (await fs.read(file.fh)).toString();
  t.regex(dead, /^Pid:\t-1$/m);
  t.regex(dead, /^State:\tdead$/m);
  t.regex(dead, /^Comm:\tfirst$/m);
  t.is((await fs.readFields(`pid/${first.pid}`)).Comm, 'second');
  const held = await fs.lookupPath(`pid/${first.pid}`);
  t.is((await fs.readFields(held.nodeId)).Ino, String(fresh), 'readFile of a node id the caller holds');
  fs.forget(held.nodeId);
  t.is(await code(fs.readFile(fresh)), 'ESTALE', 'a node id nobody holds cannot be opened (the kernel could not have it)');
  await fs.release(file.fh);
  fs.forget(old.nodeId);
  t.is(fs.table.inode(old.nodeId), undefined, 'the dead inode leaves once unreferenced');
  t.is(fs.table.counters().underflows, 0);
});

test('exits: what the kernel is told to invalidate, only for names it may hold', async (t) => {
  const fs = kit(t);
  const held = fs.host.start();
  const statted = fs.host.start();
  const e = await fs.lookupPath(`pid/${held.pid}`);
  await fs.stat(`pid/${statted.pid}`);
  t.deepEqual(fs.invalidations(), []);
  fs.host.exit(held.pid);
  fs.host.exit(statted.pid);
  t.deepEqual(fs.invalidations(), [
    { op: 'invalEntry', parent: PID_DIR, name: String(held.pid) },
    { op: 'invalEntry', parent: BY_INO_DIR, name: String(e.nodeId) },
    { op: 'invalInode', ino: e.nodeId },
  ]);
  t.is(fs.takeInvalidations().length, 3);
  t.deepEqual(fs.takeInvalidations(), [], 'taken');
  t.is(await code(fs.stat(`pid/${held.pid}`)), 'ENOENT');
  t.is((await fs.readFields(e.nodeId)).Pid, '-1', 'the kernel still holds the node: it reads as dead');
  t.deepEqual(fs.counts(e.nodeId), { lookups: 1, opens: 0, pins: 0, holds: 0 });
  fs.forget(e.nodeId);
  t.is(fs.counts(e.nodeId), undefined);
  t.is(fs.host.pendingExitWatches, 0);
});

test('notifications the connection did not negotiate are not sent', async (t) => {
  const fs = kit(t, { notify: { invalEntry: false } });
  const p = fs.host.start();
  const e = await fs.lookupPath(`pid/${p.pid}`);
  fs.host.exit(p.pid);
  t.deepEqual(fs.takeInvalidations(), [{ op: 'invalInode', ino: e.nodeId }]);
  t.is(fs.tree.invalidator.counters.skipped, 2);
  t.false(fs.session.connection.capabilities.notifyInvalEntry);
});

test('namespaces: handles by nsfs number, agreeing with the process lines; a stat does not keep them alive', async (t) => {
  const fs = kit(t);
  const net = fs.host.createNamespace('net', { pinned: false });
  const p = fs.host.start({ comm: 'sleep' });
  fs.host.enter(p.pid, 'net', net.inum);
  const f = await fs.readFields(`pid/${p.pid}`);
  const st = await fs.stat(`ns/net/${net.inum}`);
  t.is(f['Ns.net'], String(st.ino));
  t.is(st.mode, S_IFREG | 0o400);
  t.true(st.isFile());
  t.false(st.isDirectory());
  t.is(await fs.ino(`by-ino/${st.ino}`), st.ino);
  const n = await fs.readFields(`ns/net/${net.inum}`);
  t.is(n.Type, 'net');
  t.is(n.NsId, String(net.inum));
  t.is(n.KernelId, net.nsId!);
  t.is(await code(fs.stat(`ns/ipc/${net.inum}`)), 'ENOENT', 'wrong type');
  t.deepEqual(
    (await fs.list('ns/net')).map((e) => Number(e.name)),
    [fs.host.initialNamespace('net'), net.inum],
  );
  fs.host.exit(p.pid);
  await fs.advance(2000);
  t.false(fs.host.namespaceAlive('net', net.inum), 'after the grace nothing holds it');
  t.is(await code(fs.stat(`by-ino/${st.ino}`)), 'ENOENT');
});

test('a namespace handle the kernel keeps: invalidated once after the grace, alive until forgotten', async (t) => {
  const fs = kit(t);
  const net = fs.host.createNamespace('net', { pinned: false });
  const p = fs.host.start();
  fs.host.enter(p.pid, 'net', net.inum);
  const e = await fs.lookupPath(`ns/net/${net.inum}`);
  fs.host.exit(p.pid);
  fs.takeInvalidations();
  await fs.advance(1999);
  t.deepEqual(fs.invalidations(), []);
  await fs.advance(1);
  t.deepEqual(fs.takeInvalidations(), [
    { op: 'invalEntry', parent: nsTypeDir('net'), name: String(net.inum) },
    { op: 'invalEntry', parent: BY_INO_DIR, name: String(e.nodeId) },
  ]);
  await fs.advance(60_000);
  t.deepEqual(fs.takeInvalidations(), [], 'once per idle period');
  t.true(fs.host.namespaceAlive('net', net.inum), 'like a bind mount');
  fs.forget(e.nodeId);
  t.false(fs.host.namespaceAlive('net', net.inum));
});

test('pin and unpin: a pinned namespace outlives its processes and the kernel forgetting it', async (t) => {
  const fs = kit(t);
  const net = fs.host.createNamespace('net', { pinned: false });
  const p = fs.host.start();
  fs.host.enter(p.pid, 'net', net.inum);
  const ino = await fs.pin(`ns/net/${net.inum}`);
  t.is(ino, await fs.ino(`ns/net/${net.inum}`));
  t.deepEqual(fs.counts(ino), { lookups: 0, opens: 0, pins: 1, holds: 0 }, 'the path walk gave its lookup back');
  const f = await fs.readFields(ino);
  t.is(f.Pinned, 'yes\t1');
  t.is(f.Held, 'yes');
  fs.host.exit(p.pid);
  await fs.advance(60_000);
  t.true(fs.host.namespaceAlive('net', net.inum));
  t.deepEqual(fs.invalidations(), [], 'pinned: never idle');
  t.is(await fs.unpin(ino), ino);
  t.false(fs.host.namespaceAlive('net', net.inum), 'unpinned long after the grace: closed at once');
  t.is(await code(fs.unpin(ino)), 'EINVAL', 'no pin left');
  t.is(await code(fs.pin(ino)), 'ENOENT', 'a dead handle cannot be pinned');
  t.is(await code(fs.pin(PID_DIR)), 'EINVAL', 'directories are not handles');
});

test('pin of a handle nobody references re-validates it by number', async (t) => {
  const fs = kit(t, { tree: { sweepIntervalMs: 0 } });
  const p = fs.host.start();
  const ino = await fs.ino(`pid/${p.pid}`);
  t.is(fs.counts(ino), undefined, 'dormant');
  await fs.pin(ino);
  t.deepEqual(fs.counts(ino), { lookups: 0, opens: 0, pins: 1, holds: 0 });
  t.is(fs.host.pendingExitWatches, 1, 'a pinned process handle is watched');
  fs.host.exit(p.pid);
  t.is(fs.takeInvalidations().length, 3);
  await fs.unpin(ino);
  t.is(fs.table.inode(ino), undefined);
});

test('errors: ENOENT, ENAMETOOLONG, ENOTDIR, EISDIR, ESTALE, EBADF, ENOSYS — typed, with errno, code, syscall and path', async (t) => {
  const fs = kit(t);
  const p = fs.host.start();
  for (const path of ['pid/0', 'pid/01', 'pid/+1', 'pid/abc', 'pid/4194305', 'ns/bogus', 'ns/net/1', 'by-ino/5', 'by-ino/1023', 'proc']) {
    t.is(await code(fs.stat(path)), 'ENOENT', path);
  }
  t.is(fs.tree.processes.reads, 0, 'bad names never reach the host');
  const err = await t.throwsAsync(fs.stat(`pid/${'1'.repeat(256)}`), { instanceOf: FsError, code: 'ENAMETOOLONG' });
  t.is(err!.errno, Errno.ENAMETOOLONG);
  t.is(err!.syscall, 'stat');
  t.true(isFsError(err, 'ENAMETOOLONG'));
  t.is(await code(fs.stat(`pid/${'é'.repeat(128)}`)), 'ENAMETOOLONG', '256 bytes in 128 characters');
  t.is(await code(fs.stat(`pid/${'é'.repeat(127)}`)), 'ENOENT');
  t.is(await code(fs.stat(`${'x/'.repeat(2048)}`)), 'ENAMETOOLONG', 'PATH_MAX');
  const missing = await t.throwsAsync(fs.readFile('pid/99999'), { instanceOf: FsError });
  t.is(missing!.message, "ENOENT: no such file or directory, open 'pid/99999'");
  t.is(missing!.path, 'pid/99999');
  t.is(await code(fs.stat(`pid/${p.pid}/x`)), 'ENOTDIR');
  t.is(await code(fs.stat(`pid/${p.pid}/`)), 'ENOTDIR');
  t.is(await code(fs.stat(`pid/${p.pid}/..`)), 'ENOTDIR');
  t.is(await code(fs.list(`pid/${p.pid}`)), 'ENOTDIR');
  t.is(await code(fs.readFile('pid')), 'EISDIR');
  const e = await fs.lookupPath(`pid/${p.pid}`);
  t.is(await code(fs.lookup(e.nodeId, 'x')), 'ENOTDIR', 'LOOKUP in a file, as the tree answers it');
  t.is(await code(fs.opendir(e.nodeId)), 'ENOTDIR');
  t.is(await code(fs.open(PID_DIR)), 'EISDIR', 'OPEN of a directory (the kernel sends OPENDIR instead)');
  t.is(await code(fs.readlink(e.nodeId)), 'ENOSYS', 'the session answers READLINK without a handler');
  const f = await fs.open(e.nodeId);
  await fs.release(f.fh);
  t.is(await code(fs.read(f.fh)), 'EBADF');
  t.is(await code(fs.release(f.fh)), 'EBADF');
  fs.host.exit(p.pid);
  t.is(await code(fs.lookup(e.nodeId, '.')), 'ESTALE');
  t.is(await code(fs.lookup(e.nodeId, '..')), 'ENOTDIR');
  fs.forget(e.nodeId);
  t.is(fs.table.counters().underflows, 0);
});

test('writes: EROFS for write opens and every mutating request, EISDIR / ENOENT where the kernel says so', async (t) => {
  const fs = kit(t);
  const p = fs.host.start();
  const e = await fs.lookupPath(`pid/${p.pid}`);
  for (const flags of [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_CREAT | O_TRUNC]) {
    t.is(await code(fs.open(e.nodeId, flags)), 'EROFS', `flags 0o${flags.toString(8)}`);
  }
  t.is(fs.table.counters().open, 0, 'the tree was never asked');
  t.is(await code(fs.write(e.nodeId, 'x')), 'EROFS');
  t.is(await code(fs.setattr(e.nodeId, { size: 0 })), 'EROFS');
  t.is(await code(fs.mkdir(PID_DIR, 'x')), 'EROFS');
  t.is(await code(fs.unlink(PID_DIR, String(p.pid))), 'EROFS');
  t.is(await code(fs.rmdir(ROOT_DIR, 'pid')), 'EROFS');
  t.is(await code(fs.rename(PID_DIR, String(p.pid), PID_DIR, 'y')), 'EROFS');
  t.is(await code(fs.create(PID_DIR, 'new')), 'EROFS');
  t.is(await code(fs.symlink(PID_DIR, 'l', 'x')), 'EROFS');
  t.is(await code(fs.link(e.nodeId, PID_DIR, 'l')), 'EROFS');
  t.is(await code(fs.mknod(PID_DIR, 'n', S_IFREG)), 'EROFS');
  t.is(await code(fs.setxattr(e.nodeId, 'user.x', Buffer.from('1'))), 'EROFS');
  t.is(await code(fs.removexattr(e.nodeId, 'user.x')), 'EROFS');
  t.is(await code(fs.access(e.nodeId, 2)), 'EROFS', 'W_OK');
  t.is(await code(fs.access(e.nodeId, 4)), 'ok', 'R_OK');
  t.is(await code(fs.getxattr(e.nodeId, 'user.x')), 'ENOSYS');
  t.is(await code(fs.listxattr(e.nodeId)), 'ENOSYS');
  t.is(await code(fs.writeFile(`pid/${p.pid}`, 'x')), 'EROFS');
  t.is(await code(fs.writeFile('pid/12345')), 'EROFS', 'creating a name');
  t.is(await code(fs.writeFile('pid')), 'EISDIR');
  t.is(await code(fs.writeFile('nope/x')), 'ENOENT');
  t.is(await code(fs.writeFile(`pid/${p.pid}/x`)), 'ENOTDIR');
  t.is(await code(fs.writeFile(`pid/${p.pid}/`)), 'EISDIR', 'O_CREAT with a trailing slash');
  t.is(await code(fs.writeFile('pid/12345/')), 'EISDIR');
  t.is(await code(fs.writeFile('pid/')), 'EISDIR');
  t.is((await fs.readFields(`pid/${p.pid}`)).Pid, String(p.pid), 'nothing changed');
  fs.forget(e.nodeId);
});

test('paths: the root, ".", "..", leading and doubled slashes; lookupPath keeps exactly one reference', async (t) => {
  const fs = kit(t);
  const p = fs.host.start();
  for (const path of ['', '/', '.', 'pid/..', 'ns/net/../..']) t.is(await fs.ino(path), ROOT_DIR, JSON.stringify(path));
  t.is(await fs.ino('ns/net/..'), NS_DIR);
  t.is(await fs.ino('/ns//net/'), nsTypeDir('net'));
  t.true((await fs.stat('by-ino')).isDirectory());
  t.is((await fs.stat('pid')).mode, S_IFDIR | 0o555);
  const ino = await fs.ino(`pid/${p.pid}`);
  t.is(await fs.ino(`./pid/../pid/${p.pid}`), ino);
  t.is(fs.counts(ino), undefined, 'stat gives its reference back');
  const e = await fs.lookupPath(`/pid/${p.pid}`);
  t.is(e.nodeId, ino);
  t.is(e.attr.ino, ino);
  t.is(e.entryTimeout, 1, "the mount's default timeout");
  t.deepEqual(fs.counts(ino), { lookups: 1, opens: 0, pins: 0, holds: 0 });
  await fs.readFile(`pid/${p.pid}`);
  await fs.list('pid');
  t.deepEqual(fs.counts(ino), { lookups: 1, opens: 0, pins: 0, holds: 0 }, 'readFile and list give theirs back');
  fs.forget(ino);
  t.is(fs.table.counters().dentries, 0);
});

test('readdir: all entries across cookies; READDIRPLUS entries are counted lookups, plain READDIR entries are not', async (t) => {
  const fs = kit(t, { readdirSize: 200 });
  const ps = Array.from({ length: 30 }, () => fs.host.start());
  const plain = await fs.readdir(PID_DIR);
  t.deepEqual(plain.map((e) => e.name), ['.', '..', '1', ...ps.map((p) => String(p.pid))], 'several small requests, resumed by cookie');
  t.is(fs.table.counters().dentries, 0, 'plain READDIR holds nothing');
  const plus = await fs.readdir(PID_DIR, { plus: true, size: 4096 });
  t.is(plus.length, 33);
  t.is(plus[0]!.entry, undefined, '"." carries no reference');
  for (const e of plus.slice(2)) {
    t.is(e.entry!.nodeId, e.ino);
    t.is(fs.counts(e.ino)!.lookups, 1);
  }
  t.is(fs.host.pendingExitWatches, 31, 'READDIRPLUS entries are kernel references: watched');
  for (const e of plus.slice(2)) fs.forget(e.entry!.nodeId);
  t.is(fs.table.counters().dentries, 0);
  t.is(fs.host.pendingExitWatches, 0);
  const listed = await fs.list('pid', { plus: true });
  t.is(listed.length, 31);
  t.is(fs.table.counters().dentries, 31, 'list with plus keeps what the kernel would');
  const root = await fs.readdir(ROOT_DIR);
  t.deepEqual(root.map((e) => [e.name, e.ino]), [['.', 1], ['..', 1], ['pid', 2], ['ns', 3], ['by-ino', 12]]);
  const sf = await fs.statfs();
  t.is(sf.files - sf.ffree, fs.table.counters().inodes);
});

test('advance: the sweep runs at its interval and finds exits nobody watched; timers fire in order', async (t) => {
  const fs = kit(t);
  const p = fs.host.start();
  const ino = await fs.ino(`pid/${p.pid}`);
  fs.host.exit(p.pid);
  t.truthy(fs.table.inode(ino), 'not watched: not noticed yet');
  await fs.advance(0);
  t.is(fs.table.inode(ino), undefined, 'the first sweep (at start) found it gone');
  await fs.advance(35_000);
  t.is(fs.tree.sweepStats.runs, 4, 'at 0, 10, 20 and 30 s');
  t.is(fs.host.clock.now(), 35_000);
  const off = kit(t, { tree: { sweepIntervalMs: 0 } });
  await off.advance(60_000);
  t.is(off.tree.sweepStats.runs, 0);
  await t.throwsAsync(fs.advance(-1), { instanceOf: RangeError });
});

test('a restart: the same store gives the same process its number back', async (t) => {
  const first = kit(t);
  const p = first.host.start({ comm: 'long-lived' });
  const ino = await first.ino(`pid/${p.pid}`);
  await first.close();
  const store = new MemoryStore({ records: first.store.records(), highWater: first.store.highWater });
  const second = kit(t, { host: first.host, store });
  t.is(await second.ino(`pid/${p.pid}`), ino);
  t.true((await second.ino(`pid/${second.host.start().pid}`)) >= first.store.highWater);
});

test('close: idempotent; the tree is destroyed; requests then answer ENOTCONN', async (t) => {
  const fs = kit(t);
  const p = fs.host.start();
  await fs.lookupPath(`pid/${p.pid}`);
  t.is(fs.host.pendingExitWatches, 1);
  await Promise.all([fs.close(), fs.close()]);
  t.true(fs.closed);
  t.is(fs.host.pendingExitWatches, 0, 'destroy stopped the watches');
  t.is(await code(fs.stat('pid')), 'ENOTCONN');
  t.is(await code(fs.pin(1024)), 'ENOTCONN');
  fs.forget(1024); // FORGET after the end is ignored
  t.false(fs.container.isBound(TREE.HandleTree), 'container unbound');
});

test('EIO: a number that cannot be made durable, and a handler that throws, answer EIO with the cause kept', async (t) => {
  class FlakyStore extends MemoryStore {
    failing = false;
    override flush(): Promise<void> {
      return this.failing ? Promise.reject(new Error('disk on fire')) : super.flush();
    }
  }
  const store = new FlakyStore();
  const fs = kit(t, { store });
  const p = fs.host.start();
  store.failing = true;
  t.is(await code(fs.stat(`pid/${p.pid}`)), 'EIO');
  t.is(fs.table.counters().dentries, 0, 'the lookup was given back');
  store.failing = false;
  t.truthy(await fs.ino(`pid/${p.pid}`));

  const boom = new Error('bug');
  const session = new InProcessSession({
    lookup: () => {
      throw boom;
    },
    forget: () => undefined,
    getattr: () => {
      throw new FuseError(Errno.ESTALE);
    },
  });
  const err = await t.throwsAsync(session.lookup(1, 'x'), { instanceOf: FsError, code: 'EIO' });
  t.is(err!.cause, boom);
  t.is(await code(session.getattr(5)), 'ESTALE');
});

test('the session rules over any LowLevelFileSystem: defaults, ENOSYS, negative entries, READDIRPLUS give-back', async (t) => {
  const forgets: number[] = [];
  const entry = (nodeId: number): Entry => ({
    nodeId,
    generation: 1,
    attr: { ino: nodeId, mode: S_IFREG | 0o444, nlink: 1, uid: 0, gid: 0, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 },
    entryTimeout: 1,
    attrTimeout: 1,
  });
  const fsys: LowLevelFileSystem = {
    lookup: (_ctx, _parent, name) => (name === 'neg' ? { ...entry(0) } : entry(Number(name))),
    forget: (node, n) => {
      for (let i = 0; i < n; i++) forgets.push(node);
    },
    getattr: (_ctx, node) => ({ attr: entry(node).attr, attrTimeout: 1 }),
    // Twenty entries whatever the size: the session sends what fits and gives the rest back.
    readdir: (_ctx, _node, _fh, offset, _size, plus): DirEntry[] =>
      offset > 0
        ? []
        : Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, ino: 100 + i, type: S_IFREG, offset: i + 1, ...(plus ? { entry: entry(100 + i) } : {}) })),
  };
  const s = new InProcessSession(fsys);
  t.is(await code(s.lookup(1, 'neg')), 'ENOENT', 'a negative entry is ENOENT to the caller');
  t.deepEqual(forgets, []);
  const f = await s.open(5);
  t.is(f.fh, 1);
  t.is(await code(s.read(f.fh)), 'ENOSYS');
  await s.release(f.fh);
  t.deepEqual(await s.statfs(), { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 512, namelen: 255, frsize: 0 });
  t.is(await code(s.readlink(5)), 'ENOSYS');
  const d = await s.opendir(1);
  const page = await s.readdirPage(d.fh, 0, { plus: true, size: 3 * 160 });
  t.is(page.length, 3, 'three direntplus of 152 + 8 bytes fit');
  t.deepEqual(forgets, Array.from({ length: 17 }, (_, i) => 103 + i), 'the 17 that did not fit are given back');
  forgets.length = 0;
  t.is((await s.readdirPage(d.fh, 0, { size: 3 * 32 })).length, 3, 'plain: 24 + 8 bytes each');
  t.deepEqual(forgets, [], 'plain entries carry no references');
  t.is(await code(s.readdirPage(d.fh, 0, { plus: true, size: 100 })), 'EIO', 'the first entry does not fit');
  t.is(forgets.length, 20, 'every reference of that reply is given back');
  await s.release(d.fh);
  await s.destroy();
  t.is(await code(s.lookup(1, '1')), 'ENOTCONN');
});
