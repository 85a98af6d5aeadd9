/**
 * Handles that act (issue 11), as a user runs them: the built bin against real mounts, cleaned up
 * in every outcome. exec and bind into namespaces handlefs holds, PidfsIno, poll at the exit, how
 * a process ended, kill and wait through the exact process, and who may.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../../src/cli/exit-codes.js';
import type { NativeHelper } from '../../src/sources/native.js';
import { CAN_CHOOSE_PIDS, startAtPid } from '../helpers/at-pid.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'dist/cli/main.js');
const NATIVE = path.join(ROOT, 'build/Release/handlefs_native.node');
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = [
  !fs.existsSync('/dev/fuse') && '/dev/fuse',
  process.getuid?.() !== 0 && 'root',
  !fs.existsSync(NATIVE) && 'the native helper (npm run build:native)',
  ...['nsenter', 'unshare', 'ip', 'setpriv', 'mount'].filter((c) => !have(c)),
].filter(Boolean);
const mountTest = missing.length === 0 ? test.serial : test.serial.skip;
if (missing.length > 0) console.log(`act.spec: real-mount tests skipped: missing ${missing.join(', ')}`);
const native = missing.length === 0 ? (createRequire(import.meta.url)(NATIVE) as NativeHelper) : null;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv, prefix: string[] = []): Run {
  const argv = [...prefix, process.execPath, BIN, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isMounted(p: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);
}

interface Sandbox {
  dir: string;
  mnt: string;
  env: NodeJS.ProcessEnv;
  children: ChildProcess[];
  /** Paths to unmount (and remove) at the end, besides the mount. */
  mounts: string[];
}

/** A temp dir (readable by uid 65534) with a mountpoint and a private runtime dir; unmounts everything at the end. */
function sandbox(t: ExecutionContext): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-act-'));
  fs.chmodSync(dir, 0o755);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const sb: Sandbox = { dir, mnt, env: { HANDLEFS_RUNTIME_DIR: path.join(dir, 'run') }, children: [], mounts: [] };
  t.teardown(() => {
    for (const c of sb.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const p of [...sb.mounts, mnt]) {
      while (isMounted(p)) if (spawnSync('umount', ['-l', p]).status !== 0) break;
    }
    for (const p of sb.mounts) fs.rmSync(p, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return sb;
}

/** Starts the service (a child process) and waits until the mount answers. */
async function serve(t: ExecutionContext, sb: Sandbox, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'mount', sb.mnt, '--state', path.join(sb.dir, 'state.db'), '-o', 'allow_other'], {
    env: { ...process.env, ...sb.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  sb.children.push(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const deadline = Date.now() + 15_000;
  while (!/handlefs started/.test(stderr)) {
    if (child.exitCode !== null || Date.now() > deadline) t.fail(`mount did not become ready: ${stderr}`);
    await sleep(25);
  }
  return child;
}

/** A process for the test, killed at the end. */
function start(sb: Sandbox, cmd: string, args: string[], prefix: string[] = []): ChildProcess {
  const argv = [...prefix, cmd, ...args];
  const c = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  sb.children.push(c);
  return c;
}

function fields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':\t');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 2);
  }
  return out;
}

/** Reads a handle through an open descriptor from offset 0, as /proc files are read again. */
function readFd(fd: number): Record<string, string> {
  const buf = Buffer.alloc(8192);
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  return fields(buf.subarray(0, n).toString('utf8'));
}

/** Reads a handle from a child process (cat), as a user would. */
function cat(p: string): Record<string, string> {
  const r = spawnSync('cat', [p], { encoding: 'utf8', timeout: 10_000 });
  return fields(r.stdout);
}

