/**
 * The handlefs command as a user runs it: the built bin (dist/cli/main.js, built by `npm test`
 * before ava runs) in a child process, against real mounts that are cleaned up in every outcome.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../../src/cli/exit-codes.js';
import { AS_NOBODY, nobodyView } from '../helpers/as-nobody.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'dist/cli/main.js');
const haveFuse = fs.existsSync('/dev/fuse');
const isRoot = process.getuid?.() === 0;
const mountTest = haveFuse && isRoot ? test.serial : test.serial.skip;
if (!haveFuse) console.log('cli.spec: /dev/fuse is absent on this machine; real-mount CLI tests are skipped');
else if (!isRoot) console.log('cli.spec: not root; real-mount CLI tests are skipped');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, argv0 = BIN): Run {
  const r = spawnSync(process.execPath, [argv0, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function isMounted(p: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);
}

/** A temp dir with a mountpoint, a state path and a private runtime dir; unmounts everything at the end. */
function sandbox(t: ExecutionContext) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-cli-'));
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const env = { HANDLEFS_RUNTIME_DIR: path.join(dir, 'run'), HANDLEFS_RECORDS_DIR: path.join(dir, 'records') };
  const children: ChildProcess[] = [];
  t.teardown(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const p of [mnt, ...fs.readdirSync(dir).map((n) => path.join(dir, n))]) {
      if (isMounted(p)) spawnSync('umount', ['-l', p]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir, mnt, state: path.join(dir, 'state.db'), env, children };
}

/** Starts `handlefs mount` in the foreground and waits until the mount answers. */
async function startForeground(t: ExecutionContext, sb: ReturnType<typeof sandbox>, extra: string[] = []) {
  const child = spawn(process.execPath, [BIN, 'mount', sb.mnt, '--state', sb.state, ...extra], {
    env: { ...process.env, ...sb.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  sb.children.push(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 15_000;
  while (!/handlefs started/.test(stderr)) {
    if (child.exitCode !== null || Date.now() > deadline) t.fail(`mount did not become ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { child, exited, stderr: () => stderr };
}

/** Lists a directory from another process (never from this one: see docs/fuse.md). */
function lsFromChild(p: string): Run {
  const r = spawnSync('ls', ['-1', p], { encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const oneLine = (t: ExecutionContext, r: Run, code: number, pattern: RegExp) => {
  t.is(r.code, code, r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.regex(lines[0]!, pattern);
  t.true(lines.length <= 2, `expected a reason and at most a hint, got:\n${r.stderr}`);
};

test('--help, --version and per-command help', (t) => {
  const help = run(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /usage: handlefs <command>/);
  for (const cmd of ['mount', 'umount', 'status']) {
    const h = run([cmd, '--help']);
    t.is(h.code, 0);
    t.regex(h.stdout, new RegExp(`usage: handlefs ${cmd}`));
    t.is(run(['help', cmd]).stdout, h.stdout);
  }
  const version = run(['--version']);
  t.is(version.code, 0);
  t.is(version.stdout.trim(), `handlefs ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}`);
});

test('unknown flags and commands are usage errors: one line and a hint, exit 2', (t) => {
  oneLine(t, run(['mount', '/x', '--frob']), EXIT.usage, /^handlefs: Unknown option '--frob'/);
  oneLine(t, run(['explode']), EXIT.usage, /unknown command 'explode'/);
  oneLine(t, run(['status']), EXIT.usage, /missing the mountpoint/);
  t.regex(run(['status']).stderr, /handlefs status --help/);
});

test('mount refuses a missing mountpoint, a file, a non-empty directory and an unknown -o option', (t) => {
  const sb = sandbox(t);
  const file = path.join(sb.dir, 'file');
  fs.writeFileSync(file, 'x');
  const full = path.join(sb.dir, 'full');
  fs.mkdirSync(full);
  fs.writeFileSync(path.join(full, 'inside'), 'x');
  const args = (m: string, ...more: string[]) => ['mount', m, '--state', sb.state, ...more];
  oneLine(t, run(args(path.join(sb.dir, 'nope')), sb.env), EXIT.mountpointMissing, /does not exist/);
  oneLine(t, run(args(file), sb.env), EXIT.notADirectory, /is not a directory/);
  oneLine(t, run(args(full), sb.env), EXIT.notEmpty, /is not empty/);
  oneLine(t, run(args(sb.mnt, '-o', 'colour=blue'), sb.env), EXIT.badMountOption, /colour/);
  t.false(fs.existsSync(sb.state), 'nothing half-done: no state file was created');
});

mountTest('mount refuses a mountpoint that is already mounted', (t) => {
  const sb = sandbox(t);
  t.is(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', sb.mnt]).status, 0);
  oneLine(t, run(['mount', sb.mnt, '--state', sb.state], sb.env), EXIT.alreadyMounted, /already mounted/);
});

mountTest('not root: a clear error and exit 9', (t) => {
  const sb = sandbox(t);
  fs.chmodSync(sb.dir, 0o755);
  // The bin as nobody loads it, wherever the checkout lies (a clone under /root included).
  const view = nobodyView(t, ['dist/cli/main.js', 'package.json', 'node_modules/pino/package.json']);
  t.log(view.how);
  const r = spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), view.node, path.join(view.root, 'dist/cli/main.js'), 'mount', sb.mnt, '--state', path.join(sb.dir, 'x.db')], {
    encoding: 'utf8',
    env: { ...process.env, ...sb.env },
    cwd: sb.dir,
  });
  oneLine(t, { code: r.status, stdout: r.stdout, stderr: r.stderr }, EXIT.notRoot, /needs root/);
});

mountTest('/dev/fuse absent: a clear error and exit 8', (t) => {
  const sb = sandbox(t);
  // A private mount namespace with an empty /dev: the host's /dev/fuse is untouched.
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs tmpfs /dev && exec "$0" "$@"`, process.execPath, BIN, 'mount', sb.mnt, '--state', sb.state], {
    encoding: 'utf8',
    env: { ...process.env, ...sb.env },
  });
  oneLine(t, { code: r.status, stdout: r.stdout, stderr: r.stderr }, EXIT.noFuseDevice, /\/dev\/fuse does not exist/);
});

mountTest('state problems: unreadable, in a read-only place, locked by another daemon', async (t) => {
  const sb = sandbox(t);
  const notAFile = path.join(sb.dir, 'statedir');
  fs.mkdirSync(notAFile);
  oneLine(t, run(['mount', sb.mnt, '--state', notAFile], sb.env), EXIT.stateUnreadable, /cannot be used/);

  const ro = path.join(sb.dir, 'ro');
  fs.mkdirSync(ro);
  t.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]).status, 0);
  oneLine(t, run(['mount', sb.mnt, '--state', path.join(ro, 'state.db')], sb.env), EXIT.stateReadOnly, /read-only/);

  const first = await startForeground(t, sb);
  const other = path.join(sb.dir, 'mnt2');
  fs.mkdirSync(other);
  oneLine(t, run(['mount', other, '--state', sb.state], sb.env), EXIT.stateLocked, /lock/i);
  t.false(isMounted(other));
  first.child.kill('SIGTERM');
  t.is(await first.exited, 0);
});

