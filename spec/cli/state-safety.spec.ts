/**
 * issue 14, as an operator and a non-root user meet it through the built bin (dist/cli/main.js):
 * a mistyped --state never destroys a file, a refused start leaves nothing, state in a place
 * where it cannot be created is exit 12, files and socket are private, a non-root user gets one
 * line per error, and a mount reached through a symlink is found.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tryLoadNative } from '../../src/sources/native.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'dist/cli/main.js');
const haveFuse = fs.existsSync('/dev/fuse');
const isRoot = process.getuid?.() === 0;
const mountTest = haveFuse && isRoot ? test.serial : test.serial.skip;
if (!haveFuse || !isRoot) console.log('state-safety.spec: needs root and /dev/fuse; these CLI tests are skipped');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv, as?: 'nobody'): Run {
  const cmd = as === 'nobody' ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, ...args] : [process.execPath, BIN, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const isMounted = (p: string) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);

function sandbox(t: ExecutionContext) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-safety-'));
  fs.chmodSync(dir, 0o755);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const env = { HANDLEFS_RUNTIME_DIR: path.join(dir, 'run'), HANDLEFS_RECORDS_DIR: path.join(dir, 'records') };
  const children: ChildProcess[] = [];
  const extraMounts: string[] = [];
  t.teardown(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const p of [mnt, ...extraMounts]) if (isMounted(p)) spawnSync('umount', ['-l', p]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir, mnt, state: path.join(dir, 'state', 'state.db'), env, children, extraMounts };
}

const oneLine = (t: ExecutionContext, r: Run, code: number, pattern: RegExp) => {
  t.is(r.code, code, r.stderr);
  // The CLI's own lines; the service's JSON log lines (warnings at start) are not the error.
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('{"level":'));
  t.regex(lines[0]!, pattern);
  t.true(lines.length <= 2, `expected a reason and at most a hint, got:\n${r.stderr}`);
  t.notRegex(r.stderr, /internal error|\n\s+at /, 'no stack trace');
};

/** Starts the daemon and returns its pid (from status). */
function startDaemon(t: ExecutionContext, sb: ReturnType<typeof sandbox>, state = sb.state): number {
  const r = run(['mount', sb.mnt, '--state', state, '--daemon'], sb.env);
  t.is(r.code, 0, r.stderr);
  const s = run(['status', sb.mnt, '--json'], sb.env);
  t.is(s.code, 0, s.stderr);
  const pid = JSON.parse(s.stdout).pid as number;
  t.teardown(() => {
    if (isMounted(sb.mnt)) spawnSync('umount', [sb.mnt]);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  return pid;
}

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';

for (const daemon of [false, true]) {
  for (const [kind, content] of [['a text file', PASSWD], ['an empty file', '']] as const) {
    mountTest(`--state naming ${kind}${daemon ? ' (--daemon)' : ''}: exit 11 on the terminal, the file untouched, nothing left behind`, (t) => {
      const sb = sandbox(t);
      const etc = path.join(sb.dir, 'etc');
      fs.mkdirSync(etc);
      const file = path.join(etc, 'passwd');
      fs.writeFileSync(file, content);
      const old = new Date(Date.now() - 86_400_000);
      fs.utimesSync(file, old, old);
      const before = { bytes: fs.readFileSync(file), mtimeMs: fs.statSync(file).mtimeMs, names: fs.readdirSync(etc) };
      const r = run(['mount', sb.mnt, '--state', file, ...(daemon ? ['--daemon'] : [])], sb.env);
      oneLine(t, r, EXIT.stateUnreadable, /is not a handlefs state file/);
      t.deepEqual(fs.readFileSync(file), before.bytes);
      t.is(fs.statSync(file).mtimeMs, before.mtimeMs);
      t.deepEqual(fs.readdirSync(etc), before.names, 'no .lock, -wal, -shm, .hwm or .corrupt-* file');
      const runtime = sb.env.HANDLEFS_RUNTIME_DIR!;
      t.deepEqual(fs.existsSync(runtime) ? fs.readdirSync(runtime) : [], [], 'no log or socket in the runtime directory');
      t.false(isMounted(sb.mnt));
    });
  }
}

mountTest('--state in a directory that cannot be created there (read-only fs, procfs, sysfs): exit 12, nothing created', (t) => {
  const sb = sandbox(t);
  const ro = path.join(sb.dir, 'ro');
  fs.mkdirSync(ro);
  t.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]).status, 0);
  sb.extraMounts.push(ro);
  oneLine(t, run(['mount', sb.mnt, '--state', path.join(ro, 'a', 'b', 'state.db')], sb.env), EXIT.stateReadOnly, /read-only|cannot be written/);
  oneLine(t, run(['mount', sb.mnt, '--state', '/proc/handlefs-no-such-dir/state.db'], sb.env), EXIT.stateReadOnly, /cannot be written/);
  oneLine(t, run(['mount', sb.mnt, '--state', '/sys/handlefs-no-such-dir/state.db'], sb.env), EXIT.stateReadOnly, /cannot be written/);
  t.false(fs.existsSync('/sys/handlefs-no-such-dir'));
});

