/**
 * Status: which namespaces the service holds and why; a bind mount of a handle counts as pinned
 * (it used to read 0, the kernel's lookup being all the service saw of it).
 */
import test from 'ava';
import type { MountInfoEntry } from '../../src/fuse/mount.js';
import { handleBindMounts } from '../../src/service/bind-mounts.js';
import { collectStatus, formatStatus } from '../../src/service/status.js';
import { createTestFilesystem } from '../../src/testing/index.js';

const entry = (mountpoint: string, device: string, root: string, fstype = 'fuse.handlefs'): MountInfoEntry => ({ mountpoint, device, root, fstype, source: 'handlefs', options: 'ro' });

test('bind mounts of handle files are found by device and root; a dropped name still counts', (t) => {
  const found = handleBindMounts('/mnt/h', [
    entry('/', '8:1', '/', 'ext4'),
    entry('/mnt/h', '0:46', '/'),
    entry('/srv/a', '0:46', '/ns/net/4026532000'),
    entry('/srv/b', '0:46', '/ns/net/4026532000//deleted'),
    entry('/srv/c', '0:46', '/pid/42'),
    entry('/other', '0:47', '/ns/net/4026532001'),
  ]);
  t.deepEqual([...found], [
    ['/ns/net/4026532000', ['/srv/a', '/srv/b']],
    ['/pid/42', ['/srv/c']],
  ]);
  t.is(handleBindMounts('/not/mounted', [entry('/mnt/h', '0:46', '/')]).size, 0);
});

test('status lists held namespaces with their reasons; a bind-mounted handle is pinned', async (t) => {
  const fs = createTestFilesystem();
  t.teardown(() => fs.close());
  const net = fs.host.createNamespace('net');
  const bound = await fs.lookupPath(`ns/net/${net.inum}`); // the kernel's lookup a bind mount keeps
  const uts = fs.host.createNamespace('uts');
  const opened = await fs.lookupPath(`ns/uts/${uts.inum}`);
  const f = await fs.open(opened.nodeId);
  const status = (bindMounts: Map<number, string[]>) =>
    collectStatus({
      version: 't',
      mountpoint: '/mnt/h',
      statePath: '/nonexistent',
      startedAt: Date.now(),
      table: fs.table,
      store: fs.store as never,
      held: () => fs.tree.heldNamespaces(),
      bindMounts: () => bindMounts,
    });
  const without = status(new Map());
  t.is(without.kinds.namespace!.pinned, 1, 'only the open descriptor without the mount table');
  const s = status(new Map([[bound.nodeId, ['/run/netns/a']]]));
  t.is(s.kinds.namespace!.pinned, 2);
  t.deepEqual(
    (s.held ?? []).filter((h) => h.type !== 'user').map((h) => [h.type, h.inum, h.reasons]),
    [
      ['net', net.inum, ['bind mount /run/netns/a']],
      ['uts', uts.inum, ['open descriptor', 'kernel lookup (a cached name, or a bind mount in another mount namespace)']],
    ],
  );
  t.deepEqual((s.held ?? []).find((h) => h.type === 'user')?.reasons, ['grace period after last use'], 'the owner, opened to render the handles');
  t.regex(formatStatus(s), /held namespaces \(3\)\n {2}net +\d+ +handle \d+: bind mount \/run\/netns\/a/);
  await fs.release(f.fh);
});
