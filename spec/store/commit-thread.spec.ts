import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { encodeBatch } from '../../src/store/commit-transaction.js';
import { STATUS, commitThreadModule, type CommitReply, type CommitThreadData } from '../../src/store/commit-worker.js';
import type { SqliteStore } from '../../src/store/index.js';
import { Names } from '../../src/store/names.js';
import { captureLogger, open, record, removeTempDirs, tempDir } from './helpers.js';

test.after.always(removeTempDirs);

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function internals(store: SqliteStore) {
  // The group commits (group-commit.ts) the store runs.
  return (store as unknown as { commits: { inFlight?: unknown; worker?: { send: (seq: number, batch: unknown) => void; worker: { ref(): void; postMessage(m: unknown): void } } } }).commits;
}

test('a flush() requested while a commit runs on the commit thread waits for the next commit', async (t) => {
  const store = open(path.join(tempDir(), 'state.db'));
  t.teardown(() => store.close());
  const { start } = store.reserve(200);
  for (let i = 0; i < 100; i++) store.put(record(start + i, store.generation, i));
  const first = store.flush();
  await turn(); // the commit has been handed to the commit thread; its reply is not processed yet
  t.truthy(internals(store).inFlight);
  t.true(store.dirty, 'rows being committed still count as not durable');
  t.is(store.flush(), first, 'nothing new queued: wait for the commit in flight');
  for (let i = 100; i < 200; i++) store.put(record(start + i, store.generation, i));
  const second = store.flush();
  t.not(second, first);
  await first;
  t.is(store.stats.commits, 1);
  t.is(store.stats.rowsWritten, 100);
  await second;
  t.is(store.stats.commits, 2);
  t.is(store.stats.rowsWritten, 200);
  t.false(store.dirty);
});

// Serial: other tests' synchronous opens would hold the shared event loop.
test.serial('the event loop keeps turning while a commit runs on the commit thread', async (t) => {
  const store = open(path.join(tempDir(), 'state.db'));
  t.teardown(() => store.close());
  const { start } = store.reserve(5000);
  for (let i = 0; i < 5000; i++) store.put(record(start + i, store.generation, i));
  let done = false;
  const p = store.flush().then(() => (done = true));
  let turns = 0;
  while (!done) {
    await turn();
    turns++;
  }
  await p;
  t.log(`${turns} event-loop turns during one 5000-row commit`);
  t.true(turns > 10);
});

test('close() waits for the commit in flight and commits the rest on the main thread', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const store = open(file);
  const { start } = store.reserve(20);
  for (let i = 0; i < 10; i++) store.put(record(start + i, store.generation, i));
  const first = store.flush();
  await turn();
  t.truthy(internals(store).inFlight);
  for (let i = 10; i < 20; i++) store.put(record(start + i, store.generation, i));
  const second = store.flush();
  store.close();
  await t.notThrowsAsync(first);
  await t.notThrowsAsync(second);
  const again = open(file);
  t.is([...again.load()].length, 20);
  again.close();
});

test('if the commit thread dies, the commit in flight is rejected and its changes are committed on the main thread', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const { logger, lines } = captureLogger();
  const store = open(file, { logger });
  const { start } = store.reserve(10);
  store.put(record(start, store.generation, 1));
  await store.flush(); // starts the thread
  // The next commit handed to the thread makes it exit instead of running it. (Killing it with
  // terminate() inside a native SQLite call could abort the whole process.)
  const thread = internals(store).worker!;
  thread.send = () => {
    thread.worker.ref(); // as send() does while a commit is in flight
    thread.worker.postMessage({ type: 'die' });
  };
  store.put(record(start + 1, store.generation, 2, { kind: 'brand-new-kind', scope: 'brand-new-scope' }));
  const doomed = store.flush();
  await turn();
  t.truthy(internals(store).inFlight);
  await t.throwsAsync(doomed, { message: /did not complete/ });
  t.true(lines.some((l) => l.level >= 50 && /commit thread failed/.test(l.msg)));
  t.true(store.dirty, 'the changes are queued again');
  store.put(record(start + 2, store.generation, 3, { kind: 'brand-new-kind' }));
  await store.flush(); // now on the main thread
  t.is(internals(store).worker, undefined);
  store.close();
  const again = open(file);
  const rows = [...again.load()].sort((a, b) => a.ino - b.ino);
  t.deepEqual(
    rows.map((r) => [r.ino, r.kind, r.scope]),
    [
      [start, 'process', 'boot-a'],
      [start + 1, 'brand-new-kind', 'brand-new-scope'],
      [start + 2, 'brand-new-kind', 'boot-a'],
    ],
  );
  again.close();
});

test('commitThread: false commits on the main thread with the same results', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const store = open(file, { commitThread: false });
  const { start } = store.reserve(100);
  const flushes = [];
  for (let i = 0; i < 100; i++) {
    store.put(record(start + i, store.generation, i));
    flushes.push(store.flush());
  }
  await Promise.all(flushes);
  t.is(store.stats.commits, 1);
  t.is(internals(store).worker, undefined);
  store.close();
  const again = open(file, { commitThread: false });
  t.is([...again.load()].length, 100);
  again.close();
});

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist');

test('the built package finds its commit thread from every bundle, and the thread commits a batch', async (t) => {
  const thread = path.join(DIST, 'store/commit-thread.js');
  // This module's code runs from a chunk in dist/ or from an entry one level below it.
  const bundles = [
    path.join(DIST, 'index.js'),
    path.join(DIST, 'cli/main.js'),
    path.join(DIST, 'testing/index.js'),
    ...fs.readdirSync(DIST).filter((n) => /^chunk-.*\.js$/.test(n)).map((n) => path.join(DIST, n)),
  ];
  for (const from of bundles) t.is(fileURLToPath(commitThreadModule(pathToFileURL(from).href)), thread, from);
  t.throws(() => commitThreadModule(pathToFileURL('/nonexistent/chunk.js').href), { message: /commit thread's module is missing/ });

  const file = path.join(tempDir(), 'state.db');
  const store = open(file);
  const { start } = store.reserve(2);
  const generation = store.generation;
  store.close();
  const rows = [record(start, generation, 1), record(start + 1, generation, 2, { kind: 'namespace' })];
  const batch = encodeBatch(new Map(rows.map((r) => [r.ino, r])), new Names('kinds', 'kind'), new Names('scopes', 'scope'));
  const status = new SharedArrayBuffer(4 * Object.keys(STATUS).length);
  const workerData: CommitThreadData = { file, busyTimeoutMs: 1000, status };
  const worker = new Worker(thread, { workerData, execArgv: [] });
  const reply = await new Promise<CommitReply>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.postMessage({ seq: 1, batch });
  });
  worker.postMessage({ type: 'close' });
  await new Promise((resolve) => worker.once('exit', resolve));
  t.deepEqual(reply, { seq: 1, ok: true });
  t.is(Atomics.load(new Int32Array(status), STATUS.done), 1);
  t.is(Atomics.load(new Int32Array(status), STATUS.closed), 1);
  const again = open(file);
  t.deepEqual([...again.load()].sort((a, b) => a.ino - b.ino), rows);
  again.close();
});