mountTest('a real start creates its files and socket so that no other user can write them', (t) => {
  const sb = sandbox(t);
  startDaemon(t, sb);
  const mode = (p: string) => fs.statSync(p).mode & 0o777;
  const run_ = sb.env.HANDLEFS_RUNTIME_DIR;
  t.is(mode(path.dirname(sb.state)), 0o700, 'state directory');
  for (const f of [sb.state, `${sb.state}.hwm`, `${sb.state}.lock`, `${sb.state}-wal`, `${sb.state}-shm`]) t.is(mode(f), 0o600, f);
  t.is(mode(run_) & 0o022, 0, 'runtime directory');
  const names = fs.readdirSync(run_);
  const sock = names.find((n) => n.endsWith('.sock'))!;
  const log = names.find((n) => n.endsWith('.log'))!;
  t.true(fs.statSync(path.join(run_, sock)).isSocket());
  // With the native helper (SO_PEERCRED) every request is judged by its caller, so others may
  // connect (kill and wait of their own processes) but never write the socket's directory;
  // without it only root may connect.
  t.is(mode(path.join(run_, sock)), tryLoadNative() === null ? 0o600 : 0o666, 'control socket');
  t.is(mode(path.join(run_, log)), 0o600, 'daemon log');
  t.is(mode(path.join(run_, 'states')), 0o700);
  for (const n of fs.readdirSync(path.join(run_, 'states'))) t.is(mode(path.join(run_, 'states', n)), 0o600);
  t.is(mode(sb.env.HANDLEFS_RECORDS_DIR), 0o700);
  // What the modes mean: another user can neither connect to the socket nor write anything.
  for (const target of [`${sb.state}.hwm`, sb.state, path.join(run_, log)]) {
    const w = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', 'exec 3>>"$0"', target], { encoding: 'utf8' });
    t.not(w.status, 0, `uid 65534 could open ${target} for writing`);
    t.regex(w.stderr, /denied/i);
  }
  t.is(run(['umount', sb.mnt], sb.env).code, 0);
});

