/**
 * The inodes.state column (schema 2): what the tree records about an object for a successor
 * (a process's last known fields and how it ended) is stored with its row, checksummed, and
 * rows written by schema 1 (no such column) stay readable.
 */
import * as path from 'node:path';
import test from 'ava';
import Database from 'better-sqlite3';
import { FIRST_DYNAMIC_INO } from '../../src/core/numbers.js';
import { SCHEMA_VERSION } from '../../src/store/index.js';
import { open, record, removeTempDirs, tempDir } from './helpers.js';

test.after.always(removeTempDirs);

test('a row keeps its state across close and open; a row without one has none', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const store = open(file);
  const { start } = store.reserve(2);
  const state = JSON.stringify({ v: 1, comm: 'sleep\tx', ended: { state: 'exited', code: 7 } });
  store.put(record(start, store.generation, 4242, { state }));
  store.put(record(start + 1, store.generation, 4243));
  await store.flush();
  store.close();
  const again = open(file);
  t.teardown(() => again.close());
  const rows = [...again.load()].sort((a, b) => a.ino - b.ino);
  t.is(rows.length, 2);
  t.is(rows[0]!.state, state);
  t.false('state' in rows[1]!);
  // Replacing a row replaces its state (the exit record is written over the row).
  again.put({ ...rows[0]!, state: null });
  await again.flush();
  t.false('state' in [...again.load()].find((r) => r.ino === start)!);
});

test('a changed state breaks the row checksum: the file is damaged, not trusted', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const store = open(file);
  const { start } = store.reserve(1);
  store.put(record(start, store.generation, 4242, { state: '{"v":1,"ended":{"state":"exited","code":7}}' }));
  await store.flush();
  store.close();
  const db = new Database(file);
  db.prepare('UPDATE inodes SET state = ? WHERE ino = ?').run('{"v":1,"ended":{"state":"exited","code":0}}', start);
  db.close();
  const reopened = open(file);
  t.teardown(() => reopened.close());
  t.is(reopened.startup.origin, 'recovered');
  t.deepEqual([...reopened.load()], []);
  t.true(reopened.highWater > start, 'the number stays retired');
});

test('a schema 1 file (written before the state column) is migrated and its rows read as before', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const store = open(file);
  const { start } = store.reserve(3);
  for (let i = 0; i < 3; i++) store.put(record(start + i, store.generation, 100 + i));
  await store.flush();
  store.close();
  // What today's main writes: no state column, user_version 1 (same rows, same checksums).
  const db = new Database(file);
  db.exec('ALTER TABLE inodes DROP COLUMN state');
  db.pragma('user_version = 1');
  db.close();
  const migrated = open(file);
  t.teardown(() => migrated.close());
  t.not(migrated.startup.origin, 'recovered', 'not treated as damage');
  const rows = [...migrated.load()].sort((a, b) => a.ino - b.ino);
  t.deepEqual(
    rows.map((r) => [r.ino, r.key, 'state' in r]),
    [0, 1, 2].map((i) => [start + i, 100 + i, false]),
  );
  t.true(start >= FIRST_DYNAMIC_INO);
  const raw = new Database(file, { readonly: true });
  t.is(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  raw.close();
  // And it takes states from now on.
  migrated.put({ ...rows[0]!, state: '{"v":1}' });
  await migrated.flush();
  t.is([...migrated.load()].find((r) => r.ino === start)!.state, '{"v":1}');
});

test('putState: a durable number never waits for its state; a new one still waits for its row', async (t) => {
  const file = path.join(tempDir(), 'state.db');
  const store = open(file);
  const { start } = store.reserve(2);
  store.put(record(start, store.generation, 1));
  await store.flush();
  store.putState(record(start, store.generation, 1, { state: '{"v":1}' }));
  t.is(store.whenDurable(start), undefined, 'the number was durable: nothing to wait for');
  t.true(store.dirty);
  store.put(record(start + 1, store.generation, 2));
  store.putState(record(start + 1, store.generation, 2, { state: '{"v":1}' }));
  t.truthy(store.whenDurable(start + 1), 'a new row is waited for, state or not');
  await store.flush();
  t.is(store.whenDurable(start + 1), undefined);
  store.close();
  const again = open(file);
  t.teardown(() => again.close());
  const rows = [...again.load()].sort((a, b) => a.ino - b.ino);
  t.deepEqual(rows.map((r) => r.state), ['{"v":1}', '{"v":1}']);
});