function bindFile(sb: Sandbox, source: string, name: string): string {
  const file = path.join(sb.dir, name);
  fs.writeFileSync(file, '');
  sb.mounts.push(file);
  const r = spawnSync('mount', ['--bind', source, file]);
  if (r.status !== 0) throw new Error(`mount --bind ${source} ${file}: ${r.stderr}`);
  return file;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A network namespace whose only process is `sleep`; returns the process and the nsfs inode number. */
async function netnsProcess(sb: Sandbox): Promise<{ proc: ChildProcess; inum: number }> {
  const proc = start(sb, 'unshare', ['--net', 'sleep', '600']);
  let inum = 0;
  await until('the unshared network namespace', () => {
    try {
      inum = fs.statSync(`/proc/${proc.pid}/ns/net`).ino;
      return inum !== fs.statSync('/proc/self/ns/net').ino;
    } catch {
      return false;
    }
  });
  return { proc, inum };
}

async function killAndWait(c: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const done = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  await done;
}

mountTest('exec enters a namespace held only by a bind-mounted handle; its exit status is CMD\'s', async (t) => {
  const sb = sandbox(t);
  await serve(t, sb);
  const { proc, inum } = await netnsProcess(sb);
  const handle = bindFile(sb, path.join(sb.mnt, 'ns/net', String(inum)), 'net-handle');
  await killAndWait(proc);
  const r = run(['exec', handle, '--', 'readlink', '/proc/self/ns/net'], sb.env);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), `net:[${inum}]`);
  t.is(run(['exec', handle, 'sh', '-c', 'exit 7'], sb.env).code, 7);
  const s = JSON.parse(run(['status', sb.mnt, '--json'], sb.env).stdout) as { kinds: Record<string, { pinned: number }>; held: Array<{ inum: number; reasons: string[] }> };
  t.true(s.kinds.namespace!.pinned >= 1, 'a bind mount holds the namespace: pinned is not 0');
  t.deepEqual(s.held.find((h) => h.inum === inum)?.reasons, [`bind mount ${handle}`]);
});

mountTest('exec of a process handle enters all of its namespaces (a user namespace too)', async (t) => {
  const sb = sandbox(t);
  await serve(t, sb);
  const proc = start(sb, 'unshare', ['--user', '--map-root-user', '--uts', '--net', 'sleep', '600']);
  let want = '';
  await until('the unshared namespaces', () => {
    try {
      // One snapshot, judged by itself: unshare(2) may switch all three between two reads.
      const links = ['user', 'uts', 'net'].map((n) => fs.readlinkSync(`/proc/${proc.pid}/ns/${n}`));
      want = links.join(' ');
      return links[0] !== fs.readlinkSync('/proc/self/ns/user');
    } catch {
      return false;
    }
  });
  const r = run(['exec', path.join(sb.mnt, 'pid', String(proc.pid)), '--', 'sh', '-c', 'echo $(readlink /proc/self/ns/user) $(readlink /proc/self/ns/uts) $(readlink /proc/self/ns/net)'], sb.env);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), want);
});

