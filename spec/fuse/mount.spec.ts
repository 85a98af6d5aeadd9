/**
 * Real mounts: the session serving a small tree through the kernel, read by ordinary fs calls
 * from child processes (a synchronous fs call on the mount from the serving process would
 * deadlock). Serial: they share /proc/sys/vm/drop_caches and the machine's two cores.
 *
 * Every test unmounts in every outcome (t.teardown with `umount -l` as the last resort).
 * Skipped, with a message, only where /dev/fuse is absent.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  Errno,
  FuseError,
  FuseSession,
  StaleMountError,
  inspectMountpoint,
  findFusermount,
  mountAt,
  mountFuse,
  serve,
  type Entry,
  type LowLevelFileSystem,
} from '../../src/fuse/index.js';
import { captureLogger } from './helpers/session-harness.js';
import { SAMPLE_TREE, TreeFs } from './helpers/tree-fs.js';
import { AS_NOBODY, NOBODY, nobodyView } from '../helpers/as-nobody.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLIENT = path.join(here, 'fixtures/client.mjs');
const SERVER = path.join(here, 'fixtures/serve-tree.ts');
const CHECKOUT_ROOT = path.resolve(here, '../..');
const HAVE_FUSE = fs.existsSync('/dev/fuse');
const execFileP = promisify(execFile);

const fuseTest = HAVE_FUSE ? test.serial : test.serial.skip;
if (!HAVE_FUSE) test.skip('real-mount tests (skipped: /dev/fuse does not exist on this machine)', () => {});

function forceUnmount(mnt: string): void {
  if (mountAt(mnt)) spawnSync('umount', ['-i', '-c', '-l', mnt], { stdio: 'ignore' });
}

/** A fresh mountpoint that is unmounted and removed after the test, whatever happened. */
function tmpMount(t: ExecutionContext): string {
  const mnt = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-fuse-')));
  t.teardown(() => {
    forceUnmount(mnt);
    fs.rmSync(mnt, { recursive: true, force: true });
  });
  return mnt;
}

