import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { tryLoadNative } from '../../src/sources/native.js';
import { parseNsLink } from '../../src/sources/parse.js';
import { ProcNamespaceHandle, ProcNamespaceSource } from '../../src/sources/proc-namespace-source.js';
import { NS_TYPES } from '../../src/sources/types.js';

const logger = pino({ level: 'silent' });
const native = tryLoadNative();
const nativeTest = native ? test : test.skip;
const selfNs = (type: string) => parseNsLink(readlinkSync(`/proc/self/ns/${type}`))!;

test('list(): sorted, deduplicated, contains our net namespace', async (t) => {
  const src = new ProcNamespaceSource({ logger, native });
  const list = await src.list();
  const net = selfNs('net');
  t.true(list.some((r) => r.type === 'net' && r.inum === net.inum));
  const keys = list.map((r) => `${r.type}:${r.inum}`);
  t.is(new Set(keys).size, keys.length);
  const sorted = [...list].sort(
    (a, b) => NS_TYPES.indexOf(a.type) - NS_TYPES.indexOf(b.type) || a.inum - b.inum,
  );
  t.deepEqual(list, sorted);
  for (const type of NS_TYPES) t.true(list.some((r) => r.type === type), `no ${type} namespace`);
});

test('open(): info matches fstat of the namespace file; close() is idempotent', async (t) => {
  const src = new ProcNamespaceSource({ logger, native });
  const net = selfNs('net');
  const h = await src.open('net', net.inum);
  t.truthy(h);
  const st = statSync('/proc/self/ns/net');
  t.is(h!.info.type, 'net');
  t.is(h!.info.inum, st.ino);
  t.is(h!.info.dev, st.dev);
  t.is(fstatSync((h as ProcNamespaceHandle).fd).ino, st.ino);
  t.false(h!.closed);
  h!.close();
  h!.close();
  t.true(h!.closed);
  t.is(src.heldCount, 0);
  t.is(await src.open('net', 12345), null);
  t.is(await src.open('uts', net.inum), null, 'wrong type for that inum');
});

nativeTest('open(): nsId, owner user namespace and pid/user parents on this kernel', async (t) => {
  const src = new ProcNamespaceSource({ logger, native });
  const user = selfNs('user');
  const net = (await src.open('net', selfNs('net').inum))!;
  t.teardown(() => net.close());
  t.regex(net.info.nsId ?? '', /^\d+$/);
  t.truthy(net.info.owner, 'owner user namespace');
  t.is(net.info.owner!.inum, user.inum);
  t.regex(net.info.owner!.nsId ?? '', /^\d+$/);
  t.false('parent' in net.info);
  const pid = (await src.open('pid', selfNs('pid').inum))!;
  t.teardown(() => pid.close());
  t.true('parent' in pid.info);
  const userH = (await src.open('user', user.inum))!;
  t.teardown(() => userH.close());
  // Our user namespace is the initial one here: no owner, no parent.
  if (user.inum === 0xeffffffd) {
    t.is(userH.info.owner, null);
    t.is(userH.info.parent, null);
  }
  // opening with the right / a wrong id
  const again = await src.open('net', net.info.inum, net.info.nsId!);
  t.truthy(again);
  again!.close();
  t.is(await src.open('net', net.info.inum, '999999999999'), null);
});

/** The net namespace inum of a child started by `unshare --net`, once it differs from `ours` (3 s at most). */
/**
 * A network namespace whose only reference is a descriptor of this process (a keeper's copy): its
 * process is gone. `close()` drops that last reference.
 */