mountTest('foreground mount serves the tree, status reports it, handlefs umount ends it with exit 0', async (t) => {
  const sb = sandbox(t);
  const { exited, stderr } = await startForeground(t, sb);
  const ls = lsFromChild(path.join(sb.mnt, 'pid'));
  t.is(ls.code, 0);
  t.true(ls.stdout.split('\n').includes('1'));

  const text = run(['status', sb.mnt], sb.env);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`serving ${sb.mnt}`));
  t.regex(text.stdout, /process/);
  const json = run(['status', sb.mnt, '--json'], sb.env);
  t.is(json.code, 0);
  const status = JSON.parse(json.stdout);
  t.is(status.mountpoint, sb.mnt);
  t.is(status.reader, 'native', 'the FUSE device helper is built by npm install and used');
  t.true(status.kinds.process.live > 0);
  t.true(status.requests.requests > 0);
  t.is(status.store.path, sb.state);
  t.true(status.store.bytes > 0);
  t.true(status.counters.allocations > 0);
  t.false(/pid\/status|\.status/.test(lsFromChild(sb.mnt).stdout), 'status did not go through the mount');

  const um = run(['umount', sb.mnt], sb.env);
  t.is(um.code, 0, um.stderr);
  t.is(await exited, 0);
  t.false(isMounted(sb.mnt));
  const lines = stderr().trim().split('\n').map((l) => JSON.parse(l));
  const start = lines.find((l) => l.msg === 'handlefs started');
  t.truthy(start.version);
  t.is(start.mountpoint, sb.mnt);
  t.is(start.state, sb.state);
  t.regex(start.protocol, /^7\.\d+$/);
  t.is(start.reader, 'native');
  const stop = lines.find((l) => String(l.msg).startsWith('handlefs stopped'));
  t.truthy(stop.counters);
  t.is(stop.reason, 'unmounted');
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  mountTest(`${signal} unmounts cleanly and exits 0`, async (t) => {
    const sb = sandbox(t);
    const { child, exited, stderr } = await startForeground(t, sb);
    child.kill(signal);
    t.is(await exited, 0, stderr());
    t.false(isMounted(sb.mnt));
    t.regex(stderr(), new RegExp(`"reason":"${signal}"`));
  });
}

