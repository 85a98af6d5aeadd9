import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { StateLockedError, lockHolders } from '../../src/store/index.js';
import { exited, open, removeTempDirs, spawnFixture, tempDir, waitForLine } from './helpers.js';

test.after.always(removeTempDirs);

test('a second open in the same process is refused with a message naming this pid', (t) => {
  const file = path.join(tempDir(), 'state.db');
  const first = open(file);
  t.teardown(() => first.close());
  const err = t.throws(() => open(file), { instanceOf: StateLockedError });
  t.regex(err!.message, new RegExp(`in use by pid ${process.pid} \\(this process\\)`));
  t.true(err!.message.includes(file));
  t.false(err!.message.includes('\n'));
  // The refused attempt did not disturb the holder: it still works and still holds the lock.
  const { start } = first.reserve(1);
  t.true(start >= 1024);
  t.deepEqual(lockHolders(`${file}.lock`), [process.pid]);
});

test.serial('a second open from another process is refused naming the holder; a clean exit releases', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const child = spawnFixture('hold-lock.ts', [file]);
  t.teardown(() => child.kill('SIGKILL'));
  const [, pid] = (await waitForLine(child, /^locked (\d+)$/))!;
  t.is(Number(pid), child.pid!);
  const err = t.throws(() => open(file), { instanceOf: StateLockedError });
  t.regex(err!.message, new RegExp(`in use by pid ${child.pid}[;,]`));
  t.deepEqual((err as StateLockedError).holders, [child.pid!]);
  child.stdin!.end();
  t.is((await exited(child)).code, 0);
  const store = open(file);
  t.is(store.generation, 2);
  store.close();
});

test.serial('the lock of a SIGKILLed daemon is gone at once (kernel lock, no stale file to clean)', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const child = spawnFixture('hold-lock.ts', [file]);
  t.teardown(() => child.kill('SIGKILL'));
  await waitForLine(child, /^locked \d+$/);
  t.throws(() => open(file), { instanceOf: StateLockedError });
  child.kill('SIGKILL');
  t.is((await exited(child)).signal, 'SIGKILL');
  t.true(fs.existsSync(`${file}.lock`)); // the file stays; only the kernel lock mattered
  const store = open(file);
  t.is(store.startup.origin, 'restart');
  t.true(store.generation >= 2);
  store.close();
});

test.serial('a child is refused while this process holds the store', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const store = open(file);
  t.teardown(() => store.close());
  const child = spawnFixture('hold-lock.ts', [file]);
  t.teardown(() => child.kill('SIGKILL'));
  const [, message] = (await waitForLine(child, /^refused (.*)$/))!;
  t.true(message!.includes(`in use by pid ${process.pid}`));
  t.is((await exited(child)).code, 3);
});
