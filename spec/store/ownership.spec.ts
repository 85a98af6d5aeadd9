/**
 * `--state` pointing at a file handlefs did not write (a typo, /etc/passwd, a foreign database):
 * refused, and the file and its directory are left exactly as they were: no rename, no
 * FILE.lock, no -wal/-shm, no FILE.hwm.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import test from 'ava';
import Database from 'better-sqlite3';
import { APPLICATION_ID, NotOurStateError, classifyStateFile, formatHwm } from '../../src/store/index.js';
import { open, removeTempDirs, tempDir } from './helpers.js';

test.after.always(removeTempDirs);

interface Snapshot {
  names: string[];
  bytes?: Buffer;
  mtimeMs?: number;
  mode?: number;
}

function snapshot(file: string): Snapshot {
  const names = fs.readdirSync(path.dirname(file)).sort();
  const st = fs.statSync(file);
  return st.isFile() ? { names, bytes: fs.readFileSync(file), mtimeMs: st.mtimeMs, mode: st.mode } : { names, mtimeMs: st.mtimeMs, mode: st.mode };
}

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n';

const foreign: [string, (file: string) => void][] = [
  ['a text file (an /etc/passwd look-alike)', (f) => fs.writeFileSync(f, PASSWD)],
  ['an empty file', (f) => fs.writeFileSync(f, '')],
  ['a binary file of 8 KiB', (f) => fs.writeFileSync(f, Buffer.alloc(8192, 0xa5))],
  [
    'a foreign SQLite database',
    (f) => {
      const db = new Database(f);
      db.exec('CREATE TABLE notes (x); INSERT INTO notes VALUES (1)');
      db.close();
    },
  ],
  [
    'a foreign SQLite database in WAL mode with another application_id',
    (f) => {
      const db = new Database(f);
      db.pragma('journal_mode = WAL');
      db.pragma('application_id = 1234');
      db.exec('CREATE TABLE meta (x)');
      db.close();
    },
  ],
  ['a directory', (f) => fs.mkdirSync(f)],
  ['a FIFO', (f) => spawnSync('mkfifo', [f])],
];

for (const [name, make] of foreign) {
  test(`${name} at --state is refused and left byte for byte, with nothing created next to it`, (t) => {
    const file = path.join(tempDir(), 'passwd');
    make(file);
    const before = snapshot(file);
    t.is(classifyStateFile(file).kind, 'foreign');
    const err = t.throws(() => open(file), { instanceOf: NotOurStateError });
    t.regex(err!.message, /is not a handlefs state file .*refusing to touch it/);
    t.false(err!.message.includes('\n'));
    t.deepEqual(snapshot(file), before, 'same bytes, mtime, mode, and no new file in the directory');
  });
}

test('a foreign database next to a corrupt-looking hwm that is not handlefs text is still refused', (t) => {
  const file = path.join(tempDir(), 'state.db');
  fs.writeFileSync(file, PASSWD);
  fs.writeFileSync(`${file}.hwm`, 'some other tool\n');
  const before = snapshot(file);
  t.throws(() => open(file), { instanceOf: NotOurStateError });
  t.deepEqual(snapshot(file), before);
});

test('a WAL without its database and without a handlefs hwm file is refused, not moved', (t) => {
  const file = path.join(tempDir(), 'state.db');
  fs.writeFileSync(`${file}-wal`, Buffer.alloc(4096, 1));
  const names = fs.readdirSync(path.dirname(file));
  t.throws(() => open(file), { instanceOf: NotOurStateError, message: /write-ahead log/ });
  t.deepEqual(fs.readdirSync(path.dirname(file)), names);
});

test('a garbled file whose FILE.hwm is handlefs\'s is a damaged state of ours: moved aside, numbers continue', (t) => {
  const file = path.join(tempDir(), 'state.db');
  fs.writeFileSync(file, PASSWD);
  fs.writeFileSync(`${file}.hwm`, formatHwm({ highWater: 50_000, generation: 7 }));
  const store = open(file);
  t.is(store.startup.origin, 'recovered');
  t.true(store.highWater >= 50_000);
  t.is(store.startup.quarantined.length, 1);
  t.is(fs.readFileSync(store.startup.quarantined[0]!, 'utf8'), PASSWD);
  store.close();
});

test('a new state carries the application_id in its file header from the first moment, mode 0600', (t) => {
  const dir = path.join(tempDir(), 'fresh', 'deeper');
  const file = path.join(dir, 'state.db');
  const store = open(file);
  t.teardown(() => store.close());
  // Before any checkpoint: the bytes on disk already say whose file this is.
  const head = Buffer.alloc(100);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, head, 0, 100, 0);
  fs.closeSync(fd);
  t.is(head.readUInt32BE(68), APPLICATION_ID);
  t.deepEqual(classifyStateFile(file), { kind: 'ours', why: 'application_id' });
  for (const f of [file, `${file}.hwm`, `${file}.lock`]) t.is(fs.statSync(f).mode & 0o777, 0o600, f);
  t.is(fs.statSync(dir).mode & 0o777, 0o700);
  t.false(fs.existsSync(`${file}.init`));
});
