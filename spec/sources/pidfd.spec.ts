/**
 * The pidfd a process handle holds: how a process ended, through the kernel (PIDFD_INFO_EXIT once
 * reaped, /proc/PID/stat's exit code while a zombie), its uids, and signals that never reach a
 * process that reused the pid.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { NativePidfd, statExitStatus } from '../../src/sources/pidfd.js';
import { tryLoadNative } from '../../src/sources/native.js';
import { endingOfWaitStatus } from '../../src/sources/types.js';
import { closeSync, fstatSync, readFileSync } from 'node:fs';

const native = tryLoadNative();
const nativeTest = native === null ? test.skip : test;
if (native === null) console.log('pidfd.spec: the native helper is not built (npm run build:native); pidfd tests skipped');

test('wait statuses: exit codes and signals', (t) => {
  t.deepEqual(endingOfWaitStatus(42 << 8), { state: 'exited', code: 42 });
  t.deepEqual(endingOfWaitStatus(0), { state: 'exited', code: 0 });
  t.deepEqual(endingOfWaitStatus(9), { state: 'killed', signal: 9 });
  t.deepEqual(endingOfWaitStatus(0x80 | 11), { state: 'killed', signal: 11 }, 'a core dump is still the signal');
  t.deepEqual(endingOfWaitStatus(0x137f), { state: 'unknown' }, 'stopped is not an ending');
});

test('field 52 of /proc/PID/stat, whatever the command name holds', (t) => {
  const rest = Array.from({ length: 50 }, (_, i) => (i === 48 ? '10752' : String(i)));
  t.is(statExitStatus(`123 (a) b) c) Z ${rest.join(' ')}\n`), 10752);
  t.is(statExitStatus('123 (short) Z 1 2'), null);
});

nativeTest('a pidfd follows one process: running, then exited 42 (zombie and reaped), and refuses signals after', async (t) => {
  const child = spawn('sh', ['-c', 'read x; exit 42'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const fd = native!.pidfdOpen(child.pid!);
  const ino = fstatSync(fd).ino;
  native!.pidfdSendSignal(fd, 0);
  const p = NativePidfd.open(native!, child.pid!, ino)!;
  t.is(NativePidfd.open(native!, child.pid!, ino + 1), null, 'another incarnation is not this process');
  try {
    t.is(p.pidfsIno, ino);
    t.deepEqual(p.ending(), { state: 'running' });
    t.is(p.uids()?.real, process.getuid!());
    // A zombie: wait for readiness without reaping (Node reaps in its SIGCHLD handler, so
    // observe through the pidfd watch, which fires at the exit).
    const exited = new Promise((r) => child.once('exit', r));
    child.stdin!.end('go\n');
    await exited;
    t.deepEqual(p.ending(), { state: 'exited', code: 42 });
    t.is(p.uids(), null);
    const e = t.throws(() => p.signal(15));
    t.is((e as { code?: string }).code, 'ESRCH');
  } finally {
    p.close();
    closeSync(fd);
    t.true(p.closed);
  }
});

nativeTest('killed by a signal reads the signal', async (t) => {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  const fd = native!.pidfdOpen(child.pid!);
  const p = NativePidfd.open(native!, child.pid!, fstatSync(fd).ino)!;
  try {
    const exited = new Promise((r) => child.once('exit', r));
    p.signal(9);
    await exited;
    t.deepEqual(p.ending(), { state: 'killed', signal: 9 });
  } finally {
    p.close();
    closeSync(fd);
  }
});

nativeTest('a zombie (exited, not reaped) reads its exit code from /proc/PID/stat, checked through the pidfd', async (t) => {
  // The inner shell's parent execs sleep, which never reaps it: it stays a zombie.
  const outer = spawn('sh', ['-c', 'sh -c "sleep 0.5; exit 42" & echo $!; exec sleep 600'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => outer.kill('SIGKILL'));
  const pid = await new Promise<number>((resolve) => outer.stdout!.setEncoding('utf8').once('data', (d: string) => resolve(Number(d.trim()))));
  const probe = native!.pidfdOpen(pid);
  const p = NativePidfd.open(native!, pid, fstatSync(probe).ino)!;
  try {
    t.deepEqual(p.ending(), { state: 'running' });
    await new Promise<void>((resolve) => native!.watchFd(probe, () => resolve()));
    t.deepEqual(p.ending(), { state: 'exited', code: 42 });
  } finally {
    p.close();
    closeSync(probe);
  }
});

nativeTest('watchExit through the pidfd: fires once at the exit; a disposed watch never fires; close disposes', async (t) => {
  const a = spawn('sleep', ['600'], { stdio: 'ignore' });
  const b = spawn('sleep', ['600'], { stdio: 'ignore' });
  const open = (pid: number) => {
    const probe = native!.pidfdOpen(pid);
    try {
      return NativePidfd.open(native!, pid, fstatSync(probe).ino)!;
    } finally {
      closeSync(probe);
    }
  };
  const pa = open(a.pid!);
  const pb = open(b.pid!);
  try {
    let fired = 0;
    let disposedFired = 0;
    const exited = new Promise<void>((resolve) =>
      pa.watchExit(() => {
        fired++;
        resolve();
      }),
    );
    pa.watchExit(() => disposedFired++)();
    pb.watchExit(() => disposedFired++);
    pb.close(); // disposes b's watch before closing the descriptor
    a.kill('SIGKILL');
    b.kill('SIGKILL');
    await exited;
    await new Promise((r) => setTimeout(r, 100));
    t.is(fired, 1);
    t.is(disposedFired, 0);
    let late = 0;
    await new Promise<void>((resolve) => pa.watchExit(() => (late++, resolve())));
    t.is(late, 1, 'a watch of a process that has already exited fires at once');
  } finally {
    pa.close();
    pb.close();
  }
});

const zombieTest = native?.pidfdOpenByHandle !== undefined ? test : test.skip;

zombieTest('reopened from the pidfs inode alone: a live process and a zombie open (with how it ended), a reaped one does not', async (t) => {
  // sh starts a child and execs a sleep that never waits: the child, once killed, stays a zombie.
  const parent = spawn('sh', ['-c', 'sleep 600 & exec sleep 601'], { stdio: 'ignore' });
  t.teardown(() => parent.kill('SIGKILL'));
  let kid = 0;
  for (let i = 0; i < 200 && kid === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    try {
      kid = Number(readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim().split(/\s+/)[0] ?? 0);
    } catch {
      kid = 0;
    }
  }
  t.true(kid > 0, 'the child runs');
  const first = native!.pidfdOpen(kid);
  const ino = fstatSync(first).ino;
  closeSync(first);
  const live = NativePidfd.reopen(native!, ino)!;
  t.is(live.pidfsIno, ino);
  t.deepEqual(live.ending(), { state: 'running' });
  live.close();
  process.kill(kid, 'SIGTERM');
  for (let i = 0; i < 200 && !/\) Z /.test(readFileSync(`/proc/${kid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 10));
  const zombie = NativePidfd.reopen(native!, ino)!;
  t.truthy(zombie, 'a zombie reopens');
  t.deepEqual(zombie.ending(), { state: 'killed', signal: 15 });
  zombie.close();
  // The child of a Node spawn is reaped at once: the handle no longer decodes.
  const gone = spawn('true', { stdio: 'ignore' });
  const gfd = native!.pidfdOpen(gone.pid!);
  const gino = fstatSync(gfd).ino;
  closeSync(gfd);
  await new Promise((r) => gone.once('exit', r));
  t.is(NativePidfd.reopen(native!, gino), null, 'reaped: ESTALE');
  t.is(NativePidfd.reopen(native!, ino + 1_000_000_000), null, 'never existed');
});