async function client(mnt: string, what: string, ...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await execFileP(process.execPath, [CLIENT, mnt, what, ...args], { timeout: 30_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function sh(cmd: string): Promise<void> {
  await execFileP('sh', ['-c', cmd], { timeout: 30_000 });
}

async function until(cond: () => boolean, ms: number, step?: () => Promise<void>): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    if (step) await step();
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

/** The fixture server as nobody runs it: the checkout and node at paths nobody can read, tsx resolved from there. */
function nobodyServer(t: ExecutionContext): { argv: string[]; cwd: string } {
  const view = nobodyView(t, [path.relative(CHECKOUT_ROOT, SERVER), 'node_modules/tsx/package.json', 'src/fuse/index.ts']);
  t.log(view.how);
  return { argv: [...AS_NOBODY, view.node, '--import', 'tsx', path.join(view.root, path.relative(CHECKOUT_ROOT, SERVER))], cwd: view.root };
}

function startServerChild(t: ExecutionContext, mnt: string, env: NodeJS.ProcessEnv = {}, asNobody = false): Promise<ChildProcess> {
  const nobody = asNobody ? nobodyServer(t) : undefined;
  const argv = nobody ? [...nobody.argv, mnt] : [process.execPath, '--import', 'tsx', SERVER, mnt];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, ...(nobody && { cwd: nobody.cwd }) });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (${code}): ${err}`));
    });
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** A hung test must fail (and run its teardown, which unmounts) rather than time the worker out. */
const LIMIT = 60_000;

fuseTest('a mounted tree reads like a filesystem: names, st_ino agreement, contents, ENOENT, EROFS, readlink, statfs', async (t) => {
  t.timeout(LIMIT);
  const mnt = tmpMount(t);
  const tree = new TreeFs(SAMPLE_TREE);
  const { logger, lines } = captureLogger('warn');
  const session = await serve(tree, mnt, { entryTimeout: 0, attrTimeout: 0 }, logger, { handleSignals: false });
  t.teardown(() => session.stop('teardown'));
  t.is(mountAt(mnt)?.fstype, 'fuse.handlefs');
  t.is(mountAt(mnt)?.source, 'handlefs');

  const r = await client(mnt, 'tour');
  t.deepEqual(r.root, ['dir', 'top.txt']);
  t.deepEqual(r.dir, ['big.bin', 'hello.txt', 'link', 'sub']);
  t.deepEqual(r.types, { 'hello.txt': 'f', 'big.bin': 'f', link: 'l', sub: 'd' });
  const statIno = r.statIno as Record<string, number>;
  for (const n of ['hello.txt', 'big.bin', 'link', 'sub']) t.is(statIno[n], tree.idOf(`dir/${n}`), `st_ino of ${n}`);
  t.is(statIno['.'], tree.idOf('dir'));
  t.is(r.rootIno, 1);
  if (r.direntIno) {
    const d = r.direntIno as Record<string, number>;
    for (const n of ['hello.txt', 'big.bin', 'link', 'sub']) t.is(d[n], statIno[n], `readdir d_ino == stat st_ino for ${n}`);
  } else t.log('python3 not available: d_ino (readdir) vs st_ino (stat) comparison skipped');
  t.is(r.hello, 'hello world\n');
  t.is(r.deep, 'deep\n');
  const big = tree.nodes.get(tree.idOf('dir/big.bin'))!.content!;
  t.is(r.bigSize, big.length);
  t.is(r.bigSha, crypto.createHash('sha256').update(big).digest('hex'));
  t.is(r.link, 'hello.txt');
  t.is(r.viaLink, 'hello world\n');
  t.is(r.helloMode, 0o100444);
  t.is(r.mtimeMs, Date.UTC(2024, 0, 2, 3, 4, 5, 678));
  t.deepEqual(r.statfs, { blocks: 100, files: tree.nodes.size, bsize: 4096 });
  t.is(r.missing, 'ENOENT');
  t.is(r.missingInDir, 'ENOENT');
  t.is(r.notDir, 'ENOTDIR');
  for (const [op, code] of Object.entries(r.erofs as Record<string, string>)) t.is(code, 'EROFS', `${op} → EROFS`);

  // Lookup counts: make the kernel forget everything it can, then the books must balance.
  t.true(tree.given > 0);
  const balanced = await until(() => tree.outstanding() === 0, 15_000, () => sh('echo 2 > /proc/sys/vm/drop_caches'));
  t.true(balanced, `outstanding ${tree.outstanding()}: ${JSON.stringify([...tree.lookups])}`);
  t.is(tree.forgotten, tree.given);
  t.deepEqual(tree.violations, []);
  t.is(session.stats.malformed, 0);

  await session.stop('done');
  t.is(mountAt(mnt), undefined);
  t.is(tree.destroyed, 1);
  t.deepEqual(lines.filter((l) => l.level >= 50), []);
});

fuseTest('generic mount flags reach the kernel: noexec, noatime, nodiratime show in mountinfo', async (t) => {
  t.timeout(LIMIT);
  const mnt = tmpMount(t);
  const session = await serve(new TreeFs(SAMPLE_TREE), mnt, 'entry_timeout=0,noexec,noatime,nodiratime', captureLogger('warn').logger, { handleSignals: false });
  t.teardown(() => session.stop('teardown'));
  const opts = mountAt(mnt)!.options.split(',');
  for (const f of ['ro', 'nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime']) t.true(opts.includes(f), `${f} in ${opts.join(',')}`);
  await session.stop('done');
});

const HAVE_PYTHON = spawnSync('python3', ['-c', 'import os; os.getxattr'], { stdio: 'ignore' }).status === 0;
(HAVE_PYTHON ? fuseTest : test.skip)(
  `without xattr handlers the kernel is told ENOSYS once and stops asking (EOPNOTSUPP to callers)${HAVE_PYTHON ? '' : ' (skipped: python3 with os.getxattr is missing)'}`,
  async (t) => {
    t.timeout(LIMIT);
    const mnt = tmpMount(t);
    const tree = Object.assign(new TreeFs(SAMPLE_TREE, { entryTimeout: 60, attrTimeout: 60 }), { getxattr: undefined, listxattr: undefined });
    const { logger } = captureLogger('warn');
    const session = await serve(tree, mnt, { entryTimeout: 60, attrTimeout: 60 }, logger, { handleSignals: false });
    t.teardown(() => session.stop('teardown'));
    t.is((await client(mnt, 'stat', 'dir/hello.txt')).code, 'OK');
    const before = session.stats.requests;
    // 50 rounds of what `ls -l` asks per entry: the SELinux label, the POSIX ACL (answered by the
    // kernel itself, without ACL support on the mount) and the list of names.
    const script = `
import json, os, sys
calls = {'get': lambda p: os.getxattr(p, 'security.selinux'), 'acl': lambda p: os.getxattr(p, 'system.posix_acl_access'), 'list': os.listxattr}
codes = {k: set() for k in calls}
for _ in range(50):
    for k, f in calls.items():
        try:
            f(sys.argv[1]); codes[k].add('ok')
        except OSError as e:
            codes[k].add(e.errno)
print(json.dumps({k: sorted(v, key=str) for k, v in codes.items()}))`;
    const { stdout } = await execFileP('python3', ['-c', script, path.join(mnt, 'dir/hello.txt')], { timeout: 30_000 });
    t.deepEqual(JSON.parse(stdout), { get: [Errno.EOPNOTSUPP], acl: [Errno.ENODATA], list: [Errno.EOPNOTSUPP] });
    t.true(session.stats.requests - before <= 4, `150 xattr calls cost ${session.stats.requests - before} requests`);
  },
);

fuseTest('umount ends run() cleanly', async (t) => {
  t.timeout(LIMIT);
  const mnt = tmpMount(t);
  const tree = new TreeFs(SAMPLE_TREE);
  const { logger } = captureLogger('warn');
  const session = await serve(tree, mnt, { entryTimeout: 1, attrTimeout: 1 }, logger, { handleSignals: false });
  t.teardown(() => session.stop('teardown'));
  t.is((await client(mnt, 'stat', 'top.txt')).code, 'OK');
  await sh(`umount ${mnt}`);
  await session.run();
  t.false(session.running);
  t.is(mountAt(mnt), undefined);
  t.is(tree.destroyed, 1);
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  fuseTest(`${sig} to a child-process server unmounts and exits 0`, async (t) => {
    t.timeout(LIMIT);
    const mnt = tmpMount(t);
    const child = await startServerChild(t, mnt);
    t.truthy(mountAt(mnt));
    t.is((await client(mnt, 'stat', 'dir/hello.txt')).code, 'OK');
    child.kill(sig);
    const { code, signal } = await exitOf(child);
    t.is(signal, null);
    t.is(code, 0);
    t.is(mountAt(mnt), undefined);
  });
}

fuseTest('an uncaught exception in the server process leaves no mount behind', async (t) => {
  t.timeout(LIMIT);
  const mnt = tmpMount(t);
  const child = await startServerChild(t, mnt, { FUSE_TEST_CRASH: '1' });
  const { code } = await exitOf(child);
  t.is(code, 1);
  t.is(mountAt(mnt), undefined);
  t.is((await inspectMountpoint(mnt)).state, 'ok');
});

fuseTest('a killed server leaves a stale mount: detected as ENOTCONN with the fix, then cleaned', async (t) => {
  t.timeout(LIMIT);
  const mnt = tmpMount(t);
  const child = await startServerChild(t, mnt);
  child.kill('SIGKILL');
  await exitOf(child);
  t.truthy(mountAt(mnt), 'SIGKILL leaves the mount behind');

  const st = await inspectMountpoint(mnt);
  t.is(st.state, 'stale');
  if (st.state === 'stale') {
    t.is(st.fstype, 'fuse.handlefs');
    t.deepEqual(st.fix, [`umount -l ${mnt}`, `fusermount3 -u ${mnt}`]);
  }
  const { logger } = captureLogger('warn');
  const err = await t.throwsAsync(mountFuse(mnt, {}, logger), { instanceOf: StaleMountError });
  t.is(err?.code, 'ENOTCONN');
  t.regex(err!.message, /ENOTCONN/);
  t.regex(err!.message, new RegExp(`umount -l ${mnt}`));
  t.regex(err!.message, /fusermount3 -u/);

  // cleanStale removes it and mounts afresh.
  const tree = new TreeFs(SAMPLE_TREE);
  const session = await serve(tree, mnt, { entryTimeout: 0, attrTimeout: 0 }, logger, { cleanStale: true, handleSignals: false });
  t.teardown(() => session.stop('teardown'));
  t.is((await client(mnt, 'stat', 'top.txt')).code, 'OK');
  await session.stop('done');
  t.is(mountAt(mnt), undefined);
  t.is((await inspectMountpoint(mnt)).state, 'ok');
});

fuseTest('INTERRUPT from the kernel aborts the handler signal; the session keeps serving', async (t) => {
  t.timeout(LIMIT);
  const mnt = tmpMount(t);
  const tree = new TreeFs(SAMPLE_TREE);
  let entered!: () => void;
  const inHandler = new Promise<void>((r) => {
    entered = r;
  });
  let aborted = false;
  const sync = tree.lookup.bind(tree);
  (tree as LowLevelFileSystem).lookup = (ctx, parent, name) => {
    if (name !== 'slow') return sync(ctx, parent, name);
    entered();
    return new Promise<Entry>((_resolve, reject) => {
      const timer = setTimeout(() => reject(new FuseError(Errno.ENOENT)), 20_000);
      ctx.signal.addEventListener('abort', () => {
        aborted = true;
        clearTimeout(timer);
        reject(new FuseError(Errno.EINTR));
      });
    });
  };
  const { logger } = captureLogger('warn');
  const session = await serve(tree, mnt, { entryTimeout: 0, attrTimeout: 0 }, logger, { handleSignals: false });
  t.teardown(() => session.stop('teardown'));
  const child = spawn(process.execPath, [CLIENT, mnt, 'stat', 'slow'], { stdio: 'ignore' });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await inHandler;
  child.kill('SIGINT');
  const { signal } = await exitOf(child);
  t.is(signal, 'SIGINT');
  t.true(await until(() => aborted, 5000));
  t.is((await client(mnt, 'stat', 'top.txt')).code, 'OK', 'still serving');
  await session.stop('done');
  t.is(mountAt(mnt), undefined);
});

for (const mechanism of ['uv-pipe', 'threadpool'] as const) {
  fuseTest(`the ${mechanism} read fallback serves the same tree`, async (t) => {
    t.timeout(LIMIT);
    const mnt = tmpMount(t);
    const tree = new TreeFs(SAMPLE_TREE);
    const { logger } = captureLogger('warn');
    const m = await mountFuse(mnt, { entryTimeout: 0, attrTimeout: 0 }, logger);
    t.teardown(() => m.unmount());
    const channel = m.createChannel({ mechanism });
    t.is(channel.mechanism, mechanism);
    const session = new FuseSession(tree, channel, logger, { unmount: () => m.unmount() });
    const ran = session.run();
    const r = await client(mnt, 'tour');
    t.deepEqual(r.dir, ['big.bin', 'hello.txt', 'link', 'sub']);
    t.is(r.hello, 'hello world\n');
    const big = tree.nodes.get(tree.idOf('dir/big.bin'))!.content!;
    t.is(r.bigSha, crypto.createHash('sha256').update(big).digest('hex'), 'large reads (writev) too');
    await session.stop('done');
    await ran;
    t.is(mountAt(mnt), undefined);
  });
}

/** /dev/fuse as a standard system has it (0666, set by udev) for the rest of the test. */
function userUsableFuseDevice(t: ExecutionContext): void {
  const mode = fs.statSync('/dev/fuse').mode & 0o777;
  if ((mode & 0o006) === 0o006) return;
  fs.chmodSync('/dev/fuse', 0o666);
  t.teardown(() => fs.chmodSync('/dev/fuse', mode));
}

function asNobody(cmd: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), cmd, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

fuseTest('without root: fusermount3 mounts, the user reads, other users are refused, SIGTERM unmounts', async (t) => {
  t.timeout(LIMIT);
  t.truthy(findFusermount(), 'fusermount3 is not installed: apt-get install fuse3 (the README test command does)');
  if (!findFusermount()) return;
  const mnt = tmpMount(t);
  fs.chownSync(mnt, NOBODY, NOBODY);
  userUsableFuseDevice(t);
  const child = await startServerChild(t, mnt, { FUSE_TEST_MOUNT_OPTIONS: 'noexec,noatime' }, true);
  const m = mountAt(mnt);
  t.is(m?.fstype, 'fuse.handlefs');
  t.is(m?.source, 'handlefs');
  const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mnt) ?? '';
  t.regex(line, new RegExp(` ro,nosuid,nodev,.*user_id=${NOBODY},group_id=${NOBODY}`), 'a user mount: read-only, nosuid, nodev, owned by nobody');
  t.deepEqual(
    m!.options.split(',').filter((o) => ['ro', 'nosuid', 'nodev', 'noexec', 'noatime'].includes(o)).sort(),
    ['noatime', 'nodev', 'noexec', 'nosuid', 'ro'],
    'noexec and noatime reach the kernel through fusermount3 (mountinfo)',
  );
  const cat = asNobody('cat', path.join(mnt, 'top.txt'));
  t.is(cat.stdout, 'top\n', cat.stderr);
  const ls = asNobody('ls', path.join(mnt, 'dir'));
  t.deepEqual(ls.stdout.trim().split('\n'), ['big.bin', 'hello.txt', 'link', 'sub']);
  // Without allow_other the kernel lets no other user in, root included.
  t.is((await client(mnt, 'stat', 'top.txt')).code, 'EACCES');
  child.kill('SIGTERM');
  const { code } = await exitOf(child);
  t.is(code, 0);
  t.is(mountAt(mnt), undefined, 'unmounted through fusermount3 -u');
});

fuseTest('without root: a clear error when /dev/fuse is closed to the user or fusermount3 refuses', async (t) => {
  t.timeout(LIMIT);
  if (!findFusermount()) {
    t.fail('fusermount3 is not installed: apt-get install fuse3 (the README test command does)');
    return;
  }
  const mnt = tmpMount(t);
  fs.chownSync(mnt, NOBODY, NOBODY);
  const mode = fs.statSync('/dev/fuse').mode & 0o777;
  fs.chmodSync('/dev/fuse', 0o600);
  t.teardown(() => fs.chmodSync('/dev/fuse', mode));
  const server = nobodyServer(t);
  const closed = spawnSync(server.argv[0]!, [...server.argv.slice(1), mnt], { encoding: 'utf8', timeout: 30_000, cwd: server.cwd });
  t.not(closed.status, 0);
  t.regex(closed.stderr, /\/dev\/fuse is not readable and writable by uid 65534 \(mode 0600\).*chmod 0666 \/dev\/fuse/);
  t.is(mountAt(mnt), undefined);

  // A mountpoint the user may not write to: fusermount3's own refusal is passed on.
  fs.chmodSync('/dev/fuse', 0o666);
  const rootsDir = tmpMount(t);
  fs.chmodSync(rootsDir, 0o755);
  const refused = spawnSync(server.argv[0]!, [...server.argv.slice(1), rootsDir], { encoding: 'utf8', timeout: 30_000, cwd: server.cwd });
  t.not(refused.status, 0);
  t.regex(refused.stderr, /fusermount3 failed at .*: .*fusermount3: user has no write access to mountpoint/);
  t.is(mountAt(rootsDir), undefined);
});

fuseTest('mounting checks: missing mountpoint, a file, an occupied mountpoint', async (t) => {
  t.timeout(LIMIT);
  const { logger } = captureLogger('warn');
  const base = tmpMount(t);
  await t.throwsAsync(mountFuse(path.join(base, 'nope'), {}, logger), { message: /does not exist/ });
  fs.writeFileSync(path.join(base, 'f'), 'x');
  await t.throwsAsync(mountFuse(path.join(base, 'f'), {}, logger), { message: /not a directory/ });
  const mnt = tmpMount(t);
  const session = await serve(new TreeFs(SAMPLE_TREE), mnt, {}, logger, { handleSignals: false });
  t.teardown(() => session.stop('teardown'));
  await t.throwsAsync(mountFuse(mnt, {}, logger), { message: /already has a mount/ });
  t.is((await inspectMountpoint(mnt)).state, 'mounted');
  await session.stop('done');
});