mountTest('bind makes a real nsfs bind mount: ip netns exec uses it, and it outlives the service; a process handle is refused', async (t) => {
  const sb = sandbox(t);
  const service = await serve(t, sb);
  const { proc, inum } = await netnsProcess(sb);
  const name = `handlefs-act-${process.pid}`;
  const file = `/run/netns/${name}`;
  sb.mounts.push(file);
  const r = run(['bind', path.join(sb.mnt, 'ns/net', String(inum)), file], sb.env);
  t.is(r.code, 0, r.stderr);
  await killAndWait(proc);
  const stopped = new Promise((res) => service.once('exit', res));
  t.is(run(['umount', sb.mnt], sb.env).code, 0);
  await stopped;
  const inside = spawnSync('ip', ['netns', 'exec', name, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' });
  t.is(inside.stdout.trim(), `net:[${inum}]`, inside.stderr);
  t.is(spawnSync('ip', ['-n', name, 'link', 'show', 'lo']).status, 0);
  const entered = spawnSync('nsenter', [`--net=${file}`, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' });
  t.is(entered.stdout.trim(), `net:[${inum}]`, entered.stderr);

  await serve(t, sb);
  const refused = run(['bind', path.join(sb.mnt, 'pid', String(process.pid)), path.join(sb.dir, 'never')], sb.env);
  t.is(refused.code, EXIT.wrongKind);
  t.regex(refused.stderr, /process handle .* cannot be bound/);
  t.false(fs.existsSync(path.join(sb.dir, 'never')));
});

mountTest('PidfsIno is what fstat of a pidfd gives', async (t) => {
  const sb = sandbox(t);
  await serve(t, sb);
  const p = start(sb, 'sleep', ['600']);
  const fd = native!.pidfdOpen(p.pid!);
  try {
    t.is(cat(path.join(sb.mnt, 'pid', String(p.pid))).PidfsIno, String(fs.fstatSync(fd).ino));
  } finally {
    fs.closeSync(fd);
  }
});

mountTest('poll: not readable while the process runs, readable once it has exited (FUSE_NOTIFY_POLL)', async (t) => {
  const sb = sandbox(t);
  await serve(t, sb);
  const p = start(sb, 'sleep', ['600']);
  const fd = fs.openSync(path.join(sb.mnt, 'pid', String(p.pid)), 'r');
  let readyAt = 0;
  const watch = native!.watchFd(fd, () => (readyAt = performance.now()));
  try {
    await sleep(300);
    t.is(readyAt, 0, 'not readable while the process runs');
    const killedAt = performance.now();
    p.kill('SIGKILL');
    await until('readiness', () => readyAt > 0);
    t.log(`readable ${(readyAt - killedAt).toFixed(1)} ms after kill(2) (bench/poll-exit measures it)`);
    t.is(readFd(fd).ExitSignal, '9');
  } finally {
    native!.unwatch(watch);
    fs.closeSync(fd);
  }
});

mountTest('how it ended: ExitCode 42, ExitSignal 9, through a descriptor opened before the exit', async (t) => {
  const sb = sandbox(t);
  await serve(t, sb);
  const a = spawn('sh', ['-c', 'read x; exit 42'], { stdio: ['pipe', 'ignore', 'ignore'] });
  sb.children.push(a);
  const b = start(sb, 'sleep', ['600']);
  const fa = fs.openSync(path.join(sb.mnt, 'pid', String(a.pid)), 'r');
  const fb = fs.openSync(path.join(sb.mnt, 'pid', String(b.pid)), 'r');
  try {
    t.false('ExitCode' in readFd(fa), 'a running process has no ExitCode line');
    const exited = new Promise((r) => a.once('exit', r));
    a.stdin!.end('go\n');
    await exited; // reaped by Node: PIDFD_INFO_EXIT answers now
    await killAndWait(b);
    await until('the exits reach the handles', () => readFd(fb).State === 'dead');
    const ea = readFd(fa);
    t.is(ea.State, 'dead');
    t.is(ea.ExitCode, '42');
    const eb = readFd(fb);
    t.is(eb.ExitSignal, '9');
    t.false('ExitCode' in eb);
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
});

mountTest('how it ended is "unknown" where the service held no pidfd (no native helper)', async (t) => {
  const sb = sandbox(t);
  await serve(t, sb, { HANDLEFS_NATIVE: path.join(sb.dir, 'no-such-helper.node') });
  const a = start(sb, 'sleep', ['600']);
  const fa = fs.openSync(path.join(sb.mnt, 'pid', String(a.pid)), 'r');
  try {
    t.is(readFd(fa).PidfsIno, 'unreadable');
    await killAndWait(a);
    await until('the exit reaches the handle', () => readFd(fa).State === 'dead');
    const e = readFd(fa);
    t.is(e.ExitCode, 'unknown');
    t.false('ExitSignal' in e);
  } finally {
    fs.closeSync(fa);
  }
});

(CAN_CHOOSE_PIDS ? mountTest : test.serial.skip)(`kill reaches the process; through a bind-mounted handle after its pid was reused it fails and the new process lives${CAN_CHOOSE_PIDS ? '' : ' (skipped: pids cannot be chosen here)'}`, async (t) => {
  const sb = sandbox(t);
  await serve(t, sb);
  const first = start(sb, 'sleep', ['600']);
  const handle = bindFile(sb, path.join(sb.mnt, 'pid', String(first.pid)), 'proc-handle');
  const exited = new Promise<NodeJS.Signals | null>((r) => first.once('exit', (_c, sig) => r(sig)));
  const k = run(['kill', '-s', 'USR1', handle], sb.env);
  t.is(k.code, 0, k.stderr);
  t.is(await exited, 'SIGUSR1', 'the signal reached the process');
  const reused = await startAtPid(first.pid!, 'sleep', ['600']);
  sb.children.push(reused.child);
  const again = run(['kill', '-s', 'KILL', handle], sb.env);
  t.is(again.code, EXIT.processExited);
  t.regex(again.stderr, /has exited/);
  await sleep(100);
  t.is(reused.child.exitCode, null);
  t.is(reused.child.signalCode, null, 'the process that reused the pid lives');
});

mountTest('who may: uid 65534 kills its own process, and is refused a root process with EPERM\'s message', async (t) => {
  const sb = sandbox(t);
  await serve(t, sb);
  const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
  const own = start(sb, 'sleep', ['600'], nobody);
  const rootProc = start(sb, 'sleep', ['600']);
  await until('the process runs as 65534', () => {
    try {
      return /^Uid:\s+65534/m.test(fs.readFileSync(`/proc/${own.pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  });
  const refused = run(['kill', path.join(sb.mnt, 'pid', String(rootProc.pid))], sb.env, nobody);
  t.is(refused.code, EXIT.permissionDenied, refused.stderr);
  t.regex(refused.stderr, /not allowed/);
  t.is(rootProc.exitCode, null);
  const ownExit = new Promise<NodeJS.Signals | null>((r) => own.once('exit', (_c, sig) => r(sig)));
  const ok = run(['kill', path.join(sb.mnt, 'pid', String(own.pid))], sb.env, nobody);
  t.is(ok.code, 0, ok.stderr);
  t.is(await ownExit, 'SIGTERM');
  const exec = run(['exec', path.join(sb.mnt, 'pid', String(rootProc.pid)), '--', 'true'], sb.env, nobody);
  t.is(exec.code, EXIT.permissionDenied, 'entering is root\'s');
});

mountTest('wait blocks until the processes end and prints how each ended', async (t) => {
  const sb = sandbox(t);
  await serve(t, sb);
  const a = spawn('sh', ['-c', 'read x; exit 42'], { stdio: ['pipe', 'ignore', 'ignore'] });
  sb.children.push(a);
  const b = start(sb, 'sleep', ['600']);
  // Bind-mounted handles: they name the processes even after the exits, whenever wait starts.
  const pa = bindFile(sb, path.join(sb.mnt, 'pid', String(a.pid)), 'a');
  const pb = bindFile(sb, path.join(sb.mnt, 'pid', String(b.pid)), 'b');
  const waiter = spawn(process.execPath, [BIN, 'wait', pa, pb], { env: { ...process.env, ...sb.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  sb.children.push(waiter);
  let out = '';
  waiter.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise<number | null>((r) => waiter.once('exit', r));
  await sleep(1500);
  t.is(waiter.exitCode, null, 'still waiting while the processes run');
  a.stdin!.end('go\n');
  b.kill('SIGKILL');
  t.is(await done, 0);
  t.is(out, `${pa}: exited 42\n${pb}: killed by SIGKILL\n`);
});

/** The service's pidfds (its descriptors that are pidfds). */
function pidfdsOf(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (/pidfd/.test(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

mountTest('one descriptor per referenced process handle: the pidfd that signals and tells the ending is the exit watch', async (t) => {
  const sb = sandbox(t);
  await serve(t, sb);
  const status = JSON.parse(run(['status', sb.mnt, '--json'], sb.env).stdout) as { pid: number };
  const procs = Array.from({ length: 20 }, () => start(sb, 'sleep', ['600']));
  const before = pidfdsOf(status.pid);
  const fds = procs.map((p) => fs.openSync(path.join(sb.mnt, 'pid', String(p.pid)), 'r'));
  try {
    const after = pidfdsOf(status.pid);
    t.is(after - before, procs.length, 'a second pidfd per process would exhaust the descriptor limit on a busy host');
    await killAndWait(procs[0]!);
    await until('the exit reaches the handle', () => readFd(fds[0]!).State === 'dead');
    t.is(readFd(fds[0]!).ExitSignal, '9');
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
});