mountTest('as a normal user: umount and status say what is wrong in one line, with their own exit codes', (t) => {
  const sb = sandbox(t);
  startDaemon(t, sb);
  const um = run(['umount', sb.mnt], sb.env, 'nobody');
  oneLine(t, um, EXIT.notRoot, /needs root/);
  t.true(isMounted(sb.mnt), 'still mounted');
  const st = run(['status', sb.mnt], sb.env, 'nobody');
  oneLine(t, st, EXIT.permissionDenied, tryLoadNative() === null ? /control socket .* is root's/ : /status needs root/);
  t.notRegex(st.stderr, /is it a handlefs mount/);
  const ls = run(['ls', sb.mnt], sb.env, 'nobody');
  oneLine(t, ls, EXIT.permissionDenied, tryLoadNative() === null ? /control socket .* is root's/ : /ls needs root/);
  t.notRegex(ls.stderr, /is it a handlefs mount/);
  oneLine(t, run(['restart', sb.mnt], sb.env, 'nobody'), EXIT.notRoot, /restart needs root/);
  t.not(EXIT.permissionDenied, EXIT.serviceUnreachable);
  t.is(run(['umount', sb.mnt], sb.env).code, 0);
});

mountTest('status and umount find a mount reached through a symlink', (t) => {
  const sb = sandbox(t);
  startDaemon(t, sb);
  const link = path.join(sb.dir, 'handles');
  fs.symlinkSync(sb.mnt, link);
  const rel = path.join(sb.dir, 'rel');
  fs.symlinkSync('mnt', rel);
  for (const p of [link, rel]) {
    const s = run(['status', p, '--json'], sb.env);
    t.is(s.code, 0, s.stderr);
    t.is(JSON.parse(s.stdout).mountpoint, sb.mnt);
  }
  t.is(run(['umount', link], sb.env).code, 0);
  t.false(isMounted(sb.mnt));
});

mountTest('mounting through a symlink: the service names its socket by the real path', (t) => {
  const sb = sandbox(t);
  const link = path.join(sb.dir, 'via-link');
  fs.symlinkSync(sb.mnt, link);
  const r = run(['mount', link, '--state', sb.state, '--daemon'], sb.env);
  t.is(r.code, 0, r.stderr);
  t.teardown(() => {
    if (isMounted(sb.mnt)) spawnSync('umount', [sb.mnt]);
  });
  t.true(isMounted(sb.mnt));
  t.is(run(['status', sb.mnt], sb.env).code, 0);
  t.is(run(['status', link], sb.env).code, 0);
  t.is(run(['umount', sb.mnt], sb.env).code, 0);
});

mountTest('a state directory restored from a backup: no number issued after the copy is issued again, and the log says so', (t) => {
  const sb = sandbox(t);
  const stateDir = path.dirname(sb.state);
  const backup = path.join(sb.dir, 'backup');
  /** Starts `n` sleepers, reads their handles' numbers, stops them. */
  const issue = (n: number): number[] => {
    const sleepers = Array.from({ length: n }, () => spawn('sleep', ['60'], { stdio: 'ignore' }));
    sb.children.push(...sleepers);
    const inos = sleepers.map((c) => Number(spawnSync('stat', ['-c', '%i', path.join(sb.mnt, 'pid', String(c.pid))], { encoding: 'utf8', timeout: 10_000 }).stdout.trim()));
    for (const c of sleepers) c.kill('SIGKILL');
    t.true(inos.every((i) => i > 1), `numbers read: ${inos.join(' ')}`);
    return inos;
  };
  const stop = () => t.is(run(['umount', sb.mnt], sb.env).code, 0);

  startDaemon(t, sb);
  issue(3);
  stop();
  fs.cpSync(stateDir, backup, { recursive: true });
  startDaemon(t, sb);
  const after = issue(5);
  stop();
  fs.rmSync(stateDir, { recursive: true });
  fs.cpSync(backup, stateDir, { recursive: true });
  startDaemon(t, sb);
  const next = issue(5);
  stop();
  t.deepEqual(next.filter((x) => after.includes(x)), [], 'no number issued again');
  t.true(Math.min(...next) > Math.max(...after));
  const runDir = sb.env.HANDLEFS_RUNTIME_DIR;
  const log = fs.readdirSync(runDir).filter((n) => n.endsWith('.log')).map((n) => fs.readFileSync(path.join(runDir, n), 'utf8')).join('');
  t.regex(log, /restored from a backup\?\)/);
});
