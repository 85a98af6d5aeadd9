import test from 'ava';
import { Container } from 'inversify';
import {
  createFakeSourcesModule,
  FakeHost,
  INITIAL_NS_INUM,
} from '../../src/testing/fake-sources.js';
import { SOURCES } from '../../src/sources/tokens.js';

test('processes: start, read, list, exit', async (t) => {
  const host = new FakeHost();
  const src = host.processSource;
  const p = host.start({ comm: 'my (weird) comm', ppid: 1, uid: 1000, gid: { real: 1, effective: 2, saved: 3, fs: 4 } });
  t.deepEqual(await src.list(), [1, p.pid]);
  const info = await src.read(p.pid);
  t.is(info?.comm, 'my (weird) comm');
  t.deepEqual(info?.uid, { real: 1000, effective: 1000, saved: 1000, fs: 1000 });
  t.is(info?.gid?.saved, 3);
  t.is(info?.bootId, src.bootId());
  t.is(info?.namespaces.net, INITIAL_NS_INUM.net);
  t.deepEqual(info?.unreadable, []);
  host.exit(p.pid);
  t.is(await src.read(p.pid), null);
  t.deepEqual(await src.list(), [1]);
});

test('pid 1 can mimic unreadable namespaces', async (t) => {
  const host = new FakeHost({ init: false });
  host.start({ pid: 1, ppid: 0, unreadable: ['namespaces'] });
  const info = await host.processSource.read(1);
  t.deepEqual(info?.unreadable, ['namespaces']);
  t.deepEqual(info?.namespaces, {});
});

test('pid reuse gives a later startTime, even at the same clock tick', async (t) => {
  const host = new FakeHost();
  const a = host.start({ pid: 500 });
  const b = host.reusePid(500, { comm: 'second' });
  t.is(b.pid, 500);
  t.true(b.startTime > a.startTime);
  host.clock.advance(10_000);
  const c = host.reusePid(500);
  t.true(c.startTime >= b.startTime + 1000 - 1, 'start time follows the fake clock (100 Hz)');
  t.is((await host.processSource.read(500))?.startTime, c.startTime);
});

test('exits fire watchers once; disposed watchers do not fire; dead (pid, startTime) fires at once', async (t) => {
  const host = new FakeHost();
  const src = host.processSource;
  const p = host.start();
  const calls: string[] = [];
  src.watchExit(p.pid, p.startTime, () => calls.push('a'));
  const dispose = src.watchExit(p.pid, p.startTime, () => calls.push('b'));
  dispose();
  t.is(host.pendingExitWatches, 1);
  host.exit(p.pid, { zombie: true });
  t.deepEqual(calls, ['a']);
  t.is((await src.read(p.pid))?.state, 'Z');
  t.deepEqual(Object.keys((await src.read(p.pid))!.namespaces).sort(), ['pid', 'user']);

  // already exited (zombie), wrong start time, never existed: all fire, asynchronously
  let sync = true;
  const late: boolean[] = [];
  const all = Promise.all([
    new Promise<void>((r) => src.watchExit(p.pid, p.startTime, () => (late.push(sync), r()))),
    new Promise<void>((r) => src.watchExit(1, 999_999, () => (late.push(sync), r()))),
    new Promise<void>((r) => src.watchExit(4242, 0, () => (late.push(sync), r()))),
  ]);
  sync = false;
  await all;
  t.deepEqual(late, [false, false, false]);
  host.reap(p.pid);
  t.is(await src.read(p.pid), null);
  t.is(host.pendingExitWatches, 0);
});

test('reusing a pid fires the old process\'s watchers, not the new one\'s', (t) => {
  const host = new FakeHost();
  const a = host.start({ pid: 77 });
  let oldFired = 0;
  host.processSource.watchExit(77, a.startTime, () => oldFired++);
  const b = host.reusePid(77);
  t.is(oldFired, 1);
  let newFired = 0;
  host.processSource.watchExit(77, b.startTime, () => newFired++);
  host.clock.advance(5);
  t.is(newFired, 0);
  host.exit(77);
  t.is(newFired, 1);
});

test('namespaces: create, enter, list, open, destroy; inum reused, nsId not', async (t) => {
  const host = new FakeHost();
  const ns = host.namespaceSource;
  const initial = await ns.list();
  t.is(initial.length, 8);
  const net = host.createNamespace('net');
  t.is(net.inum, 0xf0000000);
  t.is(net.owner?.inum, INITIAL_NS_INUM.user);
  const p = host.start({ namespaces: { net: net.inum } });
  t.is((await host.processSource.read(p.pid))?.namespaces.net, net.inum);
  host.destroyNamespace('net', net.inum); // unpinned, but p is still in it
  t.true((await ns.list()).some((r) => r.type === 'net' && r.inum === net.inum));

  const h = await ns.open('net', net.inum);
  t.is(h?.info.nsId, net.nsId);
  host.exit(p.pid);
  // only the handle holds it now: alive, not listed, still openable
  t.true(host.namespaceAlive('net', net.inum));
  t.false((await ns.list()).some((r) => r.type === 'net' && r.inum === net.inum));
  const h2 = await ns.open('net', net.inum, net.nsId!);
  t.truthy(h2);
  h2!.close();
  h!.close();
  h!.close();
  t.true(h!.closed);
  t.false(host.namespaceAlive('net', net.inum));
  t.is(await ns.open('net', net.inum), null);

  const again = host.createNamespace('net');
  t.is(again.inum, net.inum, 'nsfs inode numbers are reused');
  t.not(again.nsId, net.nsId, 'ns ids are not');
  t.is(await ns.open('net', net.inum, net.nsId!), null, 'open with the old id refuses the new namespace');
});

test('namespaces: user and pid parents and owners keep their ancestors alive', async (t) => {
  const host = new FakeHost();
  const user = host.createNamespace('user');
  t.deepEqual(user.parent?.inum, INITIAL_NS_INUM.user);
  const pid = host.createNamespace('pid', { owner: user.inum });
  t.is(pid.owner?.inum, user.inum);
  t.is(pid.parent?.inum, INITIAL_NS_INUM.pid);
  const initUser = host.namespaceInfo('user', INITIAL_NS_INUM.user)!;
  t.is(initUser.owner, null);
  t.is(initUser.parent, null);
  host.destroyNamespace('user', user.inum);
  t.true(host.namespaceAlive('user', user.inum), 'owned pid namespace keeps it');
  host.destroyNamespace('pid', pid.inum);
  t.false(host.namespaceAlive('pid', pid.inum));
  t.false(host.namespaceAlive('user', user.inum));
  t.throws(() => host.destroyNamespace('net', INITIAL_NS_INUM.net));
});

test('fake clock', (t) => {
  const host = new FakeHost();
  t.is(host.clock.now(), 0);
  host.clock.advance(250);
  t.is(host.clock.now(), 250);
  t.throws(() => host.clock.advance(-1));
});

test('createFakeSourcesModule binds the SOURCES tokens', async (t) => {
  const host = new FakeHost();
  const container = new Container();
  await container.load(createFakeSourcesModule(host));
  t.is(container.get(SOURCES.ProcessSource), host.processSource);
  t.is(container.get(SOURCES.NamespaceSource), host.namespaceSource);
  t.is(container.get(SOURCES.Clock), host.clock);
  t.is(container.get(SOURCES.HostIds).bootId, host.processSource.bootId());
});
