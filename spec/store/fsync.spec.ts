import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { FIXTURES, removeTempDirs, tempDir } from './helpers.js';

test.after.always(removeTempDirs);

function straceWorks(): true | string {
  try {
    execFileSync('strace', ['-o', '/dev/null', 'true'], { stdio: 'pipe' });
    return true;
  } catch (err) {
    return `strace unavailable or ptrace not permitted (${(err as Error).message.split('\n')[0]})`;
  }
}

const strace = straceWorks();
const straceTest = strace === true ? test : test.skip;
if (strace !== true) console.warn(`fsync.spec: skipping: ${strace}`);

// A SIGKILL leaves the page cache intact, so the crash spec cannot tell a written page from a
// durable one; this checks the system calls themselves: nothing is revealed before the fsyncs.
straceTest('a number is revealed only after the WAL and FILE.hwm were fsync\'d (strace)', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'state.db');
  const log = path.join(dir, 'strace.log');
  const r = spawnSync(
    'strace',
    ['-f', '-y', '-s', '64', '-o', log, '-e', 'trace=write,pwrite64,fsync,fdatasync,rename', process.execPath, '--import', 'tsx', path.join(FIXTURES, 'reveal.ts'), file],
    { encoding: 'utf8' },
  );
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^revealed \d+\n$/);
  const calls = fs.readFileSync(log, 'utf8').split('\n');
  const reveal = calls.findIndex((l) => /write\(1(<[^>]*>)?, "revealed /.test(l));
  t.true(reveal > 0, 'the reveal is in the trace');
  const before = calls.slice(0, reveal);
  const wal = `${file}-wal`;
  const lastWalWrite = before.findLastIndex((l) => l.includes(`pwrite64(`) && l.includes(`<${wal}>`));
  const lastWalSync = before.findLastIndex((l) => /\b(fsync|fdatasync)\(/.test(l) && l.includes(`<${wal}>`));
  t.true(lastWalWrite >= 0, 'the commit wrote the WAL');
  t.true(lastWalSync > lastWalWrite, 'the WAL was fsync\'d after its last write and before the reveal');
  // The range's end in FILE.hwm: temp file fsync'd, renamed into place, directory fsync'd.
  const tmpSync = before.findLastIndex((l) => /\bfsync\(/.test(l) && l.includes(`<${file}.hwm.tmp>`));
  const rename = before.findLastIndex((l) => l.includes(`rename("${file}.hwm.tmp", "${file}.hwm")`));
  const dirSync = before.findLastIndex((l) => /\bfsync\(/.test(l) && l.includes(`<${dir}>`));
  t.true(tmpSync >= 0 && rename > tmpSync && dirSync > rename, 'FILE.hwm: fsync, rename, fsync(dir) before the reveal');
});