async function keptOnlyByCopy(t: ExecutionContext): Promise<{ inum: number; close: () => void }> {
  const child = spawn('unshare', ['--net', 'sleep', '30'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  const inum = await netnsOf(child, selfNs('net').inum);
  t.not(inum, selfNs('net').inum, 'unshare --net did not take effect');
  const copy = openSync(`/proc/${child.pid}/ns/net`, 'r');
  let open = true;
  const close = (): void => {
    if (open) closeSync(copy);
    open = false;
  };
  t.teardown(close);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  return { inum, close };
}

async function netnsOf(child: ChildProcess, ours: number): Promise<number> {
  let inum = ours;
  for (let i = 0; i < 300 && inum === ours; i++) {
    await new Promise((r) => setTimeout(r, 10));
    try {
      inum = parseNsLink(readlinkSync(`/proc/${child.pid}/ns/net`))!.inum;
    } catch {
      /* not yet */
    }
  }
  return inum;
}

nativeTest('a held handle keeps a dead process\'s network namespace alive; close() releases it', async (t) => {
  const child = spawn('unshare', ['--net', 'sleep', '30'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  const ours = selfNs('net').inum;
  const inum = await netnsOf(child, ours);
  t.not(inum, ours, 'unshare --net did not take effect');

  const src = new ProcNamespaceSource({ logger, native });
  t.true((await src.list()).some((r) => r.type === 'net' && r.inum === inum));
  const h = (await src.open('net', inum)) as ProcNamespaceHandle;
  t.truthy(h);
  const id = h.info.nsId;
  t.truthy(id);

  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  t.false((await src.list()).some((r) => r.type === 'net' && r.inum === inum), 'still listed');

  // Still alive through our descriptor: fstat works, NS_GET_ID is the same namespace.
  t.is(fstatSync(h.fd).ino, inum);
  t.is(native!.nsIoctl(h.fd, 'NS_GET_ID').toString(), id!);
  // open() finds it through the held handle
  const second = await src.open('net', inum, id!);
  t.truthy(second);
  t.is(second!.info.nsId, id);
  second!.close();
  t.is(src.heldCount, 1);

  h.close();
  t.is(src.heldCount, 0);
  t.is(await src.open('net', inum, id!), null, 'namespace still reachable after close()');
});

nativeTest('keepWith(): holds are reported once per namespace; a namespace only a holder\'s descriptor keeps is found through it', async (t) => {
  // The holder's copy (a keeper's): this process's own descriptor, opened outside any source.
  const { inum } = await keptOnlyByCopy(t);

  t.is(await new ProcNamespaceSource({ logger, native }).open('net', inum), null, 'no process names it any more');
  const events: string[] = [];
  const src = new ProcNamespaceSource({ logger, native });
  src.keepWith(
    {
      held: (info, fd) => events.push(`held ${info.type}:${info.inum} ${fstatSync(fd).ino}`),
      released: (type, n) => events.push(`released ${type}:${n}`),
    },
    [process.pid],
  );
  t.true((await src.list()).some((r) => r.type === 'net' && r.inum === inum), 'listed through the holder');
  const a = (await src.open('net', inum))!;
  t.truthy(a, 'opened through the holder\'s descriptor');
  const b = (await src.open('net', inum))!;
  t.deepEqual(events, [`held net:${inum} ${inum}`], 'one hold for two handles');
  a.close();
  t.is(events.length, 1, 'still held by the second handle');
  b.close();
  t.deepEqual(events, [`held net:${inum} ${inum}`, `released net:${inum}`]);
});

nativeTest('check(): reads a namespace without a hold, so a keeper is told nothing; null for a gone or reused id', async (t) => {
  const { inum, close } = await keptOnlyByCopy(t);
  const events: string[] = [];
  const src = new ProcNamespaceSource({ logger, native });
  src.keepWith({ held: (info) => events.push(`held ${info.inum}`), released: (_type, n) => events.push(`released ${n}`) }, [process.pid]);
  const info = await src.check('net', inum);
  t.is(info?.inum, inum, 'found through the holder');
  t.truthy(info?.nsId);
  t.is((await src.check('net', inum, info!.nsId!))?.nsId, info!.nsId, 'the same incarnation');
  t.is(await src.check('net', inum, String(BigInt(info!.nsId!) + 1n)), null, 'another id: not this namespace');
  t.deepEqual(events, [], 'no hold was announced, so none is released');
  t.is(src.heldCount, 0);
  t.false(src.holds('net', inum));
  const h = (await src.open('net', inum))!;
  t.true(src.holds('net', inum));
  h.close();
  t.deepEqual(events, [`held ${inum}`, `released ${inum}`], 'a hold is announced and released');
  close();
  t.is(await src.check('net', inum), null, 'gone with its last reference');
});

test('without the native helper: open() still works, ids and owners are null', async (t) => {
  const src = new ProcNamespaceSource({ logger, native: null });
  const h = await src.open('uts', selfNs('uts').inum);
  t.truthy(h);
  t.is(h!.info.nsId, null);
  t.is(h!.info.owner, null);
  h!.close();
});

/** Whether this process may bind-mount an nsfs file (root outside a locked-down container). */
function canBindNsfs(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'handlefs-nsprobe-'));
  const target = join(dir, 'probe');
  writeFileSync(target, '');
  try {
    execFileSync('mount', ['--bind', '/proc/self/ns/net', target], { stdio: 'ignore' });
    execFileSync('umount', [target], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const bindTest = canBindNsfs() ? test : test.skip;

bindTest('nsfs bind mounts (ip netns style) are listed and openable after their process dies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'handlefs-ns-'));
  const target = join(dir, 'blue');
  writeFileSync(target, '');
  const child = spawn('unshare', ['--net', 'sleep', '30'], { stdio: 'ignore' });
  let mounted = false;
  t.teardown(() => {
    child.kill('SIGKILL');
    if (mounted) execFileSync('umount', [target]);
    rmSync(dir, { recursive: true, force: true });
  });
  const ours = selfNs('net').inum;
  const inum = await netnsOf(child, ours);
  t.not(inum, ours);
  execFileSync('mount', ['--bind', `/proc/${child.pid}/ns/net`, target], { stdio: 'ignore' });
  mounted = true;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  const src = new ProcNamespaceSource({ logger, native });
  t.true((await src.list()).some((r) => r.type === 'net' && r.inum === inum));
  const h = await src.open('net', inum);
  t.is(h?.info.inum, inum);
  h?.close();
  execFileSync('umount', [target]);
  mounted = false;
  t.false((await src.list()).some((r) => r.type === 'net' && r.inum === inum));
  t.is(await src.open('net', inum), null);
});
