/** What docs/testing.md promises about same-tick pid reuse and unpin without a pin, checked. */
import test from 'ava';
import { createTestFilesystem } from '../../src/testing/index.js';

test('reusePid(pid, { startTime }) within one clock tick: same pid and start time, a new number', async (t) => {
  const fs = createTestFilesystem();
  t.teardown(() => fs.close());
  const old = fs.host.start({ comm: 'old' });
  const ino = await fs.ino(`pid/${old.pid}`);
  const next = fs.host.reusePid(old.pid, { startTime: old.startTime, comm: 'new' });
  t.is(next.pid, old.pid);
  t.is(next.startTime, old.startTime, 'the start time cannot tell them apart');
  const ino2 = await fs.ino(`pid/${next.pid}`);
  t.true(ino2 > ino, 'the new process has a new, larger number');
  t.is((await fs.readFields(`pid/${next.pid}`)).Comm, 'new');
  await t.throwsAsync(fs.stat(`by-ino/${ino}`), { code: 'ENOENT' });
});

test('unpin of a handle without a pin is EINVAL and changes nothing', async (t) => {
  const fs = createTestFilesystem();
  t.teardown(() => fs.close());
  const p = fs.host.start();
  const entry = await fs.lookupPath(`pid/${p.pid}`);
  await t.throwsAsync(fs.unpin(entry.nodeId), { code: 'EINVAL' });
  t.deepEqual(fs.counts(entry.nodeId), { lookups: 1, opens: 0, pins: 0, holds: 0 });
  await t.throwsAsync(fs.unpin(`pid/${p.pid}`), { code: 'EINVAL' });
  t.deepEqual(fs.counts(entry.nodeId), { lookups: 1, opens: 0, pins: 0, holds: 0 }, 'the path form gave its lookup back');
  await t.throwsAsync(fs.pin('pid'), { code: 'EINVAL' }, 'a static directory cannot be pinned');
});
