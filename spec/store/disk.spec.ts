/**
 * A read-only state directory and a full disk, on small tmpfs mounts made for the test (root
 * bypasses permission bits, so chmod cannot simulate them). Every mount is unmounted in teardown.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { canMountTmpfs, captureLogger, fillDisk, mountTmpfs, open, record } from './helpers.js';

const can = canMountTmpfs();
const mountTest = can === true ? test.serial : test.skip;
if (can !== true) console.warn(`disk.spec: skipping read-only and full-disk tests: ${can}`);

mountTest('a read-only state directory: open fails with one line naming the path and the cause', (t) => {
  const fsys = mountTmpfs('1m');
  t.teardown(() => fsys.cleanup());
  const file = path.join(fsys.dir, 'state.db');
  open(file).close(); // an existing state
  fsys.remount('ro');
  const err = t.throws(() => open(file));
  t.log(err!.message);
  t.true(err!.message.includes(file), err!.message);
  t.regex(err!.message, /EROFS|read-only/i);
  t.false(err!.message.includes('\n'));
  // A new state in a read-only directory fails the same way.
  const err2 = t.throws(() => open(path.join(fsys.dir, 'new', 'state.db')));
  t.regex(err2!.message, /EROFS|read-only/i);
  fsys.remount('rw');
  const store = open(file); // and nothing was left locked or damaged
  t.is(store.startup.origin, 'restart');
  store.close();
});

mountTest('a full disk at open: one clear line naming the path and the cause', (t) => {
  const fsys = mountTmpfs('1m');
  t.teardown(() => fsys.cleanup());
  const file = path.join(fsys.dir, 'state.db');
  open(file).close();
  fillDisk(path.join(fsys.dir, 'filler'));
  const err = t.throws(() => open(file));
  t.log(err!.message);
  t.true(err!.message.includes(file), err!.message);
  t.regex(err!.message, /ENOSPC|no space|full/i);
  t.false(err!.message.includes('\n'));
  fs.rmSync(path.join(fsys.dir, 'filler'));
  const store = open(file);
  t.is(store.startup.origin, 'restart');
  store.close();
});

mountTest('a disk that fills at run time: flush rejects and logs once, reserve throws, and all recovers with the disk', async (t) => {
  const fsys = mountTmpfs('2m');
  t.teardown(() => fsys.cleanup());
  const file = path.join(fsys.dir, 'state.db');
  const { logger, lines } = captureLogger();
  const store = open(file, { logger });
  t.teardown(() => store.isClosed || store.close());
  const { start, end } = store.reserve(5000);
  fillDisk(path.join(fsys.dir, 'filler'));

  for (let i = 0; i < 3000; i++) store.put(record(start + i, store.generation, i, { scope: `boot-${i % 7}` }));
  const e1 = await t.throwsAsync(store.flush());
  t.regex(e1!.message, /SQLITE_FULL|disk is full/);
  t.true(e1!.message.includes(file));
  t.true(store.dirty, 'the rows stay queued');
  const e2 = await t.throwsAsync(store.flush()); // a retry fails the same way ...
  t.regex(e2!.message, /SQLITE_FULL|disk is full/);
  const errors = lines.filter((l) => l.level >= 50);
  t.is(errors.length, 1, 'one line per failure episode, not per commit');
  t.regex(errors[0]!.msg, /failed.*unrevealed/);
  const e3 = t.throws(() => store.reserve(1));
  t.regex(e3!.message, /cannot make high-water mark .* durable/);
  t.is(store.highWater, end, 'a failed reserve grants nothing');

  fs.rmSync(path.join(fsys.dir, 'filler')); // the disk recovers
  await store.flush();
  t.false(store.dirty);
  t.true(lines.some((l) => l.level === 40 && /succeed again/.test(l.msg)));
  const r = store.reserve(1);
  t.true(r.start >= end);
  store.close();
  const again = open(file);
  t.is([...again.load()].length, 3000);
  t.true(again.highWater >= r.end);
  again.close();
});