mountTest('plain umount(8) ends the service with exit 0; a second mount reuses the state', async (t) => {
  const sb = sandbox(t);
  const first = await startForeground(t, sb);
  const ino1 = spawnSync('stat', ['-c', '%i', path.join(sb.mnt, 'pid', '1')], { encoding: 'utf8' }).stdout.trim();
  t.is(spawnSync('umount', [sb.mnt]).status, 0);
  t.is(await first.exited, 0);
  const second = await startForeground(t, sb);
  t.is(spawnSync('stat', ['-c', '%i', path.join(sb.mnt, 'pid', '1')], { encoding: 'utf8' }).stdout.trim(), ino1, 'pid 1 keeps its number across restarts');
  second.child.kill('SIGTERM');
  t.is(await second.exited, 0);
});

mountTest('--daemon returns 0 once the mount is ready and leaves the service running', async (t) => {
  const sb = sandbox(t);
  const r = run(['mount', sb.mnt, '--state', sb.state, '--daemon'], sb.env);
  t.is(r.code, 0, r.stderr);
  t.true(isMounted(sb.mnt));
  t.is(lsFromChild(path.join(sb.mnt, 'ns')).code, 0);
  const status = JSON.parse(run(['status', sb.mnt, '--json'], sb.env).stdout);
  t.not(status.pid, undefined);
  t.is(run(['umount', sb.mnt], sb.env).code, 0);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && fs.existsSync(`/proc/${status.pid}`)) await new Promise((res) => setTimeout(res, 50));
  t.false(fs.existsSync(`/proc/${status.pid}`), 'the daemon exited');
  t.false(isMounted(sb.mnt));
});

mountTest('a stale mount (keeper and server killed) is cleaned by handlefs umount', async (t) => {
  const sb = sandbox(t);
  const { child } = await startForeground(t, sb);
  // The keeper's children (the server, a standby) hold the device too: kill them all.
  const kids = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  child.kill('SIGKILL');
  for (const pid of kids) process.kill(pid, 'SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 5000;
  while (kids.some((pid) => fs.existsSync(`/proc/${pid}`)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true(isMounted(sb.mnt), 'SIGKILL of everything leaves the mount behind');
  const r = run(['umount', sb.mnt], sb.env);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /removed the stale mount/);
  t.false(isMounted(sb.mnt));
});

mountTest('status and umount of something that is not mounted: exit 14', (t) => {
  const sb = sandbox(t);
  oneLine(t, run(['status', sb.mnt], sb.env), EXIT.notMounted, /is not mounted/);
  oneLine(t, run(['umount', sb.mnt], sb.env), EXIT.notMounted, /is not mounted/);
});

mountTest('mount -t fuse.handlefs and an fstab line work through the mount helper', async (t) => {
  const sb = sandbox(t);
  const helper = '/sbin/mount.fuse.handlefs';
  // What the package documents: a link to the bin. Here a wrapper that also keeps the test's runtime dir.
  const wrapper = `#!/bin/sh\nexport HANDLEFS_RUNTIME_DIR='${sb.env.HANDLEFS_RUNTIME_DIR}' HANDLEFS_RECORDS_DIR='${sb.env.HANDLEFS_RECORDS_DIR}'\nexec '${process.execPath}' '${path.join(ROOT, 'dist/cli/mount-helper.js')}' "$@"\n`;
  if (fs.existsSync(helper)) {
    // The documented setup was done on this machine: leave its helper alone and test this
    // checkout's helper in a private mount namespace where /sbin holds only the wrapper.
    t.log(`${helper} exists (the documented setup); testing this checkout's helper in a private mount namespace`);
    return helperInPrivateNamespace(t, sb, wrapper);
  }
  fs.writeFileSync(helper, wrapper, { mode: 0o755 });
  t.teardown(() => fs.rmSync(helper, { force: true }));

  const r = spawnSync('mount', ['-t', 'fuse.handlefs', 'handlefs', sb.mnt, '-o', `state=${sb.state},allow_other`], { encoding: 'utf8', timeout: 30_000 });
  t.is(r.status, 0, r.stderr);
  t.true(isMounted(sb.mnt));
  t.is(lsFromChild(path.join(sb.mnt, 'pid')).code, 0);
  t.regex(fs.readFileSync('/proc/self/mountinfo', 'utf8'), /fuse\.handlefs handlefs .*allow_other/);
  t.is(spawnSync('umount', [sb.mnt]).status, 0);

  const fstab = path.join(sb.dir, 'fstab');
  fs.writeFileSync(fstab, `handlefs ${sb.mnt} fuse.handlefs defaults,nofail,state=${sb.state} 0 0\n`);
  const f = spawnSync('mount', ['--fstab', fstab, sb.mnt], { encoding: 'utf8', timeout: 30_000 });
  t.is(f.status, 0, f.stderr);
  t.true(isMounted(sb.mnt));
  t.is(spawnSync('umount', [sb.mnt]).status, 0);
  await new Promise((res) => setTimeout(res, 200));
  t.false(isMounted(sb.mnt));
});

/**
 * The mount(8) helper scenario in a private mount namespace whose /sbin is a tmpfs holding only
 * `wrapper` as mount.fuse.handlefs: the machine's own helper is neither used nor touched. The
 * steps run in one shell there (mounts made in it are visible only there); each prints a marker.
 */
function helperInPrivateNamespace(t: ExecutionContext, sb: ReturnType<typeof sandbox>, wrapper: string): void {
  const sbin = fs.realpathSync('/sbin');
  const fstab = path.join(sb.dir, 'fstab');
  fs.writeFileSync(fstab, `handlefs ${sb.mnt} fuse.handlefs defaults,nofail,state=${sb.state} 0 0\n`);
  const wrapperFile = path.join(sb.dir, 'mount.fuse.handlefs');
  fs.writeFileSync(wrapperFile, wrapper, { mode: 0o755 });
  // Should a step fail with the service up, stop it: it holds the namespace and its mount.
  t.teardown(() => {
    for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(sb.mnt)) process.kill(Number(pid), 'SIGTERM');
      } catch {
        /* gone */
      }
    }
  });
  const script = [
    'set -e',
    `mount -t tmpfs -o size=1m tmpfs '${sbin}'`,
    `cp '${wrapperFile}' '${sbin}/mount.fuse.handlefs'`,
    `mount -t fuse.handlefs handlefs '${sb.mnt}' -o 'state=${sb.state},allow_other'`,
    `grep -q ' ${sb.mnt} .* - fuse.handlefs handlefs .*allow_other' /proc/self/mountinfo && echo mounted-by-type`,
    `ls '${sb.mnt}/pid' > /dev/null && echo listed`,
    `umount '${sb.mnt}'`,
    `mount --fstab '${fstab}' '${sb.mnt}'`,
    `grep -q ' ${sb.mnt} ' /proc/self/mountinfo && echo mounted-by-fstab`,
    `umount '${sb.mnt}'`,
    'sleep 0.2',
    `grep -q ' ${sb.mnt} ' /proc/self/mountinfo || echo unmounted`,
  ].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), ['mounted-by-type', 'listed', 'mounted-by-fstab', 'unmounted']);
}

