/** `handlefs ls`: rows from the table (through the kit's container) and bind mounts from mountinfo. */
import test from 'ava';
import { formatHandles, listHandles, parseHandleMounts } from '../../src/service/handles.js';
import { createTestFilesystem } from '../../src/testing/index.js';

// Two lines of a real mountinfo: a handlefs mount at /run/handles (device 0:77) and a bind mount
// of one of its namespace handles at /run/netns/blue, plus an unrelated one on the same path shape.
const MOUNTINFO = [
  '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '90 22 0:77 / /run/handles ro,nosuid,nodev shared:50 - fuse.handlefs handlefs rw,user_id=0,group_id=0',
  '91 22 0:77 /ns/net/4026532177 /run/netns/blue ro,nosuid,nodev shared:50 - fuse.handlefs handlefs rw,user_id=0,group_id=0',
  '92 22 0:77 /by-ino/1030 /srv/with\\040space ro shared:50 - fuse.handlefs handlefs rw',
  // The service invalidated the name after binding (an idle namespace handle): still a mount of it.
  '94 22 0:77 /ns/net/4026532177//deleted /run/netns/red ro shared:50 - fuse.handlefs handlefs rw',
  '93 22 0:78 /ns/net/4026532177 /elsewhere ro shared:51 - fuse.other other rw',
  '',
].join('\n');

test('bind mounts of handles are the same-device mounts whose root is not the filesystem root', (t) => {
  const m = parseHandleMounts(MOUNTINFO, '/run/handles');
  t.deepEqual([...m.entries()], [
    ['/ns/net/4026532177', ['/run/netns/blue', '/run/netns/red']],
    ['/by-ino/1030', ['/srv/with space']],
  ]);
  t.is(parseHandleMounts(MOUNTINFO, '/not/mounted').size, 0, 'no handlefs mount there: nothing can be told');
});

test('one row per handle: kind, key, name, state and every holder', async (t) => {
  const fs = createTestFilesystem();
  t.teardown(() => fs.close());
  const worker = fs.host.start({ comm: 'worker one' });
  const idle = fs.host.start({ comm: 'idle' });
  const ns = fs.host.createNamespace('net');
  const wEntry = await fs.lookupPath(`pid/${worker.pid}`); // the kernel holds it: a cached name, or a bind mount
  const nsEntry = await fs.lookupPath(`ns/net/${ns.inum}`);
  const iEntry = await fs.lookupPath(`pid/${idle.pid}`);
  await fs.pin(`pid/${idle.pid}`);
  fs.forget(iEntry.nodeId);
  const file = await fs.open(wEntry.nodeId);
  fs.host.exit(worker.pid);

  const mounts = new Map([
    [`/ns/net/${ns.inum}`, ['/run/netns/blue']],
    [`/pid/${idle.pid}`, ['/should/not/show']], // the kernel holds no lookup of idle's handle: not a mount of it
  ]);
  const rows = listHandles(fs.tree, mounts);
  const byIno = new Map(rows.map((r) => [r.ino, r]));
  t.deepEqual(rows.map((r) => r.ino), [...rows.map((r) => r.ino)].sort((a, b) => a - b), 'ordered by number');

  const w = byIno.get(wEntry.nodeId)!;
  t.like(w, { kind: 'process', key: worker.pid, name: 'worker one', state: 'dead', lookups: 1, opens: 1, pins: 0, held: null, mounts: [] });
  const i = byIno.get(iEntry.nodeId)!;
  t.like(i, { kind: 'process', key: idle.pid, name: 'idle', state: 'live', lookups: 0, opens: 0, pins: 1, mounts: [] });
  const n = byIno.get(nsEntry.nodeId)!;
  t.like(n, { kind: 'namespace', key: ns.inum, name: 'net', state: 'live', lookups: 1, held: true });
  t.deepEqual(n.mounts, ['/run/netns/blue']);

  const text = formatHandles(rows).split('\n');
  t.regex(text[0]!, /^\s*INO KIND\s+KEY NAME\s+STATE\s+LOOKUPS OPENS PINS HELD MOUNTS$/);
  t.is(text.length, rows.length + 1);
  t.regex(text.find((l) => l.includes('worker'))!, new RegExp(`^\\s*${wEntry.nodeId} process\\s+${worker.pid} worker\\\\x20one\\s+dead\\s+1\\s+1\\s+0 -\\s+-$`), 'a space in a comm is escaped');
  t.regex(text.find((l) => l.includes('net '))!, /live\s+1\s+0\s+0 yes\s+\/run\/netns\/blue$/);
  await fs.release(file.fh);
});