mountTest('logs: readable lines on a terminal, levels from --log-level or HANDLEFS_LOG_LEVEL', async (t) => {
  const sb = sandbox(t);
  // A terminal: script(1) gives the service a pty for stderr.
  const log = path.join(sb.dir, 'tty.log');
  const cmd = `'${process.execPath}' '${BIN}' mount '${sb.mnt}' --state '${sb.state}'`;
  const tty = spawn('script', ['-qfec', cmd, log], { env: { ...process.env, ...sb.env }, stdio: 'ignore' });
  sb.children.push(tty);
  const deadline = Date.now() + 15_000;
  while (!(fs.existsSync(log) && /handlefs started/.test(fs.readFileSync(log, 'utf8'))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.is(run(['umount', sb.mnt], sb.env).code, 0);
  await new Promise((r) => tty.once('exit', r));
  const text = fs.readFileSync(log, 'utf8');
  t.regex(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: handlefs started /m, 'one readable line, not JSON');
  t.regex(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: handlefs stopped /m);

  // HANDLEFS_LOG_LEVEL=warn: no info lines at all.
  const quiet = await startForegroundUntilMounted(t, sb, { HANDLEFS_LOG_LEVEL: 'warn' });
  t.is(run(['umount', sb.mnt], sb.env).code, 0);
  t.is(await quiet.exited, 0);
  t.notRegex(quiet.stderr(), /handlefs started/);

  // --log-level debug: one line per FUSE request and reply.
  const loud = await startForeground(t, sb, ['--log-level', 'debug']);
  t.is(lsFromChild(path.join(sb.mnt, 'pid')).code, 0);
  t.is(run(['umount', sb.mnt], sb.env).code, 0);
  t.is(await loud.exited, 0);
  t.regex(loud.stderr(), /"msg":"rx \d+: LOOKUP n1 \[\\"pid\\"\]"/);
  t.regex(loud.stderr(), /"msg":"tx \d+: /);
});

/** Like startForeground, but for a service that logs nothing at info: waits for the mount itself. */
async function startForegroundUntilMounted(t: ExecutionContext, sb: ReturnType<typeof sandbox>, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [BIN, 'mount', sb.mnt, '--state', sb.state], { env: { ...process.env, ...sb.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  sb.children.push(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 15_000;
  while (!isMounted(sb.mnt) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 200)); // INIT follows the mount
  t.true(isMounted(sb.mnt));
  return { child, exited, stderr: () => stderr };
}
